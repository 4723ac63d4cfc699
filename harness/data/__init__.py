"""Datasets: generated, photo and folder datasets built once into harness's cache, and their manifests."""

"""Utilization of a trial: the sampler (CPU, memory, I/O, GPU), its summary, trace export."""

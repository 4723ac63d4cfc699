"""The harness's Hydra launcher: one job planned at a time, trials in isolated processes, in interleaved rounds."""

"""The pipeline's speed across commits: a store of gate runs and the change points in it."""

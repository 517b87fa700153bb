"""Holding sessions in memory: the pipeline, the projector, snapshots, operations."""

"""Engines that step a session: the `transitions` machine (the reference) and the compiled tables."""

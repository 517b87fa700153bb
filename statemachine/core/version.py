"""The package version (a part of every start-up cache key)."""

__version__ = "0.1.0"

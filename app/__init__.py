"""Unroll: see a recurrent network think, one step at a time."""

__version__ = "0.1.0"

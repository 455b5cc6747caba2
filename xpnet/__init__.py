"""xpnet: the "Deep Learning from Scratch" library, array-agnostic and GPU-backed."""

__version__ = "0.1.0"

from .summary import summary

__all__ = ["summary"]

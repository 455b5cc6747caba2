"""The second book's ``common/functions.py``: xpnet's functions under the book's names."""

from ..functions import cross_entropy_error, relu, sigmoid, softmax

__all__ = ["sigmoid", "relu", "softmax", "cross_entropy_error"]

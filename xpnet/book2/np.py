"""The second book's ``common/np.py``: ``from xpnet.book2.np import *`` gives the script
``np``, the array module of the configured device (NumPy, or CuPy when ``config.GPU``), and
``GPU`` itself, as the book's module does."""

from ..backend import array_module
from .config import GPU

np = array_module(GPU)

__all__ = ["np", "GPU"]

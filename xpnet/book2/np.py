"""The second book's ``common/np.py``: ``from xpnet.book2.np import *`` gives the script
``np``, the array module of the configured device (NumPy, or CuPy when ``config.GPU``)."""

from . import config

if config.GPU:
    import cupy as np
else:
    import numpy as np

__all__ = ["np"]

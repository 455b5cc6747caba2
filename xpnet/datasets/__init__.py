"""Datasets as host NumPy arrays: MNIST, Fashion-MNIST, the bundled MNIST sample, CSV, spiral.

* :func:`load_mnist`, :func:`load_fashion_mnist`: download once (mirrors, SHA-256,
  atomic writes, cache), then load in well under a second; files placed by hand work offline
  (verified by their decompressed content, never deleted or changed).
* :func:`load_mnist_sample`: real MNIST digits shipped with the package, no network needed.
* :func:`load_mnist_csv`: ``label,pixel0,...,pixel783`` CSV files.
* :mod:`spiral`: ``spiral.load_data()``, the second book's 3-class spiral.

Every failure raises :class:`DatasetError` with a message that says what was expected.
"""

from xpnet.datasets import spiral
from xpnet.datasets._common import DatasetError
from xpnet.datasets.mnist import load_fashion_mnist, load_mnist, load_mnist_csv, load_mnist_sample

__all__ = [
    "DatasetError", "load_mnist", "load_fashion_mnist", "load_mnist_sample", "load_mnist_csv", "spiral",
]

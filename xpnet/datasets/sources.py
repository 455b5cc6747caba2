"""Where MNIST and Fashion-MNIST come from: the mirrors, and the SHA-256 of every file.

Plain tables, read by :mod:`xpnet.datasets.mnist`; nothing here touches the network.
Two digests per file: of the ``.gz`` as published (what a download must match), and of
its decompressed IDX content (what any local copy must match: the original ``.gz``, a
re-compressed one such as Debian's ``dataset-fashion-mnist`` package ships, or the
uncompressed file).  The content digests were computed here: MNIST's test set from the
bundled files (whose ``.gz`` match the published digests), Fashion-MNIST's from the
Debian package; all eight agree with the "uncompressed SHA-256" that several public
projects list next to the same ``.gz`` digests / Zalando's MD5s.
"""

from __future__ import annotations

import math

__all__ = [
    "MNIST_MIRRORS", "MNIST_SHA256", "MNIST_CONTENT_SHA256", "FASHION_MNIST_MIRRORS", "FASHION_MNIST_SHA256",
    "FASHION_MNIST_CONTENT_SHA256", "SHAPES", "SAMPLE_SHA256", "tables", "content_bytes", "max_file_bytes",
]

#: Where MNIST is fetched from, in order; every mirror serves the same four files.
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
#: SHA-256 of MNIST's files (the same digests as tensorflow/datasets'
#: ``tensorflow_datasets/url_checksums/mnist.txt``).
MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
#: SHA-256 of the decompressed content of each of MNIST's files (name: the ``.gz``).
MNIST_CONTENT_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

#: Where Fashion-MNIST is fetched from, in order: Zalando's own bucket, then the copy in
#: Zalando's GitHub repository (``data/fashion``); the checksums decide what is accepted.
FASHION_MNIST_MIRRORS: tuple[str, ...] = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
#: SHA-256 of Fashion-MNIST's files, from tensorflow/datasets
#: ``tensorflow_datasets/url_checksums/fashion_mnist.txt`` (which also records the sizes:
#: 26421880, 29515, 4422102 and 5148 bytes).  Zalando publishes MD5s in the README of
#: github.com/zalandoresearch/fashion-mnist: 8d4fb7e6c68d591d4c3dfef9ec88bf0d,
#: 25c81989df183df01b3e8a0aad5dffbe, bef4ecab320f06d8554ea6380940ec79,
#: bb300cfdad3c16e7a12a480ee83cd310 (same order).
FASHION_MNIST_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
#: SHA-256 of the decompressed content of each of Fashion-MNIST's files (name: the ``.gz``).
FASHION_MNIST_CONTENT_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

#: The array shape in each file's IDX header (both data sets).
SHAPES: dict[str, tuple[int, ...]] = {
    "train-images-idx3-ubyte.gz": (60000, 28, 28),
    "train-labels-idx1-ubyte.gz": (60000,),
    "t10k-images-idx3-ubyte.gz": (10000, 28, 28),
    "t10k-labels-idx1-ubyte.gz": (10000,),
}

def content_bytes(name: str) -> int:
    """Bytes of the IDX content of the file ``name`` (uint8 values after a 4-byte magic and the sizes)."""
    shape = SHAPES[name]
    return 4 + 4 * len(shape) + math.prod(shape)


def max_file_bytes(name: str) -> int:
    """The most bytes any copy of ``name`` may have: its content, or that content gzip-compressed
    (deflate adds at most 5 bytes per 16 KiB block of incompressible data, gzip a header)."""
    return content_bytes(name) + content_bytes(name) // 1000 + 1024


#: SHA-256 of the MNIST test set shipped in ``xpnet/datasets/data`` (see its README).
SAMPLE_SHA256: dict[str, str] = {
    "t10k-images-idx3-ubyte.gz": MNIST_SHA256["t10k-images-idx3-ubyte.gz"],
    "t10k-labels-idx1-ubyte.gz": MNIST_SHA256["t10k-labels-idx1-ubyte.gz"],
}


def tables() -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Title -> (``.gz`` digests, content digests) of every data set, read now (tests swap them)."""
    return {
        "MNIST": (MNIST_SHA256, MNIST_CONTENT_SHA256),
        "Fashion-MNIST": (FASHION_MNIST_SHA256, FASHION_MNIST_CONTENT_SHA256),
    }

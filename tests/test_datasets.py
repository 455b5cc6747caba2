"""The bundled MNIST sample, the IDX reader, MNIST-style CSV files and the spiral."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from _idx_server import idx_bytes

import xpnet.datasets
from xpnet.datasets import DatasetError, load_mnist_csv, load_mnist_sample, mnist, spiral
from xpnet.datasets.idx import parse_idx, read_idx

# Digit counts of the official MNIST test set (the bundled sample).
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ----------------------------------------------------------------------------- public API


def test_public_api():
    assert set(xpnet.datasets.__all__) == {
        "DatasetError", "load_mnist", "load_fashion_mnist", "load_mnist_sample", "load_mnist_csv", "spiral",
    }
    assert issubclass(DatasetError, RuntimeError)
    from xpnet.datasets.mnist import load_fashion_mnist, load_mnist  # the book's import, ported

    assert load_mnist is xpnet.datasets.load_mnist and load_fashion_mnist is xpnet.datasets.load_fashion_mnist


# ----------------------------------------------------------------------------- bundled sample


@pytest.fixture(scope="module")
def sample():
    return load_mnist_sample()


def test_sample_shapes_dtypes_and_range(sample):
    (x, t), (x_test, t_test) = sample
    assert x.shape == (8000, 784) and x_test.shape == (2000, 784)
    assert x.dtype == x_test.dtype == np.float32
    assert t.shape == (8000,) and t_test.shape == (2000,) and t.dtype == t_test.dtype == np.int64
    assert 0.0 == x.min() and x.max() == 1.0 and 0.0 <= x_test.min() and x_test.max() <= 1.0
    assert list(t[:5]) == [7, 2, 1, 0, 4]  # the official test set's first digits, in order


def test_sample_label_counts(sample):
    (_, t), (_, t_test) = sample
    train, test = np.bincount(t, minlength=10), np.bincount(t_test, minlength=10)
    assert train.sum() == 8000 and test.sum() == 2000
    assert (train > 600).all() and (test > 150).all()
    assert list(train + test) == MNIST_TEST_COUNTS


def test_sample_layouts():
    (x, t), (x_test, t_test) = load_mnist_sample(
        normalize=False, flatten=False, one_hot_label=True, dtype=np.float64
    )
    assert x.shape == (8000, 1, 28, 28) and x.dtype == np.uint8 and x.max() == 255
    assert t.shape == (8000, 10) and t.dtype == np.float64 and (t.sum(axis=1) == 1).all()
    assert x_test.shape == (2000, 1, 28, 28) and t_test.shape == (2000, 10)
    assert x.flags.writeable and x.flags.c_contiguous


def test_sample_split_is_documented_and_fixed(sample):
    (x_all, t_all), _ = load_mnist_sample(n_train=9999)
    (x, t), (x_test, t_test) = load_mnist_sample(n_train=100, dtype="float64")
    assert x.shape == (100, 784) and x_test.shape == (9900, 784) and x.dtype == np.float64
    np.testing.assert_allclose(x, x_all[:100], rtol=1e-6)
    np.testing.assert_array_equal(t_test[:10], t_all[100:110])
    np.testing.assert_array_equal(sample[1][1], np.concatenate([t_all[8000:], t_test[-1:]]))


@pytest.mark.parametrize("n_train", [0, 10000, -5, 2.5, True, "8000"])
def test_sample_rejects_bad_n_train(n_train):
    with pytest.raises(ValueError, match="n_train: expected an integer from 1 to 9999"):
        load_mnist_sample(n_train=n_train)


@pytest.mark.parametrize("dtype", ["int32", "float16", None, "nonsense", np.uint8])
def test_bad_dtype_is_named(dtype):
    with pytest.raises(ValueError, match="dtype: expected 'float32' or 'float64'"):
        load_mnist_sample(dtype=dtype)


def test_damaged_bundled_file_is_caught(monkeypatch):
    monkeypatch.setitem(mnist.SAMPLE_SHA256, "t10k-labels-idx1-ubyte.gz", "0" * 64)
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz: SHA-256 .*reinstall xpnet"):
        load_mnist_sample()


# ----------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 1, 3, 2)])
def test_idx_round_trip(dtype, shape, tmp_path):
    array = (np.arange(np.prod(shape)) - 3).astype(dtype).reshape(shape)
    data = idx_bytes(array)
    for path, content in ((tmp_path / "a.idx", data), (tmp_path / "a.idx.gz", gzip.compress(data))):
        path.write_bytes(content)
        out = read_idx(path)
        assert out.shape == shape and out.dtype == np.dtype(dtype) and out.dtype.isnative
        np.testing.assert_array_equal(out, array)
        out[...] = 0  # a writable copy


_GOOD = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "0 bytes, too short for an IDX header"),
        (b"\x00\x00\x08", "too short"),
        (b"\x01\x00" + _GOOD[2:], "not an IDX file: magic number 0x01000803"),
        (b"\x00\x00\x07\x03" + _GOOD[4:], "not an IDX file: magic number 0x00000703"),
        (b"\x00\x00\x08\x00", "dimension count DD >= 1"),
        (_GOOD[:10], "truncated header: 3 dimensions need 16 header bytes, the file has 10"),
        (_GOOD[:-1], r"truncated: shape \(2, 3, 4\) of uint8 needs 24 data bytes .* has 23"),
        (_GOOD + b"\x00", r"corrupt \(trailing bytes\)"),
        (gzip.compress(_GOOD)[:-9], "damaged or truncated gzip data"),
        (b"\x1f\x8b" + b"garbage" * 5, "damaged or truncated gzip data"),
    ],
)
def test_idx_corruption_is_reported(data, match):
    with pytest.raises(DatasetError, match=match) as info:
        parse_idx(data, source="some/file")
    assert str(info.value).startswith("some/file: ")


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="cannot read the IDX file"):
        read_idx(tmp_path / "absent")


# ----------------------------------------------------------------------------- CSV


@pytest.fixture
def csv_data():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 10, 12)
    pixels = rng.integers(0, 256, (12, 784))
    pixels[0, :2] = [0, 255]
    return labels, pixels


def _write_csv(path, labels, pixels, header=True, newline="\n", bom=False, fmt=str):
    lines = [",".join(["label", *(f"pixel{i}" for i in range(pixels.shape[1]))])] if header else []
    lines += [",".join(fmt(v) for v in (label, *row)) for label, row in zip(labels, pixels)]
    path.write_bytes((("\ufeff" if bom else "") + newline.join(lines) + newline).encode())
    return path


@pytest.mark.parametrize(
    "variant", [{}, {"header": False}, {"newline": "\r\n", "bom": True}, {"fmt": lambda v: f"{v}.0"}]
)
def test_csv_reads_the_common_layouts(csv_data, tmp_path, variant):
    labels, pixels = csv_data
    x, t = load_mnist_csv(_write_csv(tmp_path / "m.csv", labels, pixels, **variant), normalize=False)
    assert x.shape == (12, 784) and x.dtype == np.uint8 and t.dtype == np.int64
    np.testing.assert_array_equal(x, pixels)
    np.testing.assert_array_equal(t, labels)


def test_csv_formats_like_load_mnist(csv_data, tmp_path):
    labels, pixels = csv_data
    x, t = load_mnist_csv(_write_csv(tmp_path / "m.csv", labels, pixels), flatten=False, one_hot_label=True)
    assert x.shape == (12, 1, 28, 28) and x.dtype == np.float32 and t.shape == (12, 10)
    np.testing.assert_allclose(x.reshape(12, 784), pixels / 255, rtol=1e-6)
    np.testing.assert_array_equal(t.argmax(axis=1), labels)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda ls, px: (ls, px[:, :783]), "the rows have 784 columns, expected 785"),
        (lambda ls, px: (ls, np.where(np.arange(784) == 5, 256, px)),
         "line 2, column 7: pixel 256, expected an integer from 0 to 255"),
        (lambda ls, px: (ls, np.where(np.arange(784) == 0, -1, px)), "column 2: pixel -1, expected"),
        (lambda ls, px: (np.where(np.arange(12) == 3, 10, ls), px),
         "line 5, column 1: label 10, expected an integer from 0 to 9"),
    ],
)
def test_csv_rejects_bad_values(csv_data, tmp_path, edit, match):
    path = _write_csv(tmp_path / "bad.csv", *edit(*csv_data))
    with pytest.raises(DatasetError, match=match) as info:
        load_mnist_csv(path)
    assert str(path) in str(info.value)


def test_csv_ragged_row_is_located(csv_data, tmp_path):
    path = _write_csv(tmp_path / "ragged.csv", *csv_data)
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit(",", 1)[0]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="line 5 has 784 columns, expected 785"):
        load_mnist_csv(path)


def test_csv_non_number_is_located(csv_data, tmp_path):
    path = _write_csv(tmp_path / "text.csv", *csv_data, header=False)
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(",", ",abc,", 1).rsplit(",", 1)[0]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="line 3, column 2: 'abc' is not a number"):
        load_mnist_csv(path)


def test_csv_normalized_file_gets_a_hint(csv_data, tmp_path):
    labels, pixels = csv_data
    path = _write_csv(tmp_path / "norm.csv", labels, pixels / 255, fmt=lambda v: f"{v:g}")
    with pytest.raises(DatasetError, match="looks normalized"):
        load_mnist_csv(path)


def test_csv_without_labels_is_refused(csv_data, tmp_path):
    _, pixels = csv_data
    path = tmp_path / "nolabels.csv"
    path.write_text("\n".join(",".join(map(str, row)) for row in pixels) + "\n")
    with pytest.raises(DatasetError, match="784 columns, expected 785 .*no label column"):
        load_mnist_csv(path)


@pytest.mark.parametrize("content", ["", "label,pixel0\n"])
def test_csv_without_rows(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DatasetError, match="no data rows"):
        load_mnist_csv(path)


def test_csv_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="cannot read the CSV file"):
        load_mnist_csv(tmp_path / "absent.csv")


# ----------------------------------------------------------------------------- spiral


def test_spiral_shapes_and_classes():
    x, t = spiral.load_data()
    assert x.shape == (300, 2) and t.shape == (300, 3) and x.dtype == t.dtype == np.float32
    assert (t.sum(axis=1) == 1).all()
    np.testing.assert_array_equal(t.argmax(axis=1), np.repeat([0, 1, 2], 100))
    assert np.linalg.norm(x, axis=1).max() < 1.0


def test_spiral_is_deterministic_per_seed():
    x1, t1 = spiral.load_data()
    x2, _ = spiral.load_data(seed=1984)
    x3, t3 = spiral.load_data(seed=7)
    np.testing.assert_array_equal(x1, x2)
    assert not np.array_equal(x1, x3)
    np.testing.assert_array_equal(t1, t3)
    # the radius is fixed by the point's index, only the angle is noisy
    np.testing.assert_allclose(np.linalg.norm(x1, axis=1), np.linalg.norm(x3, axis=1), atol=1e-6)


def test_spiral_dtype():
    x, t = spiral.load_data(dtype="float64")
    assert x.dtype == t.dtype == np.float64
    with pytest.raises(ValueError, match="dtype"):
        spiral.load_data(dtype="int64")

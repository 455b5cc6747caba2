"""Input types and ranges at the public entries: every dtype gives the right numbers or a clear
error (never wrong numbers), and odd ranges and paths give an error naming the argument."""

from __future__ import annotations

import array_api_strict as strict
import numpy as np
import pytest

from xpnet import functions as F

INTS = ["uint8", "int8", "int16", "int32", "int64", "uint16"]


# ----------------------------------------------------------------------------------- functions
def _reference(name, x):
    x = x.astype(np.float64)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "sigmoid_grad":
        y = 1.0 / (1.0 + np.exp(-x))
        return (1.0 - y) * y
    shifted = x - x.max(axis=-1, keepdims=True)
    if name == "softmax":
        return np.exp(shifted) / np.exp(shifted).sum(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))  # log_softmax


@pytest.mark.parametrize("name", ["sigmoid", "relu", "softmax", "log_softmax", "sigmoid_grad"])
@pytest.mark.parametrize("dtype", [*INTS, "bool"])
def test_activations_of_integers_are_computed_in_float(name, dtype):
    values = np.array([[1, 2, 100], [0, 3, 5]]) if dtype != "bool" else np.array([[True, False, True]] * 2)
    if dtype.startswith("int"):
        values = values * np.array([1, -1, 1])  # negatives too
    x = values.astype(dtype)
    got = getattr(F, name)(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, _reference(name, x), rtol=1e-12)


def test_the_issues_examples():
    np.testing.assert_allclose(F.sigmoid(np.array([1, 2, 200], np.uint8)), [0.7310585786, 0.8807970780, 1.0])
    np.testing.assert_allclose(F.softmax(np.array([1, 2], np.uint8)), [0.2689414214, 0.7310585786])


@pytest.mark.parametrize("name", ["sigmoid", "relu", "softmax", "log_softmax"])
def test_integers_follow_the_namespaces_default_float(name):
    torch = pytest.importorskip("torch")
    x = strict.asarray([[1, 2, 3]], dtype=strict.uint8)
    assert getattr(F, name)(x).dtype == strict.float64
    assert getattr(F, name)(torch.tensor([[1, 2, 3]], dtype=torch.uint8)).dtype == torch.float32


@pytest.mark.parametrize("name", ["sigmoid", "relu", "softmax", "log_softmax", "sigmoid_grad"])
def test_complex_input_is_refused(name):
    with pytest.raises(TypeError, match="x: expected real numbers .* got dtype complex128"):
        getattr(F, name)(np.array([1 + 1j, 2]))


def test_float16_and_float32_keep_their_dtype():
    for dtype in (np.float16, np.float32):
        x = np.array([[1.0, 2.0]], dtype)
        assert F.sigmoid(x).dtype == F.softmax(x).dtype == F.relu(x).dtype == dtype


@pytest.mark.parametrize("dtype", INTS)
def test_losses_of_integer_scores_are_right(dtype):
    y, t = np.array([[3, 0, 1]], dtype), np.array([[0, 2, 1]], dtype)
    assert F.mean_squared_error(y, t) == pytest.approx(0.5 * (9 + 4 + 0))
    probs = np.array([[0, 1, 0], [1, 0, 0]], dtype)
    assert F.cross_entropy_error(probs, np.array([1, 0])) == pytest.approx(-np.log(1 + 1e-7))
    assert F.softmax_loss(np.array([[1, 2]], dtype), np.array([1])) == pytest.approx(np.log1p(np.exp(-1.0)))


def test_unsigned_differences_do_not_wrap():
    assert F.mean_squared_error(np.array([0], np.uint8), np.array([255], np.uint8)) == 0.5 * 255**2


# ----------------------------------------------------------------------------------- gradient
@pytest.mark.parametrize("dtype", [*INTS, "bool", "float16"])
def test_numerical_gradient_refuses_points_that_cannot_hold_x_plus_h(dtype):
    from xpnet.gradient import numerical_gradient, numerical_gradient_2d

    x = np.array([3, 4]).astype(dtype)
    with pytest.raises(ValueError, match=rf"x: expected a float32 or float64 array, got {dtype}"):
        numerical_gradient(lambda p: np.sum(p**2), x)
    with pytest.raises(ValueError, match=rf"got {dtype}"):
        numerical_gradient_2d(lambda p: np.sum(p**2), np.stack([x, x]))
    np.testing.assert_array_equal(x, np.array([3, 4]).astype(dtype))  # untouched


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numerical_gradient_of_floats_is_right(dtype):
    from xpnet.gradient import numerical_gradient

    got = numerical_gradient(lambda p: np.sum(p.astype(np.float64) ** 2), np.array([3.0, 4.0], dtype))
    np.testing.assert_allclose(got, [6.0, 8.0], rtol=1e-2 if dtype == "float32" else 1e-8)


@pytest.mark.parametrize("h", [0.0, -1e-4, float("nan"), "1e-4"])
def test_numerical_gradient_step_is_checked(h):
    from xpnet.gradient import numerical_gradient

    with pytest.raises(ValueError, match="h: expected"):
        numerical_gradient(lambda p: np.sum(p), np.ones(2), h)


# ----------------------------------------------------------------------------------- layers
@pytest.mark.parametrize("dtype", [*INTS, "bool"])
def test_dropout_of_integers_keeps_the_values(dtype):
    from xpnet.layers import Dropout

    x = np.array([[1, 2, 3], [4, 5, 6]]).astype(dtype)
    np.testing.assert_array_equal(Dropout(0.0).forward(x, True), x.astype(np.float64))
    np.testing.assert_allclose(Dropout(0.5).forward(x, False), x.astype(np.float64) * 0.5)
    kept = Dropout(0.5).forward(x, True)
    assert set(np.unique(kept / np.where(x == 0, 1, x).astype(np.float64))) <= {0.0, 1.0}


@pytest.mark.parametrize("dtype", [*INTS, "bool"])
def test_clip_grads_refuses_integer_grads(dtype):
    from xpnet.book2.grads import clip_grads

    grads = [np.array([3.0, 4.0]), np.array([3, 4]).astype(dtype)]
    with pytest.raises(TypeError, match=rf"grads\[1\]: expected a float array .*got {dtype}"):
        clip_grads(grads, 1.0)
    np.testing.assert_array_equal(grads[0], [3.0, 4.0])  # nothing scaled before the refusal
    floats = [np.array([3.0, 4.0])]
    clip_grads(floats, 1.0)
    np.testing.assert_allclose(floats[0], [0.6, 0.8], rtol=1e-5)


# ----------------------------------------------------------------------------------- empty batch
def _nets():
    from xpnet.nets import MultiLayerNet, TwoLayerNet

    return [TwoLayerNet(4, 5, 3, seed=0), MultiLayerNet(4, [5, 5], 3, seed=0)]


@pytest.mark.parametrize("method", ["gradient", "loss", "accuracy"])
@pytest.mark.parametrize("labels", ["indices", "one-hot"])
def test_an_empty_batch_is_a_clear_error(method, labels):
    for net in _nets():
        t = np.zeros(0, np.int64) if labels == "indices" else np.zeros((0, 3))
        with pytest.raises(ValueError, match="x: expected at least one sample, got 0"):
            getattr(net, method)(np.zeros((0, 4)), t)


# ----------------------------------------------------------------------------------- save paths
@pytest.mark.parametrize("path, error, match", [
    ("", ValueError, r"file_name: expected a file name"),
    ("newdir/", ValueError, r"file_name: 'newdir/' names a folder"),
    ("newdir/.", ValueError, r"file_name: 'newdir/\.' names a folder"),
    ("existing", IsADirectoryError, r"file_name: 'existing' is a folder"),
    ("missing/p.npz", FileNotFoundError, r"file_name: the folder 'missing' of 'missing/p\.(npz|pkl)' does not exist"),
    ("missing/p.pkl", FileNotFoundError, r"file_name: the folder 'missing'"),
])
@pytest.mark.parametrize("who", ["net", "model npz", "model pkl"])
def test_save_params_with_odd_paths(tmp_path, monkeypatch, path, error, match, who):
    from xpnet.book2.base_model import BaseModel
    from xpnet.nets import TwoLayerNet

    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing").mkdir()
    if who == "net":
        saver = TwoLayerNet(4, 5, 3, seed=0)
        target = path
    else:
        saver = BaseModel()
        saver.params = [np.ones((2, 2), np.float32)]
        target = path if path.endswith("/") or path.endswith(".") or path in ("", "existing") else \
            path.rsplit(".", 1)[0] + (".npz" if who == "model npz" else ".pkl")
    if who != "net" and path == "":
        match = r"file_name: expected a file name such as 'model\.pkl'"
    with pytest.raises(error, match=match):
        saver.save_params(target)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["existing"]


# ----------------------------------------------------------------------------------- CSV
@pytest.mark.parametrize("line, column", [(1, 1), (2, 5), (20, 1), (20, 1570)])
def test_a_csv_with_a_byte_that_is_not_utf8_names_the_file_and_line(tmp_path, line, column):
    from xpnet.datasets import DatasetError, load_mnist_csv

    rows = [",".join(["3"] + ["0"] * 784).encode() for _ in range(20)]
    assert sum(len(r) + 1 for r in rows) > 8192 * 3  # past what a first chunk would show
    rows[line - 1] = rows[line - 1][:column - 1] + b"\xff" + rows[line - 1][column - 1:]
    path = tmp_path / "mnist.csv"
    path.write_bytes(b"\n".join(rows) + b"\n")
    with pytest.raises(DatasetError, match=rf"mnist\.csv: line {line} is not UTF-8 text \(byte b'\\xff' at column "
                                           rf"{column}\)"):
        load_mnist_csv(path)


def test_a_csv_header_that_is_not_utf8_is_named(tmp_path):
    from xpnet.datasets import DatasetError, load_mnist_csv

    path = tmp_path / "mnist.csv"
    path.write_bytes(b"label\xe9," + b",".join(b"p%d" % i for i in range(784)) + b"\n"
                     + ",".join(["3"] + ["0"] * 784).encode() + b"\n")
    with pytest.raises(DatasetError, match=r"line 1 is not UTF-8 text \(byte b'\\xe9' at column 6\)"):
        load_mnist_csv(path)


def test_a_csv_larger_than_mnist_is_refused_before_parsing(tmp_path, monkeypatch):
    from xpnet.datasets import DatasetError, csvfile, load_mnist_csv

    monkeypatch.setattr(csvfile, "MAX_CSV_BYTES", 1000)
    path = tmp_path / "big.csv"
    path.write_bytes(b"0," * 600)
    with pytest.raises(DatasetError, match=r"big\.csv: 1200 bytes, more than the 1000"):
        load_mnist_csv(path)


# ----------------------------------------------------------------------------------- ppmi
@pytest.mark.parametrize("xp", [np, strict], ids=["numpy", "strict"])
def test_ppmi_of_an_empty_matrix_is_empty(xp):
    from xpnet.book2.util import ppmi

    M = ppmi(xp.zeros((0, 0), dtype=xp.int32))
    assert tuple(M.shape) == (0, 0) and M.dtype == xp.float32


def test_ppmi_of_zero_counts_and_of_negative_counts():
    from xpnet.book2.util import ppmi

    np.testing.assert_array_equal(ppmi(np.zeros((1, 1), np.int32)), [[0.0]])
    np.testing.assert_array_equal(ppmi(np.zeros((3, 3), np.int32)), np.zeros((3, 3)))
    np.testing.assert_allclose(ppmi(np.array([[0, 2], [2, 0]], np.uint8)), [[0, 1], [1, 0]], atol=1e-6)
    with pytest.raises(ValueError, match=r"C: expected co-occurrence counts \(>= 0\)"):
        ppmi(np.array([[0, -1], [-1, 0]]))
    for shape in [(0, 3), (3,), (2, 3)]:
        with pytest.raises(ValueError, match="C: expected a square co-occurrence matrix"):
            ppmi(np.zeros(shape))

"""Book-exact draws: an unseeded ``Generator`` on NumPy makes the book's own calls on NumPy's
global generator, in the book's order, so a script seeded with ``np.random.seed`` prints the
book's numbers; ``seed=`` and other backends keep xpnet's own stream."""

import contextlib
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest

from xpnet import backend, layers, optimizer
from xpnet.layers import Dropout
from xpnet.nets import DeepConvNet, MultiLayerNet, SimpleConvNet


@pytest.fixture(autouse=True)
def _keep_numpy_global_state():
    state = np.random.get_state()
    yield
    np.random.set_state(state)


def test_unseeded_generator_makes_the_books_calls_and_no_draw_at_construction():
    np.random.seed(0)
    g = backend.Generator()
    w = g.normal((3, 4), scale=0.01, dtype="float64")
    mask = g.keep_mask((2, 5), 0.5)
    u = g.uniform((2,), dtype="float64")
    perm = g.permutation(7)
    batch = g.integers(10, 4)
    np.random.seed(0)
    np.testing.assert_array_equal(w, 0.01 * np.random.randn(3, 4))
    np.testing.assert_array_equal(mask, np.random.rand(2, 5) > 0.5)
    np.testing.assert_array_equal(u, np.random.rand(2))
    np.testing.assert_array_equal(perm, np.random.permutation(7))
    np.testing.assert_array_equal(batch, np.random.choice(10, 4))


def test_book_generator_state_is_numpys_global_state():
    g = backend.Generator()
    np.random.seed(5)
    state = g.state
    first = np.random.rand(4)
    g.state = state
    np.testing.assert_array_equal(np.random.rand(4), first)
    with pytest.raises(ValueError, match="unseeded"):
        backend.Generator(1).state = state


def test_nets_initialise_with_the_books_draws():
    np.random.seed(3)
    net = MultiLayerNet(4, [5], 3, weight_init_std=0.01, dtype="float64")
    np.random.seed(3)
    np.testing.assert_array_equal(net.params["W1"], 0.01 * np.random.randn(4, 5))
    np.testing.assert_array_equal(net.params["W2"], 0.01 * np.random.randn(5, 3))
    np.random.seed(4)
    conv = SimpleConvNet((1, 8, 8), {"filter_num": 2, "filter_size": 3}, hidden_size=4, output_size=3, dtype="float64")
    np.random.seed(4)
    for key, shape in (("W1", (2, 1, 3, 3)), ("W2", (18, 4)), ("W3", (4, 3))):
        np.testing.assert_array_equal(conv.params[key], 0.01 * np.random.randn(*shape))
    np.random.seed(6)
    deep = DeepConvNet(dtype="float64")
    np.random.seed(6)
    np.testing.assert_array_equal(deep.params["W1"], np.sqrt(2.0 / 9) * np.random.randn(16, 1, 3, 3))


def test_dropout_mask_is_the_books():
    x = np.ones((3, 50))
    np.random.seed(2)
    out = Dropout(0.3).forward(x)
    np.random.seed(2)
    np.testing.assert_array_equal(out, x * (np.random.rand(3, 50) > 0.3))


def test_seed_and_other_backends_keep_xpnets_stream():
    pytest.importorskip("array_api_strict")
    import array_api_strict

    np.random.seed(0)
    a = backend.to_numpy(backend.Generator(5).normal((6,), dtype="float64"))
    np.testing.assert_array_equal(a, np.random.default_rng(5).normal(0.0, 1.0, size=6))
    device = backend.get_device(array_api_strict, array_api_strict.Device("CPU_DEVICE"))
    np.random.seed(0)
    first = backend.to_numpy(backend.Generator().normal((6,), dtype="float64", device=device))
    np.random.seed(0)
    again = backend.to_numpy(backend.Generator().normal((6,), dtype="float64", device=device))
    np.testing.assert_array_equal(first, again)  # seeded from NumPy's global generator at first use
    np.random.seed(0)
    assert not np.array_equal(first, np.random.randn(6))


def _seeds() -> Path:
    here = Path(__file__).resolve().parents[1]
    for root in (os.environ.get("XPNET_SHARED"), here.parent / "shared", "/work/shared"):
        if root and (Path(root) / "seeds").is_dir():
            return Path(root) / "seeds"
    pytest.skip("../shared/seeds is absent")


def _run(program: str, namespace: dict) -> list[str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(program, "<seed 001>", "exec"), namespace)
    return out.getvalue().splitlines()


def test_seed_001_dropout_program_draws_as_the_books_dropout():
    """Notebook 001's Dropout program (xpnet's Dropout through ``from common.layers import *``)
    prints what it prints with the notebook's own copy of the book's Dropout, seeded alike."""
    text = next(_seeds().glob("001_*.txt")).read_text(encoding="utf-8")
    own_dropout = re.search(r"^class Dropout:\n(?:(?:    .*)?\n)+", text, re.M).group(0)
    start = text.index("# Dropout을 실제로 적용")
    program = text[start:text.index("markers = {'train'", start)]
    program = re.sub(r"^(from (common|dataset)\..*|import matplotlib.*|sys\.path.*)$",
                     "", program, flags=re.M).replace("epoch=20", "epoch=3")
    data = np.random.RandomState(7)
    x = data.rand(400, 784)
    t = np.eye(10)[data.randint(0, 10, 400)]

    def load_mnist(**_):
        return (x[:300], t[:300]), (x[300:], t[300:])

    runs = []
    for use_own in (False, True):
        namespace = {"load_mnist": load_mnist, "numerical_gradient": None}
        namespace.update({name: getattr(layers, name) for name in layers.__all__})
        namespace.update({name: getattr(optimizer, name) for name in optimizer.__all__})
        if use_own:
            exec(own_dropout, namespace)
            book_dropout = namespace["Dropout"]
            namespace["Dropout"] = lambda: book_dropout(0.5)  # the book's default ratio
        np.random.seed(0)
        runs.append(_run(program, namespace))
    assert len(runs[0]) == 2 * 3 and runs[0][0].startswith("train acc, test acc | ")
    assert runs[0] == runs[1]


def test_a_saved_own_stream_continues_in_an_unseeded_generator():
    seeded = backend.Generator(11)
    state = seeded.state
    expected = backend.to_numpy(seeded.normal((4,), dtype="float64"))
    restored = backend.Generator()
    restored.state = state
    np.testing.assert_array_equal(backend.to_numpy(restored.normal((4,), dtype="float64")), expected)

"""xpnet.plot and the examples' figures: one figure per call, axes that fit the data, the
decision regions in their points' colours, histograms whose range holds the values."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from xpnet import plot  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HISTORY = {"train_loss_list": [2.0, 1.5, 1.0, 0.8], "train_acc_list": [0.93, 0.95], "test_acc_list": [0.94, 0.97]}


def test_accuracy_axis_fits_the_data():
    assert plot.accuracy_limits([0.93, 0.95], [0.94, 0.97]) == pytest.approx((0.92, 0.98))
    assert plot.accuracy_limits([0.1, 0.9]) == pytest.approx((0.02, 0.98))
    assert plot.accuracy_limits([0.995, 1.0]) == pytest.approx((0.985, 1.0))
    ax = Figure().subplots()
    plot.plot_accuracy(ax, HISTORY)
    assert ax.get_ylim() == pytest.approx((0.92, 0.98))


def test_shown_plot_returns_nothing_so_a_notebook_shows_it_once(tmp_path):
    assert plot.plot_history(HISTORY) is None
    assert isinstance(plot.plot_history(HISTORY, tmp_path / "curves.png"), Figure)
    assert (tmp_path / "curves.png").stat().st_size > 1000


def test_decision_regions_have_their_points_colours():
    xs, ys = np.meshgrid(np.linspace(-1, 1, 30), np.linspace(-1, 1, 30))
    regions = (xs > 0).astype(int) + (ys > 0.5).astype(int)          # classes 0, 1, 2
    x = np.array([[-0.5, 0.0], [0.5, 0.0], [0.5, 0.9]])
    labels = np.array([0, 1, 2])
    ax = Figure().subplots()
    plot.plot_decision_regions(ax, xs, ys, regions, x, labels)
    points = [to_rgb(c.get_facecolor()[0]) for c in ax.collections if not isinstance(c, ContourSet)]
    contour = next(c for c in ax.collections if isinstance(c, ContourSet))
    areas = [to_rgb(color) for color in contour.get_facecolor()]
    assert points == areas == [to_rgb(name) for name in plot.CLASS_COLORS[:3]]


def load_example(name):
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLES))


def test_relu_histogram_range_holds_the_he_activations():
    histogram_values = load_example("ch06_weight_init_activation_histogram").histogram_values
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1000, 100))
    per_layer = []
    for _ in range(5):
        z = np.maximum(0, z @ (rng.standard_normal((100, 100)) * np.sqrt(2 / 100)))
        per_layer.append(z.ravel())
    shown, (low, high) = histogram_values(per_layer, "relu")
    assert high > 1.0                                              # He's activations pass 1
    for values in shown:
        assert values.size > 0.4 * 100_000 and np.all((values > low) & (values <= high))
        counts, _ = np.histogram(values, bins=30, range=(low, high))
        assert counts.max() < 0.5 * values.size                     # no single spike: a spread is seen
    sigmoid_shown, sigmoid_range = histogram_values([np.array([0.2, 0.7])], "sigmoid")
    assert sigmoid_range == (0.0, 1.0) and sigmoid_shown[0].tolist() == [0.2, 0.7]

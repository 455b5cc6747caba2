"""examples/colab.ipynb runs in a real kernel on the CPU, as Colab would run it on a GPU: the
install cell is a no-op where xpnet is importable, training uses device="auto", evaluation takes
host arrays, and each plot cell shows one figure."""

import json
import re

import pytest

from _notebook import ROOT, images_of, run_notebook, text_of

NOTEBOOK = ROOT / "examples" / "colab.ipynb"
# cuts for CI: the bundled sample instead of a download, one epoch on 1,000 images
CUTS = [("from xpnet.datasets import load_mnist\n", "from xpnet.datasets import load_mnist_sample as load_mnist\n"),
        ("= load_mnist(flatten=False)\n",
         "= load_mnist(flatten=False)\nx_train, t_train, x_test, t_test = x_train[:1000], t_train[:1000], "
         "x_test[:500], t_test[:500]\n"),
        ("epochs=5", "epochs=1")]


def code_cells():
    cells = [cell for cell in json.loads(NOTEBOOK.read_text())["cells"] if cell["cell_type"] == "code"]
    sources = ["".join(cell["source"]) for cell in cells]
    assert all(not cell.get("outputs") for cell in cells), "commit the notebook without outputs"
    for old, new in CUTS:
        assert sum(source.count(old) for source in sources) == 1, old
        sources = [source.replace(old, new) for source in sources]
    return sources


def test_colab_notebook_first_cell_is_the_one_url_variable():
    first = code_cells()[0]
    assert re.fullmatch(r'REPO_URL = ""  # [^\n]*', first)


def test_colab_notebook_runs_in_a_kernel(tmp_path):
    sources = code_cells()
    notebook = run_notebook(sources, tmp_path, OPENBLAS_NUM_THREADS="1")
    cells = notebook.cells
    install, train, evaluate = cells[1], cells[2], cells[3]
    assert text_of(install) == "xpnet 0.1.0\n"                    # importable: nothing installed
    assert text_of(train).startswith("training on cpu (auto: no CuPy with a GPU)\n")   # the device, and why
    assert re.search(r"^epoch 1/1  loss \d\.\d{4}", text_of(train), re.M)
    lines = text_of(evaluate).splitlines()
    accuracy = float(re.fullmatch(r"test accuracy (\d\.\d{4})", lines[0]).group(1))
    assert 0.2 < accuracy <= 1.0                                 # 10 classes: chance is 0.1
    assert re.fullmatch(r"predicted \[[\d ]+\] true \[[\d ]+\]", lines[1])
    plot_cell, digits_cell = cells[4], cells[5]
    assert sources[4] == "trainer.plot()"
    assert images_of(plot_cell) == 1 and [out.output_type for out in plot_cell.outputs] == ["display_data"]
    assert images_of(digits_cell) == 1


def run_install_cell(monkeypatch, tmp_path, repo_url):
    """The install cell as on a fresh Colab (xpnet not importable), pip recorded, not run."""
    import importlib.util
    import subprocess

    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "xpnet" else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda command, check: calls.append(command))
    monkeypatch.chdir(tmp_path)
    exec(code_cells()[1], {"REPO_URL": repo_url})
    return [command[4:] for command in calls]


def test_install_cell_installs_the_uploaded_wheel_or_the_url(monkeypatch, tmp_path, capsys):
    (tmp_path / "xpnet-0.1.0-py3-none-any.whl").write_bytes(b"")
    assert run_install_cell(monkeypatch, tmp_path, "") == [["--quiet", "xpnet-0.1.0-py3-none-any.whl"]]
    assert run_install_cell(monkeypatch, tmp_path, "https://example.org/x/xpnet") == [
        ["--quiet", "git+https://example.org/x/xpnet"]]
    (tmp_path / "xpnet-0.1.0-py3-none-any.whl").unlink()
    with pytest.raises(RuntimeError, match="upload xpnet-\\*.whl .* or set REPO_URL"):
        run_install_cell(monkeypatch, tmp_path, "")

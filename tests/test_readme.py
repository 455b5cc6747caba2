"""The README's promises a user copies: the two one-command blocks stay exactly true, no copied
command holds a placeholder, the first screen covers install, train, porting and Colab, and the
development history lives in benchmarks/, not in the README."""

import re
import shlex
from pathlib import Path

import pytest

import xpnet
from xpnet import __main__ as cli

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.S)


def block_after(heading: str) -> str:
    section = README.split(f"## {heading}", 1)[1]
    return re.search(r"```\w*\n(.*?)```", section, re.S).group(1).strip()


def test_readme_is_short():
    assert len(README.split()) <= 2000


def test_first_screen_covers_install_train_porting_and_colab():
    first_screen = "\n".join(README.splitlines()[:60])
    for needle in ("python -m xpnet train", "pip install", "from xpnet.", "Colab", "examples/colab.ipynb"):
        assert needle in first_screen, needle


def test_no_copied_command_holds_a_placeholder():
    for _, body in BLOCKS:
        assert not re.search(r"<[^<>\n]*>", body), body


def test_no_development_history_in_the_readme():
    for word in ("session", "2a42252", "winograd", "implicit GEMM"):
        assert word.lower() not in README.lower(), word
    assert (ROOT / "benchmarks" / "HISTORY.md").is_file()


def test_the_test_command_is_what_ci_runs():
    assert block_after("Install and test (one command)") == "bash ci/cpu.sh"
    assert "exec bash ci/cpu.sh" in (ROOT / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[test]"' in (ROOT / "ci" / "cpu.sh").read_text()


def test_the_train_command_installs_and_its_flags_parse():
    command = block_after("Install and train (one command)")
    steps = [shlex.split(step) for step in command.split("&&")]
    assert steps[:3] == [["python3", "-m", "venv", ".venv"], [".", ".venv/bin/activate"],
                         ["pip", "install", ".[plot]"]]
    assert steps[3][:3] == ["python", "-m", "xpnet"]
    args = cli.parser().parse_args(steps[3][3:])
    assert (args.model, args.device, args.epochs) == ("simple_convnet", "auto", 5)


def test_the_wheel_named_for_colab_is_the_one_python_m_build_writes():
    wheel = f"xpnet-{xpnet.__version__}-py3-none-any.whl"
    assert f"dist/{wheel}" in README and f"!pip install {wheel}" in README
    assert (ROOT / "examples" / "colab.ipynb").is_file()


@pytest.mark.parametrize("module, names", [
    ("xpnet.datasets", ["load_mnist_sample", "load_mnist"]), ("xpnet.nets", ["SimpleConvNet"]),
    ("xpnet.trainer", ["Trainer"]), ("xpnet.book2.trainer", ["Trainer"]), ("xpnet.layers", ["Affine"]),
    ("xpnet.datasets.mnist", ["load_mnist"]), ("xpnet.datasets", ["spiral"])])
def test_the_readme_imports_exist(module, names):
    import importlib

    assert f"from {module} import {names[0]}" in README
    loaded = importlib.import_module(module)
    assert all(hasattr(loaded, name) for name in names)


def test_import_xpnet_exposes_its_subpackages_on_first_use():
    import subprocess
    import sys

    code = ("import sys, xpnet; heavy = [m for m in ('xpnet.nets', 'xpnet.trainer', 'tqdm', 'matplotlib') "
            "if m in sys.modules]; print(heavy); print(xpnet.nets.SimpleConvNet.__name__, "
            "xpnet.datasets.spiral.__name__, xpnet.book2.__name__, xpnet.trainer.Trainer.__name__); "
            "print('nets' in dir(xpnet))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.splitlines() == ["[]", "SimpleConvNet xpnet.datasets.spiral xpnet.book2 Trainer", "True"]
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        xpnet.nope

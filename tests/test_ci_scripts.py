"""The GPU scripts in ci/ are rehearsed here, so a lent GPU's first minute is not lost to a
script bug: shell syntax, and gpu_nosync.py's two checks against fake cupy/cupyx modules."""

import contextlib
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest

CI = Path(__file__).resolve().parent.parent / "ci"


@pytest.mark.parametrize("script", ["gpu.sh", "gpu-lent.sh", "cpu.sh"])
def test_shell_scripts_parse(script):
    subprocess.run(["bash", "-n", str(CI / script)], check=True)


def test_gpu_lent_rejects_an_unknown_option(tmp_path):
    done = subprocess.run(["bash", str(CI / "gpu-lent.sh"), str(tmp_path), "--fast"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown option --fast" in done.stderr


@pytest.fixture
def nosync():
    spec = importlib.util.spec_from_file_location("gpu_nosync", CI / "gpu_nosync.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Synced(Exception):
    pass


def fake_cupyx(monkeypatch, with_guard=True):
    state = {"allowed": True}
    module = types.ModuleType("cupyx")
    module.DeviceSynchronized = Synced
    if with_guard:
        @contextlib.contextmanager
        def allow_synchronize(allow):
            state["allowed"] = allow
            yield
            state["allowed"] = True

        module.allow_synchronize = allow_synchronize
    monkeypatch.setitem(sys.modules, "cupyx", module)

    def sync():
        if not state["allowed"]:
            raise Synced("synchronize")

    return sync


def test_guard_check_reports_ok_sync_and_a_missing_api(nosync, monkeypatch):
    sync = fake_cupyx(monkeypatch)
    assert nosync.guard_check(lambda: None, 3) == "ok"
    assert nosync.guard_check(sync, 3).startswith("SYNC: Synced('synchronize')")
    fake_cupyx(monkeypatch, with_guard=False)
    assert nosync.guard_check(lambda: None, 3).startswith("skipped: ")


def fake_gpu(monkeypatch, kernel_done_early):
    """A cupy whose spin kernel is 'still running' unless a step waited (``kernel_done_early``)."""
    cupy = types.ModuleType("cupy")
    cupy.int64 = int
    cupy.RawKernel = lambda source, name: (lambda grid, block, args: None)
    cupy.cuda = types.SimpleNamespace(Event=lambda: types.SimpleNamespace(record=lambda: None,
                                                                        query=lambda: kernel_done_early))
    monkeypatch.setitem(sys.modules, "cupy", cupy)
    return types.SimpleNamespace(activate=contextlib.nullcontext, synchronize=lambda: None)


@pytest.mark.parametrize("done_early, verdict", [(False, "ok"), (True, "SYNC")])
def test_spin_check_verdict_follows_whether_the_gpu_was_still_busy(nosync, monkeypatch, done_early, verdict):
    device = fake_gpu(monkeypatch, done_early)
    steps = []
    result = nosync.spin_check(lambda: steps.append(1), 4, device, 0.01)
    assert result.startswith(f"{verdict}: host queued 4 steps in ")
    assert steps == [1, 1, 1, 1]

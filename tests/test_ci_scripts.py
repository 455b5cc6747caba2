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


# --- gpu-lent.sh's logic, rehearsed with a stub Python (seconds, not the minutes of a dry run) ----

STUB = """#!/usr/bin/env bash
echo "CUPY_TF32=${CUPY_TF32:-} BLAS=${OPENBLAS_NUM_THREADS:-} COMMIT=${XPNET_COMMIT:-} :: ${*//$'\\n'/ }" >>"$STUB_LOG"
if [ "$1" = "-c" ]; then
    case "$2" in
        *"get_device('cuda')"*) [ "$STUB_PREFLIGHT" = "ok" ] && { echo "Device('cuda:0') passed"; exit 0; }
                                echo "DeviceError: the preflight's sort failed"; exit 1 ;;
    esac
    exec "$STUB_REAL" "$@"
fi
case "$*" in
    "-m xpnet train"*) echo "epoch 1/1  loss 0.5  train acc 0.9  test acc 0.9100" ;;
    "-m pytest"*) echo "3 passed, 2 skipped" ;;
    *) echo "a table" ;;
esac
"""

LENT_FILES = {"summary.md", "tests.log", "nosync.log", "train-gpu.log", "train-cpu.log", "step-b100.md", "epoch.md",
              "step-b1000.md"}


def run_lent(tmp_path, *args, gpu=False, preflight="fail"):
    stub, bin_dir = tmp_path / "python", tmp_path / "bin"
    stub.write_text(STUB)
    stub.chmod(0o755)
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/usr/bin/env bash\n{'echo GPU 0: Fake' if gpu else 'exit 9'}\n")
    smi.chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHON": str(stub), "STUB_LOG": str(tmp_path / "calls.log"),
           "STUB_REAL": sys.executable, "STUB_PREFLIGHT": preflight, "HOME": str(tmp_path)}
    out = tmp_path / "out"
    done = subprocess.run(["bash", str(CI / "gpu-lent.sh"), str(out), *args], capture_output=True, text=True,
                          env=env, timeout=120)
    calls = (tmp_path / "calls.log").read_text().splitlines()
    return done, out, calls


def test_gpu_lent_runs_tests_first_in_fp32_with_the_commit_given(tmp_path):
    done, out, calls = run_lent(tmp_path, "--dry-run", "--commit", "abc1234")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {p.name for p in out.iterdir()} == LENT_FILES  # the device tool brings back 8 files
    summary = (out / "summary.md").read_text()
    assert "source: abc1234" in summary and "precision: full FP32 on both sides" in summary
    rows = [line.split(" | ")[0].lstrip("| ") for line in summary.splitlines() if " | ok" in line]
    assert rows[:2] == ["cupy tests (-k 'cupy or cuda')", "train --device cpu"], summary
    assert "train accuracy, cpu vs cpu | ok: cpu 0.9100, cpu 0.9100" in summary
    commands = [c for c in calls if " :: -c" not in c]
    assert all(c.startswith("CUPY_TF32=0 ") and " COMMIT=abc1234 " in c for c in commands), commands
    cpu_runs = [c for c in commands if ":: -m xpnet train --device cpu" in c]
    assert len(cpu_runs) == 2 and "BLAS=4 " in cpu_runs[0]  # the reference run, capped, and the dry run's own
    assert "/work/" not in (CI / "gpu-lent.sh").read_text() + (CI / "README.md").read_text()


def test_gpu_lent_stops_at_once_when_a_gpu_fails_the_preflight(tmp_path):
    done, out, calls = run_lent(tmp_path, "--commit", "abc1234", gpu=True, preflight="fail")
    assert done.returncode == 1
    summary = (out / "summary.md").read_text()
    assert "FAILED: this machine has a GPU, and the CUDA preflight failed" in summary
    assert "DeviceError: the preflight's sort failed" in summary
    assert [p.name for p in out.iterdir()] == ["summary.md"]
    assert len(calls) == 1 and "get_device('cuda')" in calls[0]  # nothing ran after it


def test_gpu_lent_without_a_gpu_rehearses_on_the_cpu(tmp_path):
    done, out, calls = run_lent(tmp_path, gpu=False, preflight="fail")
    assert done.returncode == 0, done.stdout
    summary = (out / "summary.md").read_text()
    assert "dry run on the CPU: no GPU answers here" in summary
    assert "source: " in summary and "CUDA preflight: DeviceError" in summary


def test_gpu_lent_on_a_gpu_runs_every_step_on_cuda(tmp_path):
    done, out, calls = run_lent(tmp_path, "--commit=feed", gpu=True, preflight="ok")
    assert done.returncode == 0, done.stdout
    assert any(":: -m xpnet train --device cuda --epochs 5" in c for c in calls)
    assert any("XPNET_REQUIRE_CUDA" not in c and ":: -m pytest tests -q -k cupy or cuda" in c for c in calls)
    assert "# ci/gpu-lent.sh: GPU" in (out / "summary.md").read_text()

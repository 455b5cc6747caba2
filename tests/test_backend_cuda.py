"""get_device's CUDA preflight and install hints, proved on the CPU with a fake ``cupy`` module,
and C-ordered copies before cross-device moves (on every backend)."""

import contextlib
import sys
import types
import warnings

import numpy as np
import pytest
from _checks import assert_on

from xpnet import backend
from xpnet.backend import CPU, DeviceError, get_device, to_device, to_numpy


def fake_cupy(gpus=1, kernel_error=None, count_error=None):
    """A stand-in for ``cupy``: ``gpus`` GPUs answer; its first kernel raises ``kernel_error``."""
    calls = []

    def get_device_count():
        if count_error is not None:
            raise count_error
        return gpus

    def arange(n, dtype=None):
        calls.append("arange")
        if kernel_error is not None:
            raise kernel_error
        return np.arange(n, dtype=dtype)

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    cuda = types.SimpleNamespace(runtime=runtime, Device=lambda index: contextlib.nullcontext())
    module = types.ModuleType("cupy")
    module.cuda, module.float32, module.arange, module.matmul = cuda, np.float32, arange, np.matmul
    module.calls = calls
    return module


@pytest.fixture
def install(monkeypatch):
    """Put a fake cupy in ``sys.modules`` (``None``: CuPy missing) with an empty preflight cache."""
    monkeypatch.setattr(backend, "_PREFLIGHT", {})

    def put(module):
        monkeypatch.setitem(sys.modules, "cupy", module)
        return module

    return put


NVRTC = RuntimeError("CuPy failed to load libnvrtc.so.12: OSError: libnvrtc.so.12: cannot open shared object file")


def test_a_gpu_without_cuda_libraries_is_a_device_error_naming_the_fix(install):
    install(fake_cupy(kernel_error=NVRTC))
    with pytest.raises(DeviceError) as info:
        get_device("cuda")
    message = str(info.value)
    assert "libnvrtc.so.12" in message and "RuntimeError" in message
    assert 'pip install "cupy-cuda12x[ctk]"' in message
    assert "device='cpu'" in message
    assert backend.cuda_available() is False


def test_auto_falls_back_to_the_cpu_with_a_warning_when_the_gpu_cannot_run(install):
    install(fake_cupy(kernel_error=NVRTC))
    with pytest.warns(RuntimeWarning, match=r"device 'auto': using the CPU.*cupy-cuda12x\[ctk\]"):
        assert get_device("auto") is CPU


def test_preflight_runs_once_per_device(install):
    cupy = install(fake_cupy(gpus=2, kernel_error=NVRTC))
    for name in ("cuda", "cuda:0", "auto", "cuda:1"):
        with warnings.catch_warnings(), contextlib.suppress(DeviceError):
            warnings.simplefilter("ignore")
            get_device(name)
    assert cupy.calls == ["arange", "arange"]  # GPU 0 once, GPU 1 once
    assert set(backend._PREFLIGHT) == {0, 1}


def test_preflight_catches_a_wrong_result():
    cupy = fake_cupy()
    cupy.matmul = lambda a, b: np.matmul(a, b) * 0.0
    assert backend._preflight(cupy, 0).startswith("a test computation gave [[[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0]")
    assert backend._preflight(fake_cupy(), 0) == ""


@pytest.mark.parametrize("cupy", [fake_cupy(gpus=0), fake_cupy(count_error=RuntimeError("cudaErrorNoDevice"))])
def test_no_gpu_answering_suggests_the_colab_runtime_and_auto_stays_quiet(install, cupy):
    install(cupy)
    with pytest.raises(DeviceError, match=r"Runtime -> Change runtime type -> GPU") as info:
        get_device("gpu")
    assert "nvidia-smi" in str(info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert get_device("auto") is CPU
    assert cupy.calls == []


def test_missing_cupy_suggests_installs_that_work_from_a_clone(install):
    install(None)  # import cupy raises ImportError
    with pytest.raises(DeviceError) as info:
        get_device("cuda")
    message = str(info.value)
    assert "pip install cupy-cuda12x" in message
    assert 'pip install ".[cuda12]"' in message
    assert "xpnet[" not in message  # xpnet is not on the package index
    assert get_device("auto") is CPU


def test_gpu_index_out_of_range(install):
    install(fake_cupy(gpus=1))
    with pytest.raises(DeviceError, match=r"has 1 CUDA GPU\(s\), 0\.\.0"):
        get_device("cuda:1")


# --- C-ordered copies before cross-device moves ------------------------------------------------

def _is_c_contiguous(a):
    if isinstance(a, np.ndarray) or hasattr(a, "flags"):
        return bool(a.flags.c_contiguous)
    if hasattr(a, "is_contiguous"):
        return a.is_contiguous()
    return None  # array_api_strict does not say


def test_c_contiguous_copies_a_strided_view_in_c_order(device):
    """``Convolution.dW``'s layout: a transposed matrix reshaped to 4-D (neither C nor F order)."""
    xp = device.xp
    host = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(12, 2)
    with device.activate():
        view = xp.reshape(xp.permute_dims(device.asarray(host), (1, 0)), (2, 3, 2, 2))
        out = backend._c_contiguous(view)
    assert_on(out, device, "float64", (2, 3, 2, 2))
    np.testing.assert_array_equal(to_numpy(out), host.T.reshape(2, 3, 2, 2))
    assert _is_c_contiguous(view) in (False, None)
    assert _is_c_contiguous(out) in (True, None)


def test_moving_a_transposed_view_between_strict_devices(monkeypatch):
    strict = pytest.importorskip("array_api_strict")
    copied = []
    c_contiguous = backend._c_contiguous
    monkeypatch.setattr(backend, "_c_contiguous", lambda a: copied.append(a.shape) or c_contiguous(a))
    dev0 = get_device(strict, strict.Device("CPU_DEVICE"))
    dev1 = get_device(strict, strict.Device("device1"))
    host = np.arange(12.0).reshape(4, 3)
    view = strict.permute_dims(dev0.asarray(host), (1, 0))
    holder = {"dW": view, "alias": view}
    to_device(holder, dev1)
    assert_on(holder["dW"], dev1, "float64", (3, 4))
    assert holder["alias"] is holder["dW"]
    np.testing.assert_array_equal(to_numpy(holder["dW"]), host.T)
    assert copied == [(3, 4)]  # made C-ordered once, on its source device, before the move
    back = dev0.asarray(holder["dW"])
    assert_on(back, dev0, "float64", (3, 4))
    np.testing.assert_array_equal(to_numpy(back), host.T)


def test_moving_a_strided_view_between_gpus():
    if not backend.cuda_available():
        pytest.skip("cupy: no CUDA GPU")
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 2:
        pytest.skip("cupy: needs two GPUs")
    dev0, dev1 = get_device("cuda:0"), get_device("cuda:1")
    host = np.arange(24.0).reshape(12, 2)
    with dev0.activate():
        view = dev0.asarray(host).T.reshape(2, 3, 2, 2)
    moved = dev1.asarray(view)
    assert_on(moved, dev1, "float64", (2, 3, 2, 2))
    np.testing.assert_array_equal(to_numpy(moved), host.T.reshape(2, 3, 2, 2))

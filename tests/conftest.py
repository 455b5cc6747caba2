"""The ``xp`` fixture: every numeric test runs on every backend present.

``xp`` is the array namespace; ``device`` is the matching :class:`xpnet.backend.Device`
(namespace + native device).  array_api_strict runs twice: on its CPU device and on
its simulated second device ``device1``, which proves device handling without a GPU.
"""

import os

import pytest

from xpnet import backend


def _strict(name):
    import array_api_strict

    return backend.get_device(array_api_strict, array_api_strict.Device(name))


def _cupy():
    try:
        return backend.get_device("cuda")
    except backend.DeviceError as exc:
        if os.environ.get("XPNET_REQUIRE_CUDA") == "1":
            pytest.fail(f"cupy: XPNET_REQUIRE_CUDA=1 but CuPy cannot run on a CUDA GPU here: {exc}")
        pytest.skip("cupy: CuPy is not installed or no CUDA GPU answers")


def _torch():
    torch = pytest.importorskip("torch", reason="torch: not installed")
    return backend.get_device(torch, torch.device("cpu"))


_BACKENDS = {
    "numpy": lambda: backend.CPU,
    "strict": lambda: _strict("CPU_DEVICE"),
    "strict-device1": lambda: _strict("device1"),
    "cupy": _cupy,
    "torch": _torch,
}


@pytest.fixture(params=list(_BACKENDS))
def device(request):
    """The backend under test as a :class:`xpnet.backend.Device`."""
    if request.param.startswith("strict"):
        pytest.importorskip("array_api_strict", reason="array_api_strict: not installed")
    return _BACKENDS[request.param]()


@pytest.fixture
def xp(device):
    """The array namespace of the backend under test."""
    return device.xp

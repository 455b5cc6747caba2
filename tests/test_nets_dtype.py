"""Every net refuses a non-floating dtype however it is spelled, naming ``dtype``."""

import numpy as np
import pytest

from xpnet.nets import DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet

BUILDERS = {
    "TwoLayerNet": lambda **kw: TwoLayerNet(4, 5, 3, **kw),
    "MultiLayerNet": lambda **kw: MultiLayerNet(4, [5], 3, **kw),
    "MultiLayerNetExtend": lambda **kw: MultiLayerNetExtend(4, [5], 3, use_batchnorm=True, **kw),
    "SimpleConvNet": lambda **kw: SimpleConvNet((1, 8, 8), {"filter_num": 2, "filter_size": 3}, 4, 3, **kw),
    "DeepConvNet": lambda **kw: DeepConvNet(**kw),
}


@pytest.mark.parametrize("name", list(BUILDERS))
@pytest.mark.parametrize("dtype", [np.int32, "int32", int, bool, np.dtype("int64"), "half", None, "float"])
def test_non_floating_dtype_is_refused(device, name, dtype):
    with pytest.raises(ValueError, match=r"^dtype: expected a floating dtype .* got "):
        BUILDERS[name](dtype=dtype, device=device)


@pytest.mark.parametrize("dtype, expected", [(np.float64, "float64"), ("float32", "float32"), (float, "float64"),
                                             (np.dtype("float32"), "float32")])
def test_floating_dtype_spellings(device, dtype, expected):
    net = TwoLayerNet(4, 5, 3, dtype=dtype, device=device)
    assert net.dtype == getattr(device.xp, expected)

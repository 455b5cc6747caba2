"""xpnet.layers' argument guards (issue 12): Dropout's ratio, Affine's bias, empty batches,
BatchNorm training batches of zero and one sample."""

import numpy as np
import pytest
from _checks import assert_on

from xpnet.backend import to_numpy
from xpnet.layers import Affine, BatchNormalization, Dropout, MatMul


def _put(device, host):
    return device.asarray(np.asarray(host, dtype=np.float64), dtype="float64")


@pytest.mark.parametrize("ratio", ["0.5", None, True, -0.1, 1.0, 1.5, float("nan"), float("inf")])
def test_dropout_ratio_must_be_a_real_number_in_0_1(ratio):
    with pytest.raises(ValueError, match="dropout_ratio"):
        Dropout(ratio)


def test_dropout_ratio_edges():
    assert Dropout(0).dropout_ratio == 0.0
    assert type(Dropout(np.float64(0.25)).dropout_ratio) is float


def test_affine_bias_of_the_wrong_length_is_named(device):
    with pytest.raises(ValueError, match=r"b: expected shape \(3,\)"):
        Affine(_put(device, np.ones((2, 3))), _put(device, np.ones(2)))
    with pytest.raises(ValueError, match="b"):
        Affine(_put(device, np.ones((2, 3))), _put(device, np.ones((1, 3))))
    with pytest.raises(ValueError, match="W"):
        Affine(_put(device, np.ones(3)), _put(device, np.ones(3)))
    with pytest.raises(ValueError, match="W"):
        MatMul(_put(device, np.ones(3)))


def test_affine_empty_batch_gives_empty_outputs(device):
    layer = Affine(_put(device, np.ones((6, 3))), _put(device, np.ones(3)))
    out = layer.forward(_put(device, np.ones((0, 2, 3))))
    assert_on(out, device, "float64", (0, 3))
    dx = layer.backward(_put(device, np.ones((0, 3))))
    assert_on(dx, device, "float64", (0, 2, 3))
    np.testing.assert_array_equal(to_numpy(layer.dW), np.zeros((6, 3)))
    np.testing.assert_array_equal(to_numpy(layer.db), np.zeros(3))


def test_batchnorm_empty_inference_batch_and_small_training_batches(device):
    layer = BatchNormalization(_put(device, np.ones(4)), _put(device, np.zeros(4)))
    assert_on(layer.forward(_put(device, np.ones((0, 4))), train_flg=False), device, "float64", (0, 4))
    assert_on(layer.forward(_put(device, np.ones((0, 1, 2, 2))), train_flg=False), device, "float64", (0, 1, 2, 2))
    with pytest.raises(ValueError, match="needs samples for its statistics, got 0"):
        layer.forward(_put(device, np.ones((0, 4))), train_flg=True)
    assert layer.running_var is None or float(to_numpy(layer.running_var).sum()) == 0.0
    one = layer.forward(_put(device, [[5.0, 6, 7, 8]]), train_flg=True)  # the book's gradient check
    np.testing.assert_array_equal(to_numpy(one), np.zeros((1, 4)))  # normalises to beta
    out = layer.forward(_put(device, [[1.0, 2, 3, 4], [3.0, 2, 1, 0]]), train_flg=True)
    np.testing.assert_allclose(to_numpy(out)[:, 0], [-1.0, 1.0], rtol=1e-5)


def test_batchnorm_gamma_beta_shapes(device):
    with pytest.raises(ValueError, match="gamma, beta"):
        BatchNormalization(_put(device, np.ones(3)), _put(device, np.ones(2)))

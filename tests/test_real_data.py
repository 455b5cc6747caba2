"""Real digits: SimpleConvNet learns the bundled MNIST sample (numpy backend, a few hundred steps)."""

import numpy as np
import pytest

from xpnet.backend import Generator
from xpnet.datasets import load_mnist_sample
from xpnet.nets import SimpleConvNet
from xpnet.optimizer import Adam


@pytest.mark.slow
def test_simple_convnet_learns_real_mnist_digits():
    (x_train, t_train), (x_test, t_test) = load_mnist_sample(flatten=False)
    net = SimpleConvNet(seed=0)
    optimizer = Adam(lr=0.001)
    rng = Generator(0)
    chance = np.bincount(t_test).max() / len(t_test)
    before = net.accuracy(x_test, t_test)
    for _ in range(300):
        batch = np.asarray(rng.integers(len(x_train), 100))
        optimizer.update(net.params, net.gradient(x_train[batch], t_train[batch]))
    after = net.accuracy(x_test, t_test)
    assert before < 0.25 and chance < 0.15
    assert after > 0.9, f"test accuracy after 300 steps: {after:.3f}"

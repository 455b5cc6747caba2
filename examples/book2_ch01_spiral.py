"""Deep Learning from Scratch 2, chapter 1: the second book's two-layer net learns the spiral
through ``Trainer.fit``.

The model is written the second book's way: layers in a list, ``params``/``grads``
collected once in the constructor, ``forward(x, t)`` returning the loss.  Settings of
the book's ``ch01/train.py``: 10 sigmoid units, weights 0.01 * N(0, 1), SGD lr 1.0,
batches of 30, 300 epochs.  Plots the loss and the decision regions.

    python examples/book2_ch01_spiral.py
"""

import _common
import numpy as np
from xpnet.backend import Generator, to_numpy
from xpnet.book2.layers import Affine, Sigmoid, SoftmaxWithLoss
from xpnet.book2.optimizer import SGD
from xpnet.book2.trainer import Trainer
from xpnet.datasets import spiral
from xpnet.plot import plot_decision_regions


class TwoLayerNet:
    """Affine -> Sigmoid -> Affine, and SoftmaxWithLoss: the second book's chapter-1 net."""

    def __init__(self, input_size, hidden_size, output_size, *, seed=None):
        rng = Generator(seed)
        W1 = rng.normal((input_size, hidden_size), scale=0.01)
        b1 = np.zeros(hidden_size, dtype=np.float32)
        W2 = rng.normal((hidden_size, output_size), scale=0.01)
        b2 = np.zeros(output_size, dtype=np.float32)
        self.layers = [Affine(W1, b1), Sigmoid(), Affine(W2, b2)]
        self.loss_layer = SoftmaxWithLoss()
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    def predict(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def forward(self, x, t):
        return self.loss_layer.forward(self.predict(x), t)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


def main():
    p = _common.parser(__doc__, epochs=300, mnist=False)
    p.add_argument("--hidden-size", type=int, default=10, help="units in the hidden layer")
    p.add_argument("--batch-size", type=int, default=30, help="points per training step")
    p.add_argument("--lr", type=float, default=1.0, help="learning rate")
    args = p.parse_args()
    device = _common.device(args)
    x, t = spiral.load_data()  # the book's 300 points

    model = TwoLayerNet(2, args.hidden_size, 3, seed=args.seed)
    trainer = Trainer(model, SGD(lr=args.lr), device=device, seed=args.seed)
    trainer.fit(x, t, max_epoch=args.epochs, batch_size=args.batch_size, eval_interval=10)

    fig = _common.figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(np.arange(len(trainer.loss_list)) * 10, trainer.loss_list)
    ax.set(xlabel="iterations", ylabel="loss", title="spiral, the second book's two-layer net")
    _common.save(fig, args, "book2_ch01_loss.png")

    # decision regions: the class the net predicts at every point of a grid
    h = 0.01
    xs, ys = np.meshgrid(np.arange(-1.1, 1.1, h), np.arange(-1.1, 1.1, h))
    grid = device.asarray(np.stack([xs.ravel(), ys.ravel()], axis=1), dtype="float32")
    with device.activate():
        regions = to_numpy(device.xp.argmax(model.predict(grid), axis=1)).reshape(xs.shape)
        train_labels = to_numpy(device.xp.argmax(model.predict(device.asarray(x, dtype="float32")), axis=1))
    labels = t.argmax(axis=1)
    fig = _common.figure(5.5, 5)
    ax = fig.add_subplot()
    plot_decision_regions(ax, xs, ys, regions, x, labels)
    ax.set(title="decision regions after training", aspect="equal")
    _common.save(fig, args, "book2_ch01_decision_boundary.png")
    _common.result(train_acc=float((train_labels == labels).mean()), final_loss=trainer.loss_list[-1])


if __name__ == "__main__":
    main()

"""Deep Learning from Scratch 2, chapter 1: a two-layer net learns the three-armed spiral.

300 points in the plane, 100 per arm; no straight line separates the arms, one
hidden layer of 10 sigmoid units does.  Settings of the second book's
``train_custom_loop.py``: weights N(0, 0.01**2), SGD lr 1.0, batches of 30,
300 epochs.  The second book's TwoLayerNet is Affine -> Sigmoid -> Affine; in
xpnet that is ``MultiLayerNet(2, [10], 3, activation="sigmoid")`` (xpnet's
TwoLayerNet is the first book's, with ReLU: ``--activation relu``).  The test
set is a second spiral drawn with another seed.  Plots the loss per epoch and the
decision regions.

    python examples/spiral_two_layer_net.py
"""

import _common
import numpy as np
from xpnet.datasets import spiral
from xpnet.nets import MultiLayerNet
from xpnet.trainer import Trainer


def main():
    p = _common.parser(__doc__, epochs=300, mnist=False)
    p.add_argument("--hidden-size", type=int, default=10, help="units in the hidden layer")
    p.add_argument("--batch-size", type=int, default=30, help="images per training step")
    p.add_argument("--lr", type=float, default=1.0, help="learning rate")
    p.add_argument("--activation", choices=("sigmoid", "relu"), default="sigmoid", help="of the hidden layer")
    args = p.parse_args()
    device = _common.device(args)
    x, t = spiral.load_data(seed=1984)  # the data is fixed; --seed drives weights and shuffling
    x_test, t_test = spiral.load_data(seed=1985)

    network = MultiLayerNet(2, [args.hidden_size], 3, activation=args.activation, weight_init_std=0.01,
                            seed=args.seed, device=device)
    trainer = Trainer(network, x, t, x_test, t_test, epochs=args.epochs, mini_batch_size=args.batch_size,
                      optimizer="sgd", optimizer_param={"lr": args.lr}, verbose=False,
                      device=device, seed=args.seed, sampling="shuffle")
    history = trainer.train()
    losses = np.array(history["train_loss_list"]).reshape(args.epochs, trainer.iter_per_epoch).mean(axis=1)
    for epoch in sorted({0, args.epochs // 4, args.epochs // 2, 3 * args.epochs // 4, args.epochs - 1}):
        print(f"| epoch {epoch + 1:4d} | loss {losses[epoch]:.4f} | train acc {history['train_acc_list'][epoch]:.4f}")

    fig = _common.figure(6, 4)
    ax = fig.add_subplot()
    ax.plot(range(1, args.epochs + 1), losses)
    ax.set(xlabel=f"epoch ({trainer.iter_per_epoch} iterations)", ylabel="loss (mean over the epoch)",
           title="spiral, two-layer net")
    _common.save(fig, args, "spiral_loss.png")

    # decision regions: the predicted class at every point of a grid
    h = 0.01
    xs, ys = np.meshgrid(np.arange(x[:, 0].min() - 0.1, x[:, 0].max() + 0.1, h),
                         np.arange(x[:, 1].min() - 0.1, x[:, 1].max() + 0.1, h))
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    regions = _common.predict_labels(network, grid, batch_size=10000).reshape(xs.shape)
    fig = _common.figure(5.5, 5)
    ax = fig.add_subplot()
    ax.contourf(xs, ys, regions, levels=[-0.5, 0.5, 1.5, 2.5], colors=["#f4cccc", "#cfe2f3", "#d9ead3"])
    labels = t.argmax(axis=1)
    for c, marker in enumerate("ox^"):
        ax.scatter(x[labels == c, 0], x[labels == c, 1], s=30, marker=marker, label=f"class {c}")
    ax.set(title="decision regions after training", aspect="equal")
    ax.legend(loc="upper right", fontsize=8)
    _common.save(fig, args, "spiral_decision_boundary.png")
    _common.result(train_acc=history["train_acc_list"][-1], test_acc=history["test_acc_list"][-1],
                   final_loss=float(losses[-1]))


if __name__ == "__main__":
    main()

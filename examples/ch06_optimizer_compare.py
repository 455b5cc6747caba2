"""Chapter 6.1: SGD, Momentum, AdaGrad, RMSprop and Adam compared on MNIST.

One 5-layer ReLU net (784-100-100-100-100-10, He init) per optimizer, all starting
from the same weights; at each step one random mini-batch of 128 images is drawn
and every net takes a step on it with its optimizer, at the optimizer's default
learning rate (SGD, Momentum, AdaGrad, RMSprop: 0.01, Adam: 0.001), for 2,000
steps as in the book.  Plots the smoothed training loss of each.

    python examples/ch06_optimizer_compare.py --sample
    python examples/ch06_optimizer_compare.py --sample --optimizers sgd,nesterov,adam
"""

import _common
from xpnet.nets import MultiLayerNet
from xpnet.optimizer import get_optimizer
from xpnet.util import smooth_curve


def main():
    p = _common.parser(__doc__, iters=2000)
    p.add_argument("--optimizers", default="sgd,momentum,adagrad,rmsprop,adam",
                   help="comma-separated: sgd, momentum, nesterov, adagrad, rmsprop, adam")
    p.add_argument("--batch-size", type=int, default=128, help="images per training step")
    args = p.parse_args()
    device = _common.device(args)
    (x_train, t_train), (x_test, t_test) = _common.load_data(args)

    names = [name.strip() for name in args.optimizers.split(",") if name.strip()]
    try:
        optimizers = {name: get_optimizer(name) for name in names}
    except ValueError as exc:
        _common.fail(f"error: --optimizers: {exc}")
    networks = {name: MultiLayerNet(784, [100, 100, 100, 100], 10, seed=args.seed, device=device)
                for name in names}
    iters = _common.iterations(args, len(x_train), args.batch_size)
    losses = _common.train_side_by_side(networks, optimizers, device.asarray(x_train), device.asarray(t_train),
                                        iters=iters, batch_size=args.batch_size, seed=args.seed, device=device)

    x_test, t_test = device.asarray(x_test), device.asarray(t_test)
    accuracies = {}
    for name, network in networks.items():
        accuracies[name] = network.accuracy(x_test, t_test)
        print(f"{name:>9}: final loss (smoothed) {smooth_curve(losses[name])[-1]:.4f}  "
              f"test acc {accuracies[name]:.4f}  (lr {optimizers[name].lr:g})")

    fig = _common.figure(8, 5)
    ax = fig.add_subplot()
    for name in names:
        ax.plot(range(1, iters + 1), smooth_curve(losses[name]), label=f"{name} (lr {optimizers[name].lr:g})")
    ax.set(xlabel="iteration", ylabel="training loss (smoothed)", ylim=(0, 1),
           title=f"optimizers on MNIST, batch {args.batch_size}")
    ax.legend()
    _common.save(fig, args, "ch06_optimizer_compare.png")
    _common.result(**{f"acc_{name}": accuracies[name] for name in names})


if __name__ == "__main__":
    main()

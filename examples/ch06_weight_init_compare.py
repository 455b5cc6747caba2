"""Chapter 6.2: the same 5-layer ReLU net trained from three initial weight scales.

MultiLayerNet 784-100-100-100-100-10 with weights drawn at std 0.01, Xavier
(sqrt(1/n)) and He (sqrt(2/n)); SGD lr 0.01, batches of 128, 2,000 steps as in
the book, all three nets on the same batches.  With std 0.01 the signal dies out
layer by layer and the loss hardly moves; He learns fastest.

    python examples/ch06_weight_init_compare.py --sample
"""

import _common
from xpnet.nets import MultiLayerNet
from xpnet.optimizer import SGD
from xpnet.util import smooth_curve

INITS = {"std0.01": 0.01, "xavier": "xavier", "he": "he"}


def main():
    p = _common.parser(__doc__, iters=2000)
    p.add_argument("--batch-size", type=int, default=128, help="images per training step")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    args = p.parse_args()
    device = _common.device(args)
    (x_train, t_train), (x_test, t_test) = _common.load_data(args)

    networks = {name: MultiLayerNet(784, [100, 100, 100, 100], 10, weight_init_std=std,
                                    seed=args.seed, device=device)
                for name, std in INITS.items()}
    optimizers = {name: SGD(lr=args.lr) for name in INITS}
    iters = _common.iterations(args, len(x_train), args.batch_size)
    losses = _common.train_side_by_side(networks, optimizers, device.asarray(x_train), device.asarray(t_train),
                                        iters=iters, batch_size=args.batch_size, seed=args.seed, device=device)

    x_test, t_test = device.asarray(x_test), device.asarray(t_test)
    accuracies = {name: network.accuracy(x_test, t_test) for name, network in networks.items()}
    fig = _common.figure(8, 5)
    ax = fig.add_subplot()
    for name in INITS:
        print(f"{name:>8}: final loss (smoothed) {smooth_curve(losses[name])[-1]:.4f}  test acc {accuracies[name]:.4f}")
        ax.plot(range(1, iters + 1), smooth_curve(losses[name]), label=name)
    ax.set(xlabel="iteration", ylabel="training loss (smoothed)", ylim=(0, 2.5),
           title=f"initial weight scale, ReLU, SGD lr {args.lr:g}")
    ax.legend()
    _common.save(fig, args, "ch06_weight_init_compare.png")
    _common.result(**{f"acc_{name}": accuracies[name] for name in INITS})


if __name__ == "__main__":
    main()

"""Chapter 6.5: random search for the learning rate and the weight decay, judged on validation data.

500 training images are shuffled and split: 20% become validation data, which
the search may look at (the test data it must never see).  Each of ``--trials``
trials (the book: 100) draws lr = 10**U(-6, -2) and weight decay = 10**U(-8, -4)
and trains a 7-layer ReLU net (784-100x6-10) for 50 epochs with SGD.  Prints the
best trials and plots the validation (solid) and training (dashed) accuracy of
the top 20: good learning rates lie around 1e-3 to 1e-2.

    python examples/ch06_hyperparameter_optimization.py --sample
"""

import math
import random

import _common
from xpnet.backend import Generator
from xpnet.nets import MultiLayerNet
from xpnet.util import shuffle_dataset


def main():
    p = _common.parser(__doc__, epochs=50, train_size=500)
    p.add_argument("--trials", type=int, default=100, help="random (lr, weight decay) draws to try")
    p.add_argument("--validation-rate", type=float, default=0.2,
                   help="share of the training images held out for validation")
    p.add_argument("--show", type=int, default=20, help="how many of the best trials to plot")
    args = p.parse_args()
    device = _common.device(args)
    (x_train, t_train), _ = _common.load_data(args)  # the test data stays out of the search

    x_train, t_train = shuffle_dataset(x_train, t_train, rng=Generator(args.seed))
    n_val = int(len(x_train) * args.validation_rate)
    x_val, t_val = x_train[:n_val], t_train[:n_val]
    x_train, t_train = x_train[n_val:], t_train[n_val:]
    print(f"{len(x_train)} training, {n_val} validation images")

    sampler = random.Random(args.seed)
    trials = []
    for trial in range(args.trials):
        weight_decay = 10 ** sampler.uniform(-8, -4)
        lr = 10 ** sampler.uniform(-6, -2)
        network = MultiLayerNet(784, [100] * 6, 10, weight_decay_lambda=weight_decay,
                                seed=args.seed + trial, device=device)
        history = _common.fit_variants(args, {"trial": network}, (x_train, t_train), (x_val, t_val), device,
                                       lr=lr, quiet=True)["trial"]
        trials.append((history["test_acc_list"][-1], lr, weight_decay, history))
        print(f"trial {trial + 1}/{args.trials}: val acc {trials[-1][0]:.4f} | lr {lr:.3g}, "
              f"weight decay {weight_decay:.3g}", flush=True)

    trials.sort(key=lambda trial: trial[0], reverse=True)
    print("=========== Hyper-Parameter Optimization Result ===========")
    shown = trials[:args.show]
    columns = min(5, len(shown))
    fig = _common.figure(2.6 * columns, 2.2 * math.ceil(len(shown) / columns))
    for rank, (val_acc, lr, weight_decay, history) in enumerate(shown, start=1):
        print(f"Best-{rank} (val acc: {val_acc:.4f}) | lr: {lr:.3g}, weight decay: {weight_decay:.3g}")
        ax = fig.add_subplot(math.ceil(len(shown) / columns), columns, rank)
        epochs = range(1, len(history["test_acc_list"]) + 1)
        ax.plot(epochs, history["test_acc_list"])
        ax.plot(epochs, history["train_acc_list"], "--")
        ax.set(title=f"Best-{rank}", ylim=(0, 1))
        ax.text(0.03, 0.97, f"lr {lr:.2g}\nwd {weight_decay:.2g}", transform=ax.transAxes,
                va="top", fontsize=7)
        if rank > 1:
            ax.set_yticklabels([])
        ax.set_xticklabels([])
    fig.suptitle("validation (solid) and training (dashed) accuracy of the best trials")
    _common.save(fig, args, "ch06_hyperparameter_optimization.png")
    best_acc, best_lr, best_decay, _ = trials[0]
    _common.result(best_val_acc=best_acc, best_lr=best_lr, best_weight_decay=best_decay)


if __name__ == "__main__":
    main()

"""Chapter 6.3: Batch Normalization -- training with and without it, across initial weight scales.

For each of ``--scales`` weight scales from 1 down to 0.0001 (log-spaced; the
book: 16), two 6-layer ReLU nets (784-100x5-10) start from the same weights, one
with a BatchNorm layer before each ReLU, and train on 1,000 images (SGD lr 0.01,
batches of 100, 20 epochs as in the book).  One panel per scale: training
accuracy per epoch, solid with Batch Norm, dashed without.  With Batch Norm the
net learns fast at almost any scale; without, only near the right scale.

    python examples/ch06_batch_norm.py --sample
"""

import math
import warnings

import _common
import numpy as np
from xpnet.nets import MultiLayerNetExtend


def main():
    p = _common.parser(__doc__, epochs=20, train_size=1000)
    p.add_argument("--scales", type=int, default=16, help="how many weight scales in [1e-4, 1]")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    args = p.parse_args()
    # without Batch Norm, the largest scales overflow float32 and diverge, as in the book
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    device = _common.device(args)
    train, test = _common.load_data(args)

    scales = np.logspace(0, -4, num=args.scales)
    columns = min(4, args.scales)
    fig = _common.figure(3.2 * columns, 2.6 * math.ceil(args.scales / columns))
    final = {"bn": [], "plain": []}
    for k, scale in enumerate(scales):
        networks = {label: MultiLayerNetExtend(784, [100] * 5, 10, weight_init_std=float(scale),
                                               use_batchnorm=(label == "bn"), seed=args.seed, device=device)
                    for label in ("bn", "plain")}
        histories = _common.fit_variants(args, networks, *[train, test], device, lr=args.lr, quiet=True)
        ax = fig.add_subplot(math.ceil(args.scales / columns), columns, k + 1)
        for label, style in (("bn", "-"), ("plain", "--")):
            acc = histories[label]["train_acc_list"]
            final[label].append(acc[-1])
            ax.plot(range(1, len(acc) + 1), acc, style,
                    label="Batch Norm" if label == "bn" else "no Batch Norm")
        ax.set(title=f"w scale {scale:.2g}", ylim=(0, 1))
        if k == 0:
            ax.legend(fontsize=7, loc="lower right")
        print(f"scale {scale:8.2g}: train acc with Batch Norm {final['bn'][-1]:.4f}, "
              f"without {final['plain'][-1]:.4f}", flush=True)
    fig.suptitle("training accuracy per epoch, by initial weight scale")
    _common.save(fig, args, "ch06_batch_norm.png")
    wins = sum(bn > plain for bn, plain in zip(final["bn"], final["plain"]))
    _common.result(bn_train_acc_mean=float(np.mean(final["bn"])),
                   plain_train_acc_mean=float(np.mean(final["plain"])), bn_better=f"{wins}/{args.scales}")


if __name__ == "__main__":
    main()

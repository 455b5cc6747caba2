"""Chapter 6.4: overfitting, and weight decay against it.

A 7-layer ReLU net (784-100x6-10) learns 300 training images for 201 epochs
(SGD lr 0.01, batches of 100, as in the book): without regularisation it soon
knows them all (train acc 1.0) while test accuracy stays far lower.  The same net
with weight decay (lambda 0.1: 0.5 * lambda * sum(W**2) added to the loss) keeps
the gap between the two curves smaller.

    python examples/ch06_overfit_weight_decay.py --sample
"""

import _common
from xpnet.nets import MultiLayerNet


def main():
    p = _common.parser(__doc__, epochs=201, train_size=300)
    p.add_argument("--weight-decay", type=float, default=0.1, help="lambda of the regularised net")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    args = p.parse_args()
    device = _common.device(args)
    train, test = _common.load_data(args)

    networks = {f"weight decay {decay:g}": MultiLayerNet(784, [100] * 6, 10, weight_decay_lambda=decay,
                                                         seed=args.seed, device=device)
                for decay in (0.0, args.weight_decay)}
    histories = _common.fit_variants(args, networks, train, test, device, lr=args.lr)
    fig = _common.accuracy_panels(histories, suptitle=f"{len(train[0])} training images")
    _common.save(fig, args, "ch06_overfit_weight_decay.png")
    plain, decayed = histories.values()
    _common.result(gap=plain["train_acc_list"][-1] - plain["test_acc_list"][-1],
                   gap_decay=decayed["train_acc_list"][-1] - decayed["test_acc_list"][-1],
                   test_acc=plain["test_acc_list"][-1], test_acc_decay=decayed["test_acc_list"][-1])


if __name__ == "__main__":
    main()

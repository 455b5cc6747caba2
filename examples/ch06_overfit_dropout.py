"""Chapter 6.4: overfitting, and Dropout against it.

A 7-layer ReLU net (784-100x6-10) learns 300 training images for 301 epochs
(SGD lr 0.01, batches of 100, as in the book): without regularisation it soon
knows them all (train acc 1.0) while test accuracy stays far lower.  The same net
with Dropout (each hidden unit dropped with probability 0.2 at every training
step) keeps the gap between the two curves smaller.

    python examples/ch06_overfit_dropout.py --sample
"""

import _common
from xpnet.nets import MultiLayerNetExtend


def main():
    p = _common.parser(__doc__, epochs=301, train_size=300)
    p.add_argument("--dropout-ratio", type=float, default=0.2, help="probability of dropping a unit")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate")
    args = p.parse_args()
    device = _common.device(args)
    train, test = _common.load_data(args)

    networks = {label: MultiLayerNetExtend(784, [100] * 6, 10, use_dropout=use_dropout,
                                           dropout_ration=args.dropout_ratio, seed=args.seed, device=device)
                for label, use_dropout in (("no dropout", False), (f"dropout {args.dropout_ratio:g}", True))}
    histories = _common.fit_variants(args, networks, train, test, device, lr=args.lr)
    fig = _common.accuracy_panels(histories, suptitle=f"{len(train[0])} training images")
    _common.save(fig, args, "ch06_overfit_dropout.png")
    plain, dropout = histories.values()
    _common.result(gap=plain["train_acc_list"][-1] - plain["test_acc_list"][-1],
                   gap_dropout=dropout["train_acc_list"][-1] - dropout["test_acc_list"][-1],
                   test_acc=plain["test_acc_list"][-1], test_acc_dropout=dropout["test_acc_list"][-1])


if __name__ == "__main__":
    main()

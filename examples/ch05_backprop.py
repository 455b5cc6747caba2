"""Chapter 5: gradient check (backprop vs numerical gradient), then training TwoLayerNet by backprop.

The gradient check compares, for each parameter, the gradient computed by the
layers' backward passes with the one computed by central differences on the
first ``--check-size`` training images, and prints their mean absolute difference
(the book: about 1e-10 in float64).  A much larger difference on W1/b1 (say
1e-5) means that for one image a hidden unit's input lies within h = 1e-4 of
ReLU's kink at 0: there the central difference, not backprop, is wrong (try
another ``--seed``).  Then the net is trained with SGD (lr 0.1,
batches of 100; the book: 10,000 steps, about 17 epochs of MNIST).

    python examples/ch05_backprop.py --sample
"""

import _common
from xpnet.nets import TwoLayerNet
from xpnet.trainer import Trainer


def main():
    p = _common.parser(__doc__, epochs=17)
    p.add_argument("--hidden-size", type=int, default=50, help="units in the hidden layer")
    p.add_argument("--check-size", type=int, default=3, help="images used for the gradient check")
    p.add_argument("--batch-size", type=int, default=100, help="images per training step")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                   help="float64 as in the book; in float32 the numerical gradient is only good to ~1e-4")
    args = p.parse_args()
    device = _common.device(args)
    (x_train, t_train), (x_test, t_test) = _common.load_data(args)
    network = TwoLayerNet(784, args.hidden_size, 10, dtype=args.dtype, seed=args.seed, device=device)

    # --- gradient check
    x_batch = device.asarray(x_train[:args.check_size])
    t_batch = device.asarray(t_train[:args.check_size])
    grad_numerical = network.numerical_gradient(x_batch, t_batch)
    grad_backprop = network.gradient(x_batch, t_batch)
    xp = device.xp
    diffs = {}
    for key in grad_numerical:
        diffs[key] = float(xp.mean(xp.abs(grad_backprop[key] - grad_numerical[key])))
        print(f"{key}: {diffs[key]:.3g}")  # the mean absolute difference, as the book prints it

    # --- training
    trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=args.epochs,
                      mini_batch_size=args.batch_size, optimizer="sgd", optimizer_param={"lr": args.lr},
                      verbose=True, device=device, seed=args.seed, sampling="shuffle")
    history = trainer.train()
    _common.save_curves(trainer, args, "ch05_curves.png")
    _common.result(grad_diff=max(diffs.values()), train_acc=history["train_acc_list"][-1],
                   test_acc=history["test_acc_list"][-1])


if __name__ == "__main__":
    main()

"""Chapter 7: training SimpleConvNet on MNIST, and its first-layer filters before and after.

conv (30 filters 5x5) -> ReLU -> 2x2 max pool -> affine (100) -> ReLU -> affine (10),
trained with Adam (lr 0.001), batches of 100, 20 epochs as in the book (about 99%
test accuracy on full MNIST).  On a CPU an epoch of the 8,000-image sample takes about
2-2.5 s on an idle 2-core machine (the README's Speed section: 3,400-4,800 images/s; 18-32 s were
measured with the machine shared by other jobs), of full MNIST 7.5 times as long.  As in
the book, train/test accuracy is measured on the first 1,000 images each epoch
(``--evaluate-samples``; the epoch lines and the plot's legend say so), and the final
test accuracy on the whole test set.
The 30 filters start as noise and end as edge and blob detectors.

    python examples/ch07_simple_convnet.py --sample --epochs 5
"""

from pathlib import Path

import _common
from xpnet.backend import to_numpy
from xpnet.nets import SimpleConvNet
from xpnet.trainer import Trainer


def show_filters(network, args, name, title):
    filters = to_numpy(network.params["W1"])  # (30, 1, 5, 5)
    fig = _common.image_grid(list(filters), columns=10, cmap="gray_r", suptitle=title, cell=0.9)
    _common.save(fig, args, name)


def main():
    p = _common.parser(__doc__, epochs=20)
    p.add_argument("--batch-size", type=int, default=100, help="images per training step")
    p.add_argument("--lr", type=float, default=0.001, help="learning rate")
    p.add_argument("--evaluate-samples", type=int, default=1000, help="images measured per epoch")
    args = p.parse_args()
    device = _common.device(args)
    (x_train, t_train), (x_test, t_test) = _common.load_data(args, flatten=False)

    network = SimpleConvNet(input_dim=(1, 28, 28),
                            conv_param={"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1},
                            hidden_size=100, output_size=10, weight_init_std=0.01,
                            seed=args.seed, device=device)
    show_filters(network, args, "ch07_filters_before.png", "first-layer filters, initial (random)")
    trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=args.epochs,
                      mini_batch_size=args.batch_size, optimizer="adam", optimizer_param={"lr": args.lr},
                      evaluate_sample_num_per_epoch=args.evaluate_samples, verbose=True,
                      device=device, seed=args.seed, sampling="shuffle")
    history = trainer.train()  # verbose: its last line is the accuracy on the whole test set
    test_acc = trainer.final_test_acc

    network.save_params(Path(args.out) / "ch07_simple_convnet_params.npz")
    show_filters(network, args, "ch07_filters_after.png", f"first-layer filters after {args.epochs} epoch(s)")
    _common.save_curves(trainer, args, "ch07_curves.png")
    _common.result(test_acc=test_acc, train_acc=history["train_acc_list"][-1])


if __name__ == "__main__":
    main()

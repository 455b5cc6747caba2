"""Chapter 8: DeepConvNet -- training, the test images it gets wrong, and inference in float16.

The book's VGG-like net (six 3x3 convolutions, He init, Dropout) trained with
Adam (lr 0.001, batches of 100).  The book trains 20 epochs on full MNIST and
reaches about 99.4% test accuracy; on a CPU an epoch of the 8,000-image sample
takes about 11 s on an idle 2-core machine (760 images/s, the README's Speed section)
and far longer on a busy one, so the default here is 3 epochs (``--epochs 20`` for the
book's run, best on a GPU).  ``--weights`` skips training and loads saved
parameters (.npz from this script, or the book's .pkl).

Then, as the book's ``misclassified_mnist.py``, the misclassified test images
are shown with the predicted label, and, as ``half_float_network.py``, the
parameters and test images are cast to float16 and the accuracy compared: half
the memory, (almost) the same accuracy.  NumPy has no fast float16 matrix product
(no BLAS), so on the CPU float16 inference is ~15x slower than float32 and only
the first ``--half-samples`` test images are used; on a GPU it is fast.

    python examples/ch08_deep_convnet.py --sample
    python examples/ch08_deep_convnet.py --sample --weights runs/examples/ch08_deep_convnet_params.npz
"""

from pathlib import Path

import _common
import numpy as np
from xpnet.nets import DeepConvNet
from xpnet.trainer import Trainer


def main():
    p = _common.parser(__doc__, epochs=3)
    p.add_argument("--weights", help="load these parameters instead of training")
    p.add_argument("--batch-size", type=int, default=100, help="images per training step")
    p.add_argument("--lr", type=float, default=0.001, help="learning rate")
    p.add_argument("--evaluate-samples", type=int, default=1000, help="images measured per epoch")
    p.add_argument("--half-samples", type=int, default=1000,
                   help="test images for the float16/float32 comparison (0: all)")
    p.add_argument("--show", type=int, default=20, help="misclassified images to show")
    args = p.parse_args()
    device = _common.device(args)
    (x_train, t_train), (x_test, t_test) = _common.load_data(args, flatten=False)

    network = DeepConvNet(seed=args.seed, device=device)
    weights = args.weights
    if weights is None:
        trainer = Trainer(network, x_train, t_train, x_test, t_test, epochs=args.epochs,
                          mini_batch_size=args.batch_size, optimizer="adam", optimizer_param={"lr": args.lr},
                          evaluate_sample_num_per_epoch=args.evaluate_samples, verbose=True,
                          device=device, seed=args.seed, sampling="shuffle")
        trainer.train()
        _common.save_curves(trainer, args, "ch08_curves.png")
        weights = Path(args.out) / "ch08_deep_convnet_params.npz"
        network.save_params(weights)
        print(f"wrote {weights}")
    else:
        try:
            network.load_params(weights)
        except (OSError, ValueError) as exc:
            _common.fail(f"error: --weights {weights}: {exc}")

    # --- misclassified test images
    predicted = _common.predict_labels(network, x_test, batch_size=100)
    test_acc = float(np.mean(predicted == t_test))
    print(f"test accuracy on all {len(x_test)} test images: {test_acc:.4f}")
    wrong = np.flatnonzero(predicted != t_test)[:args.show]
    fig = _common.image_grid([x_test[i] for i in wrong], [f"{predicted[i]} ({t_test[i]})" for i in wrong],
                             columns=10, suptitle="misclassified: predicted (true)")
    _common.save(fig, args, "ch08_misclassified.png")

    # --- float16: the same parameters, cast to half precision, on half-precision images
    n = len(x_test) if args.half_samples <= 0 else min(args.half_samples, len(x_test))
    half = DeepConvNet(dtype="float16", seed=args.seed, device=device)
    half.load_params(weights)  # values cast to the net's dtype, float16
    fp32_acc = _common.accuracy_with_bar(network, x_test[:n], t_test[:n], device, desc="float32")
    fp16_acc = _common.accuracy_with_bar(half, x_test[:n], t_test[:n], device, dtype="float16", desc="float16")
    print(f"on the first {n} test images: float32 accuracy {fp32_acc:.4f}, float16 accuracy {fp16_acc:.4f} "
          f"(params dtype {half.dtype})")
    _common.result(test_acc=test_acc, fp32_acc=fp32_acc, fp16_acc=fp16_acc, half_samples=n)


if __name__ == "__main__":
    main()

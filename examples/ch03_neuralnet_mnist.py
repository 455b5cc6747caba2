"""Chapter 3: a neural network's forward pass with fixed weights, on MNIST, 100 images at a time.

The net is the book's 784-50-100-10 sigmoid net: x @ W1 + b1 -> sigmoid -> @ W2 + b2 ->
sigmoid -> @ W3 + b3 -> softmax.  The book loads pretrained weights from
``sample_weight.pkl``; give them with ``--weights`` (the book's .pkl, read by a
restricted unpickler, or an .npz saved by xpnet).  Without ``--weights`` this script
first trains the same net for a few epochs with backpropagation (chapter 5), saves
the weights to ``<out>/ch03_weights.npz`` and loads them back; the chapter-3 part,
inference with fixed weights, then runs unchanged.

    python examples/ch03_neuralnet_mnist.py --sample
    python examples/ch03_neuralnet_mnist.py --weights sample_weight.pkl
"""

from pathlib import Path

import _common
from xpnet.functions import sigmoid, softmax
from xpnet.nets import MultiLayerNet
from xpnet.trainer import Trainer


def forward(params, x):
    """The chapter-3 forward pass, written out layer by layer."""
    a1 = x @ params["W1"] + params["b1"]
    z1 = sigmoid(a1)
    a2 = z1 @ params["W2"] + params["b2"]
    z2 = sigmoid(a2)
    a3 = z2 @ params["W3"] + params["b3"]
    return softmax(a3)


def main():
    p = _common.parser(__doc__, epochs=3)
    p.add_argument("--weights", help="pretrained weights W1..W3, b1..b3 (.pkl as the book's, or .npz)")
    p.add_argument("--batch-size", type=int, default=100, help="images per forward pass")
    args = p.parse_args()
    device = _common.device(args)
    (x_train, t_train), (x_test, t_test) = _common.load_data(args)

    def new_net():
        return MultiLayerNet(784, [50, 100], 10, activation="sigmoid", weight_init_std="xavier",
                             seed=args.seed, device=device)

    weights = args.weights
    if weights is None:
        print(f"no --weights given: training the net for {args.epochs} epoch(s) with backprop first "
              "(these are NOT the book's pretrained weights)")
        net = new_net()
        Trainer(net, x_train, t_train, x_test, t_test, epochs=args.epochs, optimizer="adam",
                optimizer_param={"lr": 0.001}, verbose=False, device=device, seed=args.seed, sampling="shuffle").train()
        Path(args.out).mkdir(parents=True, exist_ok=True)
        weights = Path(args.out) / "ch03_weights.npz"
        net.save_params(weights)
        print(f"wrote {weights}")

    network = new_net()
    try:
        network.load_params(weights)  # a fresh net, its weights fixed from the file
    except (OSError, ValueError) as exc:
        _common.fail(f"error: --weights {weights}: {exc}")
    params = network.params
    print(f"weights: {weights}")

    # the book's batched inference loop
    xp = device.xp
    x, t = device.asarray(x_test), device.asarray(t_test)
    accuracy_cnt = 0
    predictions = []
    with device.activate():
        for i in range(0, x.shape[0], args.batch_size):
            y_batch = forward(params, x[i:i + args.batch_size, ...])
            p_batch = xp.argmax(y_batch, axis=1)
            accuracy_cnt += int(xp.count_nonzero(p_batch == t[i:i + args.batch_size]))
            predictions.append(p_batch)
        predictions = _common.to_numpy(xp.concat(predictions))
    accuracy = accuracy_cnt / x.shape[0]
    print(f"Accuracy: {accuracy:.4f}  ({accuracy_cnt} of {x.shape[0]} test images)")
    print(f"network.accuracy() says: {network.accuracy(x, t):.4f}")

    shown = range(40)
    fig = _common.image_grid([x_test[i] for i in shown],
                             [f"{predictions[i]} ({t_test[i]})" for i in shown],
                             ["black" if predictions[i] == t_test[i] else "red" for i in shown],
                             suptitle="predicted (true) -- red: wrong")
    _common.save(fig, args, "ch03_predictions.png")
    _common.result(test_acc=accuracy)


if __name__ == "__main__":
    main()

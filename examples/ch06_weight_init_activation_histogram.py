"""Chapter 6.2: how the initial weights shape the activations of a 5-layer net (histograms per layer).

1,000 random inputs of 100 values go through 5 layers of 100 units, no training.
Weights are drawn with standard deviation 1, 0.01, Xavier's sqrt(1/n) and He's
sqrt(2/n) (n = 100 inputs per unit).  With sigmoid, std 1 pushes the activations
to 0 and 1 (vanishing gradients), std 0.01 squeezes them all to 0.5 (every unit
alike), Xavier keeps them spread out.  With ReLU, only He keeps the spread
equal from layer to layer.  No MNIST and no training here, so no --sample/--epochs.

    python examples/ch06_weight_init_activation_histogram.py
"""

import math

import _common
from xpnet.backend import Generator, to_numpy
from xpnet.functions import relu, sigmoid

ACTIVATIONS = {"sigmoid": sigmoid, "relu": relu}
NODES = 100
INITS = {"std1": 1.0, "std0.01": 0.01, "xavier": math.sqrt(1.0 / NODES), "he": math.sqrt(2.0 / NODES)}


def histogram_values(per_layer, act_name):
    """What each layer's histogram shows, and one range for the row that holds every value.

    Sigmoid outputs lie in 0..1.  ReLU outputs are 0 for about half the units (the dead
    half says nothing about the spread, and its spike would dwarf the rest), so the
    histogram shows the positive ones, on 0..max (at least 0..1, so that activations
    shrinking to 0 still look like it).
    """
    if act_name != "relu":
        return per_layer, (0.0, 1.0)
    shown = [values[values > 0] for values in per_layer]
    high = max([1.0] + [float(values.max()) for values in shown if values.size])
    return shown, (0.0, high)


def main():
    p = _common.parser(__doc__, mnist=False)
    p.add_argument("--layers", type=int, default=5, help="layers of 100 units")
    p.add_argument("--samples", type=int, default=1000, help="random inputs pushed through the layers")
    args = p.parse_args()
    device = _common.device(args)

    last_std = {}
    for act_name, activation in ACTIVATIONS.items():
        fig = _common.figure(2.2 * args.layers, 2.0 * len(INITS))
        for row, (init_name, scale) in enumerate(INITS.items()):
            rng = Generator(args.seed)  # same inputs and weight draws for every init: only the scale differs
            z = rng.normal((args.samples, NODES), device=device)
            per_layer = []
            for layer in range(args.layers):
                w = rng.normal((NODES, NODES), scale=scale, device=device)
                with device.activate():
                    z = activation(z @ w)
                per_layer.append(to_numpy(z).ravel())
            stds = [float(values.std()) for values in per_layer]
            shown, value_range = histogram_values(per_layer, act_name)
            for layer, values in enumerate(shown):
                ax = fig.add_subplot(len(INITS), args.layers, row * args.layers + layer + 1)
                ax.hist(values, bins=30, range=value_range)
                ax.set_yticks([])
                ax.locator_params(axis="x", nbins=3)
                if row == 0:
                    ax.set_title(f"layer {layer + 1}")
                if layer == 0:
                    ax.set_ylabel(f"{init_name}\n(std {scale:.3g})")
            last_std[f"{act_name}_{init_name}"] = stds[-1]
            print(f"{act_name:>7} {init_name:>7}: activation std per layer " + " ".join(f"{s:.4f}" for s in stds))
        shown = "positive activations (the zeros are left out)" if act_name == "relu" else "activations"
        fig.suptitle(f"{act_name}: {shown} per layer, by initial weight scale")
        _common.save(fig, args, f"ch06_weight_init_hist_{act_name}.png")
    print(f"std of layer {args.layers}'s activations, per activation and init:")
    _common.result(**last_std)


if __name__ == "__main__":
    main()

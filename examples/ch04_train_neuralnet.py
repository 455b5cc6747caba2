"""Chapter 4: training TwoLayerNet by gradient descent, with numerical gradients and with backprop.

Chapter 4 computes the gradient by central differences: two forward passes per
weight, ~80,000 passes per step for a 784-50-10 net.  This script first takes
``--numerical-steps`` SGD steps that way on tiny mini-batches (``--numerical-batch``
images), and the same steps (same start, same batches) with backpropagation
(chapter 5), and prints the time per step of each: the losses agree, the times do
not.  The backprop net then trains on for ``--epochs`` with batches of
``--batch-size`` (the book: 10,000 steps of 100 images, about 17 epochs of MNIST).

xpnet's TwoLayerNet is the book's chapter-5 net (ReLU hidden layer); chapter 4's
had sigmoid.  float64 by default, as in the book: numerical gradients need it.

    python examples/ch04_train_neuralnet.py --sample
"""

import time

import _common
from xpnet.backend import Generator
from xpnet.nets import TwoLayerNet
from xpnet.optimizer import SGD
from xpnet.trainer import Trainer


def main():
    p = _common.parser(__doc__, epochs=17)
    p.add_argument("--hidden-size", type=int, default=50, help="units in the hidden layer")
    p.add_argument("--batch-size", type=int, default=100, help="images per training step")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate")
    p.add_argument("--numerical-steps", type=int, default=3, help="steps taken with numerical gradients")
    p.add_argument("--numerical-batch", type=int, default=10, help="images per numerical-gradient step")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64", help="float64 as in the book")
    args = p.parse_args()
    device = _common.device(args)
    (x_train, t_train), (x_test, t_test) = _common.load_data(args)

    def new_net():
        return TwoLayerNet(784, args.hidden_size, 10, dtype=args.dtype, seed=args.seed, device=device)

    # --- the race: numerical gradient vs backprop, from the same weights on the same batches
    nets = {"numerical": new_net(), "backprop": new_net()}
    optimizers = {name: SGD(lr=args.lr) for name in nets}
    seconds = {name: 0.0 for name in nets}
    losses = {name: [] for name in nets}
    x, t = device.asarray(x_train), device.asarray(t_train)
    rng = Generator(args.seed)
    xp = device.xp
    for step in range(args.numerical_steps):
        batch = rng.integers(x.shape[0], args.numerical_batch, device=device)
        x_batch, t_batch = xp.take(x, batch, axis=0), xp.take(t, batch, axis=0)
        if step == 0:
            nets["backprop"].gradient(x_batch, t_batch)  # warm-up call, so the timing is of steady work
        for name, net in nets.items():
            start = time.perf_counter()
            grads = net.numerical_gradient(x_batch, t_batch) if name == "numerical" \
                else net.gradient(x_batch, t_batch)
            optimizers[name].update(net.params, grads)
            device.synchronize()
            seconds[name] += time.perf_counter() - start
            losses[name].append(float(net.loss(x_batch, t_batch)))
        print(f"step {step + 1}/{args.numerical_steps}: loss numerical {losses['numerical'][-1]:.6f}  "
              f"backprop {losses['backprop'][-1]:.6f}", flush=True)
    per_step = {name: s / args.numerical_steps for name, s in seconds.items()}
    speedup = per_step["numerical"] / per_step["backprop"]
    print(f"time per step: numerical gradient {per_step['numerical']:.3f} s, backprop "
          f"{per_step['backprop'] * 1e3:.3f} ms -> backprop is {speedup:,.0f} times faster")

    # --- then the backprop net learns for real
    net = nets["backprop"]
    trainer = Trainer(net, x_train, t_train, x_test, t_test, epochs=args.epochs,
                      mini_batch_size=args.batch_size, optimizer=optimizers["backprop"],
                      verbose=True, device=device, seed=args.seed, sampling="shuffle")
    history = trainer.train()

    fig = _common.figure(10, 4)
    ax_loss, ax_time = fig.subplots(1, 2)
    steps = range(1, args.numerical_steps + 1)
    ax_loss.plot(steps, losses["numerical"], "o-", label="numerical gradient")
    ax_loss.plot(steps, losses["backprop"], "x--", label="backprop")
    ax_loss.set(xlabel="step", ylabel="loss on the step's batch", title="the same steps, two ways", xticks=steps)
    ax_loss.legend()
    ax_time.bar(list(per_step), list(per_step.values()), color=["tab:blue", "tab:orange"])
    ax_time.set(yscale="log", ylabel="seconds per step (log)", title=f"backprop {speedup:,.0f}x faster")
    _common.save(fig, args, "ch04_numerical_vs_backprop.png")
    _common.save_curves(trainer, args, "ch04_curves.png")
    _common.result(test_acc=history["test_acc_list"][-1], numerical_s_per_step=per_step["numerical"],
                   backprop_s_per_step=per_step["backprop"], speedup=round(speedup))


if __name__ == "__main__":
    main()

"""Operations per training step: xpnet on its torch backend vs PyTorch's own model, counted.

On a GPU a step at batch 100 is launch-bound: its time is about (kernels per step) x
(host cost per launch, CuPy ~10-20 us).  This script counts the kernels without a GPU:
PyTorch's dispatcher (``TorchDispatchMode``) sees every tensor operation of one
training step (forward, backward, optimizer update; batch 100, float32), once for
xpnet running on its torch backend (``backend.get_device(torch, torch.device("cpu"))``)
and once for PyTorch's own model of the same architecture (the models of
``bench_step.py``) with multi-tensor Adam (``foreach=True``, PyTorch's default on CUDA).
View operations (reshape, transpose, slicing, detach) launch nothing and are not counted,
nor are PyTorch's profiler markers and its reads of host-side scalars (``NOT_KERNELS``).

With ``--rnnlm`` a second table counts one RNN language-model iteration (``bench_rnnlm.py``'s
Rnnlm and BetterRnnlm: forward, backward, tied gradients merged, gradient clipping, SGD; batch 20,
time 35) against the same model in PyTorch (``nn.LSTM``).

    python benchmarks/bench_ops.py
    python benchmarks/bench_ops.py --markdown --write
    python benchmarks/bench_ops.py --rnnlm
"""

from __future__ import annotations

import argparse
import collections
from typing import Callable

from _report import environment, markdown_table, write_result
from bench_step import NETS, torch_cases

from xpnet import backend
from xpnet.optimizer import Adam


NOT_KERNELS = {
    "_record_function_enter_new": "a profiler marker that torch.optim emits",
    "_record_function_exit": "a profiler marker that torch.optim emits",
    "_local_scalar_dense": "reads a CPU scalar tensor: Adam's step count lives on the host",
}


def count_ops(step: Callable[[], object]) -> collections.Counter:
    """The non-view aten operations ``step()`` dispatches, by name (``"mul"``, ``"copy_"``...)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Counting(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.counts: collections.Counter = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not func.is_view and func.overloadpacket.__name__ not in NOT_KERNELS:
                self.counts[func.overloadpacket.__name__] += 1
            return func(*args, **(kwargs or {}))

    with Counting() as mode:
        step()
    return mode.counts


def xpnet_step(name: str, batch: int) -> Callable[[], object]:
    """One xpnet training step of net ``name`` on the torch (CPU) backend, after one warm-up step."""
    import torch

    device = backend.get_device(torch, torch.device("cpu"))
    rng = backend.Generator(0)
    x = rng.uniform((batch, 1, 28, 28), device=device)
    t = rng.integers(10, batch, device=device)
    net, optimizer = NETS[name](seed=0, device=device), Adam(lr=0.001)

    def step() -> None:
        optimizer.update(net.params, net.gradient(x, t))

    step()  # Adam's state is created lazily: count a steady-state step
    return step


def torch_step(name: str, batch: int) -> Callable[[], object]:
    """One step of ``bench_step.py``'s PyTorch model ``name`` with ``Adam(foreach=True)``, after a warm-up."""
    import torch

    rng = backend.Generator(0)
    x, t = rng.uniform((batch, 1, 28, 28)), rng.integers(10, batch)
    train_step = torch_cases("cpu", x, t, "float32")[f"{name} train step|torch"]
    model, _ = train_step.__defaults__  # bench_step binds (model, optimizer) as defaults
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001, eps=1e-7, foreach=True)
    train_step(model, optimizer)
    return lambda: train_step(model, optimizer)


def rnnlm_rows(n_top: int) -> tuple[list[list[str]], list[str]]:
    """Ops of one iteration of each ``bench_rnnlm`` model: xpnet on the torch backend vs PyTorch."""
    import torch
    from bench_rnnlm import MODELS, torch_iteration, xpnet_iteration

    device = backend.get_device(torch, torch.device("cpu"))
    rows, details = [], []
    for name in MODELS:
        steps = [xpnet_iteration(name, device), torch_iteration(name)]
        for step in steps:
            step()  # warm-up: the recurrent state exists from the second iteration on
        ours, theirs = (count_ops(step) for step in steps)
        total, reference = sum(ours.values()), sum(theirs.values())
        rows.append([name, str(total), str(reference), f"{total / reference:.2f}", top(ours, n_top), top(theirs, n_top)])
        details.append(f"- {name}, xpnet: {top(ours, len(ours))}\n- {name}, PyTorch: {top(theirs, len(theirs))}")
    return rows, details


def top(counts: collections.Counter, n: int = 3) -> str:
    return ", ".join(f"{op} {k}" for op, k in counts.most_common(n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--top", type=int, default=3, help="how many of xpnet's largest op kinds to list")
    parser.add_argument("--details", action="store_true", help="also list every op kind of both libraries")
    parser.add_argument("--markdown", action="store_true", help="print the environment header too")
    parser.add_argument("--write", action="store_true", help="save the table under benchmarks/results/")
    parser.add_argument("--rnnlm", action="store_true", help="also count one RNN language-model iteration (bench_rnnlm.py)")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401  (the counter is PyTorch's dispatcher)
    except ImportError:
        raise SystemExit("bench_ops.py counts with PyTorch's dispatcher: pip install torch (or \".[bench]\")")

    rows, details = [], []
    for name in NETS:
        ours, theirs = count_ops(xpnet_step(name, args.batch)), count_ops(torch_step(name, args.batch))
        total, reference = sum(ours.values()), sum(theirs.values())
        rows.append([name, str(total), str(reference), f"{total / reference:.1f}", top(ours, args.top),
                     top(theirs, args.top)])
        details.append(f"- {name}, xpnet: {top(ours, len(ours))}\n- {name}, PyTorch: {top(theirs, len(theirs))}")
    table = markdown_table([f"net (batch {args.batch}, float32, Adam)", "xpnet ops/step", "PyTorch ops/step",
                            "ratio", "xpnet's largest", "PyTorch's largest"], rows)
    body = f"## Non-view tensor operations per training step\n\n{table}\n"
    if args.rnnlm:
        lm_rows, lm_details = rnnlm_rows(args.top)
        details += lm_details
        body += "\n## Non-view tensor operations per RNN LM iteration\n\n" + markdown_table(
            ["model (batch 20, time 35, float32, SGD)", "xpnet ops/iteration", "PyTorch ops/iteration", "ratio",
             "xpnet's largest", "PyTorch's largest"], lm_rows) + "\n"
    if args.details:
        body += "\n## Every op kind\n\n" + "\n".join(details) + "\n"
    if not (args.markdown or args.write):
        print(body)
        return
    text = environment(backend.CPU, title="xpnet operations-per-step count", args=vars(args), notes=[
        "counted with torch.utils._python_dispatch.TorchDispatchMode, one steady-state step each; "
        "view ops (func.is_view) are not counted, nor " + "; ".join(f"{op} ({why})" for op, why in NOT_KERNELS.items()),
        "xpnet: its own nets and Adam on the torch CPU backend; PyTorch: bench_step.py's models, "
        "torch.optim.Adam(foreach=True) (its CUDA default); a GPU would launch about one kernel per op"])
    text += "\n" + body
    print(text)
    if args.write:
        print(f"written: {write_result('ops', backend.CPU, text)}")


if __name__ == "__main__":
    main()

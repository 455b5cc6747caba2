"""RNN language-model iterations: xpnet vs PyTorch CPU (``nn.LSTM``) vs the book's own code.

One iteration = forward + backward + the tied weight's gradients merged (BetterRnnlm) +
gradient clipping (norm 0.25) + SGD (lr 20), as the book's ``RnnlmTrainer`` does it, on
random ids of PTB's vocabulary (V = 10000), batch 20, time 35, float32:

- ``Rnnlm`` (ch06 ``rnnlm.py``): embedding 100, one LSTM of 100;
- ``BetterRnnlm`` (ch06 ``better_rnnlm.py``): 650/650, two LSTMs, dropout 0.5, tied weights.

All three run in ONE process, interleaved (``bench_step.run``: an idle gap and a warm-up
before each timed block), at 1 and at 2 BLAS threads (threadpoolctl for NumPy's BLAS,
``torch.set_num_threads`` for PyTorch).  ``--book-dir`` is a checkout of
oreilly-japan/deep-learning-from-scratch-2 (its ``common/`` and ``ch06/`` are imported
from there at run time; none of it is in this repository).  Unset the machine's OpenBLAS
overrides for the run::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_rnnlm.py \\
        --book-dir /path/to/deep-learning-from-scratch-2 --rounds 3 --write
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
from _report import environment, markdown_table, write_result

from xpnet import backend
from xpnet.book2.grads import clip_grads, merge_shared, shared_pairs
from xpnet.book2.time_layers import TimeAffine, TimeDropout, TimeEmbedding, TimeLSTM, TimeSoftmaxWithLoss
from xpnet.hostmem import keep_freed_host_memory
from xpnet.optimizer import SGD

MODELS = {"Rnnlm": dict(D=100, H=100, layers=1, dropout=0.0, tied=False),
          "BetterRnnlm": dict(D=650, H=650, layers=2, dropout=0.5, tied=True)}
V, BATCH, TIME, LR, MAX_GRAD = 10000, 20, 35, 20.0, 0.25


class XpnetLM:
    """The chapter's model on xpnet's time layers: embedding, [dropout], LSTM x layers with
    dropout after each, affine (tied to the embedding when ``tied``), softmax loss."""

    def __init__(self, D: int, H: int, layers: int, dropout: float, tied: bool,
                 device: backend.Device = backend.CPU, seed: int = 0) -> None:
        rng = backend.Generator(seed)

        def normal(*shape: int, scale: float) -> object:
            return rng.normal(shape, scale=scale, device=device)

        embed_W = normal(V, D, scale=0.01)
        self.layers = [TimeEmbedding(embed_W)]
        sizes = [D] + [H] * layers
        for d_in in sizes[:-1]:
            if dropout:
                self.layers.append(TimeDropout(dropout, rng=backend.Generator(seed + 1)))
            self.layers.append(TimeLSTM(normal(d_in, 4 * H, scale=d_in ** -0.5), normal(H, 4 * H, scale=H ** -0.5),
                                        normal(4 * H, scale=0.0), stateful=True))
        if dropout:
            self.layers.append(TimeDropout(dropout, rng=backend.Generator(seed + 2)))
        affine_W = embed_W.T if tied else normal(H, V, scale=H ** -0.5)
        self.layers.append(TimeAffine(affine_W, normal(V, scale=0.0)))
        self.loss_layer = TimeSoftmaxWithLoss()
        self.params = [p for layer in self.layers for p in layer.params]
        self.grads = [g for layer in self.layers for g in layer.grads]

    def forward(self, xs: object, ts: object) -> object:
        for layer in self.layers:
            xs = layer.forward(xs)
        return self.loss_layer.forward(xs, ts)

    def backward(self, dout: float = 1.0) -> None:
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)


def xpnet_iteration(name: str, device: backend.Device = backend.CPU, seed: int = 0) -> Callable[[], object]:
    """One RnnlmTrainer-style iteration of xpnet's model ``name`` on ``device``."""
    model, optimizer = XpnetLM(**MODELS[name], device=device, seed=seed), SGD(lr=LR)
    pairs = shared_pairs(model.params)  # found once, as the trainer does
    ids = backend.Generator(seed + 3).integers(V, 2 * BATCH * TIME, device=device)
    xs, ts = device.xp.reshape(ids[:BATCH * TIME], (BATCH, TIME)), device.xp.reshape(ids[BATCH * TIME:], (BATCH, TIME))

    def step() -> None:
        model.forward(xs, ts)
        model.backward()
        params, grads = merge_shared(model.params, model.grads, pairs)
        clip_grads(grads, MAX_GRAD)
        optimizer.update(params, grads)

    return step


def torch_iteration(name: str, seed: int = 0) -> Callable[[], object]:
    """The same model in PyTorch: ``nn.Embedding``, ``nn.LSTM`` (with dropout between and
    around the layers), ``nn.Linear`` (weight tied), ``cross_entropy``, ``clip_grad_norm_``, SGD."""
    import torch

    cfg = MODELS[name]
    torch.manual_seed(seed)

    class LM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(V, cfg["D"])
            self.lstm = torch.nn.LSTM(cfg["D"], cfg["H"], cfg["layers"], batch_first=True, dropout=cfg["dropout"])
            self.drop = torch.nn.Dropout(cfg["dropout"])
            self.affine = torch.nn.Linear(cfg["H"], V)
            if cfg["tied"]:
                self.affine.weight = self.embed.weight

        def forward(self, xs, state):
            hs, state = self.lstm(self.drop(self.embed(xs)), state)
            return self.affine(self.drop(hs)), state

    model = LM()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    ids = torch.randint(0, V, (2, BATCH, TIME))
    state = [None]

    def step() -> None:
        optimizer.zero_grad()
        score, new_state = model(ids[0], state[0])
        state[0] = tuple(s.detach() for s in new_state)
        torch.nn.functional.cross_entropy(score.reshape(-1, V), ids[1].reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD)
        optimizer.step()

    return step


def book_iteration(name: str, book_dir: Path, seed: int = 0) -> Callable[[], object]:
    """The book's own ``ch06`` model, ``common.trainer.remove_duplicate``, ``clip_grads`` and ``SGD``."""
    for path in (str(book_dir), str(book_dir / "ch06")):
        if path not in sys.path:
            sys.path.insert(0, path)
    from common.optimizer import SGD as BookSGD
    from common.trainer import remove_duplicate
    from common.util import clip_grads as book_clip_grads

    module = __import__({"Rnnlm": "rnnlm", "BetterRnnlm": "better_rnnlm"}[name])
    np.random.seed(seed)
    model, optimizer = getattr(module, name)(), BookSGD(lr=LR)
    ids = np.random.randint(0, V, (2, BATCH, TIME))

    def step() -> None:
        model.forward(ids[0], ids[1])
        model.backward()
        params, grads = remove_duplicate(model.params, model.grads)
        book_clip_grads(grads, MAX_GRAD)
        optimizer.update(params, grads)

    return step


def run(cases: dict[str, Callable[[], object]], rounds: int, iterations: int, gap: float) -> dict[str, dict]:
    """Interleaved rounds: per round and case, ``gap`` seconds idle (the other libraries'
    spinning threads go to sleep), one warm-up iteration, then ``iterations`` timed ones.
    Returns per case the wall-clock and the process CPU seconds per iteration, per round: on a
    machine shared with other work the CPU time of a one-thread run is the steadier number."""
    samples = {key: {"wall": [], "cpu": []} for key in cases}
    for _ in range(rounds):
        for key, fn in cases.items():
            time.sleep(gap)
            fn()
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(iterations):
                fn()
            samples[key]["wall"].append((time.perf_counter() - wall) / iterations)
            samples[key]["cpu"].append((time.process_time() - cpu) / iterations)
    return samples


def blas_kernel() -> str:
    from threadpoolctl import threadpool_info

    return "; ".join(f"{i['internal_api']} {i.get('version')} {i.get('architecture')} ({i['filepath'].rsplit('/', 1)[-1]})"
                     for i in threadpool_info() if i["user_api"] == "blas")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=2, help="timed iterations per block")
    parser.add_argument("--gap", type=float, default=0.3, help="idle seconds before each timed block")
    parser.add_argument("--book-dir", type=Path, default=None, help="a checkout of deep-learning-from-scratch-2")
    parser.add_argument("--write", action="store_true", help="save the table under benchmarks/results/")
    args = parser.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    keep_freed_host_memory()  # for every library alike: no page faults from large temporaries
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        with threadpool_limits(limits=threads, user_api="blas"):
            for name in args.models:
                cases = {"xpnet": xpnet_iteration(name), "torch": torch_iteration(name)}
                if args.book_dir:
                    cases["book"] = book_iteration(name, args.book_dir)
                samples = run(cases, args.rounds, args.iterations, args.gap)
                ms = {key: {clock: statistics.median(v[clock]) * 1e3 for clock in v} for key, v in samples.items()}

                def cell(key: str, clock: str) -> str:
                    if key not in ms:
                        return "-"
                    v = samples[key][clock]
                    return f"{ms[key][clock]:.0f} ({min(v) * 1e3:.0f}-{max(v) * 1e3:.0f})"

                for clock in ("wall", "cpu"):
                    book = f"{ms['book'][clock] / ms['xpnet'][clock]:.2f}" if "book" in ms else "-"
                    rows.append([name, str(threads), clock, cell("xpnet", clock), cell("torch", clock), cell("book", clock),
                                 f"{ms['xpnet'][clock] / ms['torch'][clock]:.2f}", book])
                    print(" | ".join(rows[-1]), flush=True)
    table = markdown_table(["model (batch 20, time 35, float32)", "BLAS threads", "clock", "xpnet ms", "PyTorch ms", "book ms",
                            "xpnet/PyTorch", "book/xpnet"], rows)
    text = environment(backend.CPU, title="RNN language model iterations (CPU)", args=vars(args), notes=[
        f"BLAS: {blas_kernel()}; PyTorch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()})",
        "one iteration = forward + backward + tied gradients merged + clip_grads(0.25) + SGD(lr=20); "
        "milliseconds per iteration: median of the rounds (min-max); clock wall = elapsed, "
        "cpu = this process's CPU time (all its threads, spinning included)",
        f"interleaved in one process, {args.rounds} rounds x {args.iterations} iterations per case, each block after "
        f"a {args.gap:g} s idle gap and one warm-up iteration"])
    text += "\n" + table + "\n"
    print(text)
    if args.write:
        print(f"written: {write_result('rnnlm', backend.CPU, text)}")


if __name__ == "__main__":
    main()

"""Shared parts of the benchmark scripts: the environment header, tables, result files."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from xpnet import backend

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("xpnet", "numpy", "array-api-compat", "cupy-cuda12x", "cupy-cuda13x", "torch")


def machine(device: backend.Device) -> str:
    """A one-line description of the machine and, on a GPU, the card."""
    cpu = platform.processor() or platform.machine()
    text = f"{platform.system()} {cpu}, {os.cpu_count()} CPU cores"
    if device.name.startswith("cuda"):
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(device.native.id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        text += f", GPU {name} ({props['totalGlobalMem'] / 2**30:.0f} GiB)"
    return text


FULL_FP32 = ("precision: full FP32 on both sides (TF32 off: torch.backends.cuda.matmul.allow_tf32=False, "
             "torch.backends.cudnn.allow_tf32=False; CuPy CUPY_TF32=0)")


def pin_full_fp32() -> str:
    """Make xpnet (CuPy) and PyTorch compute in the same precision, full FP32: PyTorch's cuDNN
    convolutions use TF32 by default on Ampere and later, CuPy's matmuls only with CUPY_TF32=1.
    Call it before CuPy is imported; returns the note for the table."""
    os.environ["CUPY_TF32"] = "0"
    try:
        import torch
    except ImportError:
        return FULL_FP32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return FULL_FP32


def source() -> str:
    """The commit timed (``XPNET_COMMIT`` when the copy has no ``.git``, as on a lent GPU
    machine), and whether ``xpnet/`` had uncommitted changes (they are timed too)."""
    root = RESULTS.parent.parent
    given = os.environ.get("XPNET_COMMIT", "").strip()
    if given and not (root / ".git").exists():
        return f"git {given} (XPNET_COMMIT)"

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "xpnet")
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"git {commit}" + (" + uncommitted changes in xpnet/" if dirty else "")


def environment(device: backend.Device, *, title: str, args: dict, notes: list[str]) -> str:
    """The Markdown header: date, machine, device, versions, arguments, notes."""
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    lines = [
        f"# {title}", "",
        f"- date: {datetime.date.today().isoformat()}",
        f"- machine: {machine(device)}",
        f"- device: {device.name}",
        f"- versions: {', '.join(versions)}, Python {platform.python_version()}",
        f"- source: {source()}",
        f"- arguments: {' '.join(f'--{k.replace(chr(95), chr(45))}={v}' for k, v in args.items())}",
    ]
    lines += [f"- note: {note}" for note in notes]
    return "\n".join(lines) + "\n"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(kind: str, device: backend.Device, text: str) -> Path:
    """Save ``text`` as ``results/<date>-<kind>-<device>.md``; returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{datetime.date.today().isoformat()}-{kind}-{device.name.replace(':', '')}.md"
    path.write_text(text)
    return path

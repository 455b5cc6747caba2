"""Running notebooks in a real IPython kernel (nbclient), as a learner's Jupyter would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_notebook(cells: Iterable[str], cwd: Path, timeout: int = 120, allow_errors: bool = False,
                 **env: str) -> Any:
    """Execute the code ``cells`` in a fresh python3 kernel started in ``cwd`` (with this
    repository first on its path); return the executed notebook (``nb.cells[i].outputs``).
    With ``allow_errors`` every cell runs even after one raised (see :func:`error_of`)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells])
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", "MPLBACKEND", *env)}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved["PYTHONPATH"]]))
    os.environ.pop("MPLBACKEND", None)  # the kernel's own inline backend, as in Jupyter
    os.environ.update(env)
    try:
        client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3", allow_errors=allow_errors,
                                         resources={"metadata": {"path": str(cwd)}})
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook


def text_of(cell: Any, name: str = "stdout") -> str:
    """All of a cell's stream output on ``name`` (stdout or stderr), joined."""
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream" and out.name == name)


def images_of(cell: Any) -> int:
    """How many images the cell shows: every PNG among its display_data and execute_result outputs."""
    return sum("image/png" in out.get("data", {}) for out in cell.outputs
               if out.output_type in ("display_data", "execute_result"))


def error_of(cell: Any) -> str | None:
    """``"Name: message"`` of the exception a cell raised, or ``None``."""
    errors = [f"{out.ename}: {out.evalue}" for out in cell.outputs if out.output_type == "error"]
    return errors[0] if errors else None

"""Runs book scripts one after another in this process (started by tests/book_scripts.py).

``python book_driver.py JOBS_JSON RESULTS_FILE``: each job names a script, its folder, extra
``sys.path`` entries, environment and log file; after each script the results file says how
it went (``ok``, the traceback, seconds), so a timeout still tells which script was running.
Between scripts: figures closed, NumPy's print options reset, the chapters' own modules
forgotten, NumPy's global generator seeded 0 before the next.
"""

import contextlib
import json
import os
import runpy
import sys
import time
import traceback

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

try:
    import PIL.Image
    PIL.Image.Image.show = lambda self, *a, **k: None
except ImportError:
    pass
jobs, results_file = json.loads(sys.argv[1]), sys.argv[2]
base_path, base_modules, results = list(sys.path), set(sys.modules), {}
print_options = np.get_printoptions()
for job in jobs:
    os.chdir(job["cwd"])
    sys.path[:] = [job["cwd"]] + [os.path.abspath(p) for p in job["extra_path"]] + base_path
    saved_env = dict(os.environ)
    os.environ.update(job["env"])
    np.random.seed(0)
    results[job["script"]] = {"ok": None}
    with open(results_file, "w") as f:
        json.dump(results, f)
    start, error = time.perf_counter(), None
    with contextlib.ExitStack() as stack:
        if job["log"]:
            log = stack.enter_context(open(job["log"], "w"))
            stack.enter_context(contextlib.redirect_stdout(log))
            stack.enter_context(contextlib.redirect_stderr(log))
        sys.argv = [job["path"]]
        try:
            runpy.run_path(job["path"], run_name="__main__")
        except BaseException:
            error = traceback.format_exc()
    plt.close("all")
    np.set_printoptions(**print_options)  # ch02 sets precision=3 for the scripts after it
    os.environ.clear()
    os.environ.update(saved_env)
    for name in set(sys.modules) - base_modules:
        module_file = getattr(sys.modules[name], "__file__", None) or ""
        if module_file.startswith(job["root"]) and not name.split(".")[0] in ("common", "dataset"):
            del sys.modules[name]
    results[job["script"]] = {"ok": error is None, "error": error, "seconds": time.perf_counter() - start}
    with open(results_file, "w") as f:
        json.dump(results, f)

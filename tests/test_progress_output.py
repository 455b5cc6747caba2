"""Progress output where a learner sees it: a Jupyter kernel without widgets gets a clean text
bar (no TqdmWarning, a handful of frames, not hundreds) and the command line writing to a log
file gets one line per epoch, no carriage-return frames."""

import re
import subprocess
import sys

from _notebook import ROOT, run_notebook, text_of

EPOCH = re.compile(r"^epoch (\d+)/(\d+)  loss \d\.\d{4}  train acc \d\.\d{4}", re.M)

TRAIN_IN_A_CELL = """\
from xpnet.datasets import spiral
from xpnet.nets import MultiLayerNet
from xpnet.trainer import Trainer

x, t = spiral.load_data()
net = MultiLayerNet(2, [10], 3, seed=0)
trainer = Trainer(net, x, t, x, t, epochs=3, mini_batch_size=3, optimizer="sgd",
                  optimizer_param={"lr": 0.5}, seed=0)
trainer.train();"""


def test_training_in_a_kernel_without_widgets_prints_clean_text(tmp_path):
    (cell,) = run_notebook([TRAIN_IN_A_CELL], tmp_path, OPENBLAS_NUM_THREADS="1").cells
    err, out = text_of(cell, "stderr"), text_of(cell)
    assert "TqdmWarning" not in err and "IProgress" not in err
    assert [int(epoch) for epoch, _ in EPOCH.findall(out)] == [1, 2, 3]
    # 300 steps in 3 epochs: a few frames per epoch (open, refreshes at most once a second,
    # close), not one per step
    streams = [o for o in cell.outputs if o.output_type == "stream"]
    assert len(streams) <= 40 and err.count("\r") <= 40, (len(streams), err.count("\r"))


def test_the_command_line_into_a_log_file_writes_one_line_per_epoch(tmp_path):
    log = tmp_path / "log"
    with open(log, "w") as f:
        done = subprocess.run([sys.executable, "-m", "xpnet", "train", "--model", "two_layer_net", "--dataset",
                               "spiral", "--device", "cpu", "--epochs", "3", "--batch-size", "3", "--optimizer",
                               "sgd", "--lr", "0.5", "--out", str(tmp_path / "run")],
                              stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, timeout=120)
    text = log.read_text()
    assert done.returncode == 0, text
    assert "\r" not in text
    assert [int(epoch) for epoch, _ in EPOCH.findall(text)] == [1, 2, 3]
    assert len(text.splitlines()) <= 12, text

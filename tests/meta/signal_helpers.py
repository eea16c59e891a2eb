"""Meta-training in a child process that the tests signal: its script, its
environment, and waiting for it to reach a point."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import skmeta

ROOT = str(Path(skmeta.__file__).resolve().parents[1])

# Meta-train in a fresh process; a callback writes a file at iteration 5 and
# slows the run so that the parent's signal arrives mid-way. The script's
# `finally` and atexit handler write files too.
CHILD = """
import atexit, json, sys, time
from pathlib import Path
import numpy as np
from skmeta.meta.callbacks import Callback
from skmeta.meta.train import TrainSettings, meta_train

class Slow(Callback):
    def on_step_end(self, loop, loss, metrics):
        if loop.n_iter == 5:
            Path(sys.argv[1], "started").touch()
        time.sleep(0.02)

folder, settings = sys.argv[1], json.loads(sys.argv[2])
settings["input_shape"] = tuple(settings["input_shape"])
X, y = np.load(folder + "/X.npy"), np.load(folder + "/y.npy")
atexit.register(Path(folder, "atexit").touch)
try:
    meta_train(X, y, TrainSettings(**settings), callbacks=[Slow()])
finally:
    Path(folder, "finally").touch()
"""


def default_signals() -> None:
    """In the child (``preexec_fn``): every signal's default disposition (a
    test run in the background, or under nohup, ignores SIGINT or SIGHUP,
    which the child would inherit); Python then installs its own SIGINT
    handler."""
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def environment() -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    return env


def start(argv: list, **options) -> subprocess.Popen:
    """A child process with the default signal dispositions, stderr piped."""
    return subprocess.Popen(
        argv,
        env=environment(),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
        **options,
    )


def start_child(folder, settings_json: str) -> subprocess.Popen:
    """:data:`CHILD` meta-training on `folder`'s X.npy and y.npy."""
    return start([sys.executable, "-c", CHILD, str(folder), settings_json])


def wait_for(path: Path, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert child.poll() is None, child.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.005)


def signal_child_run(folder, X, y, settings: dict, signum: int):
    """Meta-train on (X, y) in a child (:data:`CHILD`, checkpointing at
    ``folder/run.ckpt`` only when the run ends), send it `signum` after
    iteration 5, and wait for it: (exit status, its stderr, the checkpoint's
    path)."""
    import json

    import numpy as np

    np.save(Path(folder) / "X.npy", X)
    np.save(Path(folder) / "y.npy", y)
    path = Path(folder) / "run.ckpt"
    settings = dict(settings, checkpoint=str(path), checkpoint_every=10**6)
    child = start_child(folder, json.dumps(settings))
    wait_for(Path(folder) / "started", child)
    child.send_signal(signum)
    _, stderr = child.communicate(timeout=60)
    return child.returncode, stderr, path

"""Meta-training's progress, as a callback (:mod:`.callbacks`).

On a terminal (or in a notebook) a tqdm bar; on any other stream, a batch
job's log file above all, plain lines at most every minute: tqdm's
carriage-return updates made one ever-growing line there (25 KB in 21 s, about
100 MB a day, a reviewer's SLURM log). A run resumed from a checkpoint says
so, and its count, rate, ETA and closing line are this session's iterations.
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

from .._tqdm_streams import LOG_INTERVAL, interactive
from .callbacks import Callback

__all__ = ["ProgressBar", "summary_line"]

# A bar without the bar, for a log: "desc: 150/1000 [01:05<06:10, 2.30it/s, ...]"
_LINE = "{desc}: {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


class ProgressBar(Callback):
    """Progress over the iterations, with the latest record's loss and
    metrics: a tqdm bar where the stream is a terminal or a notebook, plain
    lines at most every `interval` seconds elsewhere (a log file), and one
    closing line (:func:`summary_line`).

    The bar starts at the first iteration's end, where a checkpoint
    restored the run (``on_train_begin`` of a :class:`~.checkpoint.Checkpoint`
    runs after this one's): a resumed run prints ``resumed from <path> at
    iteration N of M`` and counts this session's iterations in the rate and
    the time left.

    Parameters
    ----------
    description : str
    interval : float, default=60
        Seconds between two lines where the stream is not a terminal.
    file : file-like, optional
        Where to write; ``sys.stderr`` when None (read when the run starts).
    """

    def __init__(
        self, description: str, interval: float = LOG_INTERVAL, file=None
    ) -> None:
        self.description, self.interval, self.file = description, interval, file
        self.bar, self.start = None, None

    def on_train_begin(self, loop):
        self.stream = sys.stderr if self.file is None else self.file
        self.interactive = interactive(self.stream)
        self.bar, self.start, self.postfix = None, None, {}
        self.began = time.perf_counter()
        self.next_line = self.began + self.interval

    def _started(self, loop, start: int) -> None:
        """This session's first iteration is done (or none will be): `start`
        iterations were done before it."""
        self.start = start
        for callback in loop.callbacks:
            resumed = getattr(callback, "resumed_from", None)
            if resumed is not None:
                tqdm.write(
                    f"{self.description}: resumed from {callback.path} at "
                    f"iteration {resumed} of {loop.settings.max_iter}",
                    file=self.stream,
                )
                break
        if self.interactive:
            self.bar = tqdm(
                total=loop.settings.max_iter,
                initial=start,
                desc=self.description,
                unit="it",
                leave=False,
                file=self.stream,
            )
            # timed from the session's start, the first iteration included
            self.bar.start_t -= time.perf_counter() - self.began

    def on_step_end(self, loop, loss, metrics):
        if self.start is None:
            self._started(loop, loop.n_iter - 1)
        if self.bar is not None:
            self.bar.update(loop.n_iter - self.bar.n)
            return
        now = time.perf_counter()
        if now >= self.next_line:
            self.next_line = now + self.interval
            print(self._line(loop, now - self.began), file=self.stream, flush=True)

    def _line(self, loop, seconds: float) -> str:
        """A progress line for a log: iterations, time, rate, time left."""
        return tqdm.format_meter(
            loop.n_iter,
            loop.settings.max_iter,
            seconds,
            prefix=self.description,
            postfix=", ".join(f"{k}={v}" for k, v in self.postfix.items()),
            bar_format=_LINE,
            initial=self.start,
        )

    def on_record(self, loop, record):
        metric = loop.algorithm.metric
        shown = ("loss", metric, f"val_{metric}")
        self.postfix = {k: f"{v:.3g}" for k, v in record.items() if k in shown}
        if self.bar is not None:
            self.bar.set_postfix(self.postfix)

    def on_train_end(self, loop):
        if self.start is None:  # no iteration in this session
            self._started(loop, loop.n_iter)
        if self.bar is not None:
            self.bar.close()
        seconds = time.perf_counter() - self.began
        line = summary_line(self.description, loop, seconds, self.start)
        tqdm.write(line, file=self.stream)


def summary_line(description: str, loop, seconds: float, start: int = 0) -> str:
    """The line a progress bar leaves behind: iterations, time, the last
    record's loss and metrics, and how the run ended.

    Parameters
    ----------
    description : str
    loop : MetaTrainer
    seconds : float
        This session's time.
    start : int, default=0
        The iteration a checkpoint resumed at: the session's iterations are
        those after it.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> loop = SimpleNamespace(n_iter=200, history=[{"loss": 0.5, "accuracy": 0.81,
    ...     "val_accuracy": 0.77}], algorithm=SimpleNamespace(metric="accuracy"),
    ...     interrupted=False, stop=True, best_iter=150)
    >>> summary_line("meta-training protonet", loop, 12.34)
    'meta-training protonet: 200 iterations in 12.3 s; loss 0.5, accuracy 0.81, \
val_accuracy 0.77; stopped early; kept the weights of iteration 150'
    >>> summary_line("meta-training protonet", loop, 3.21, start=120)
    'meta-training protonet: 80 iterations (121-200; resumed at 120) in 3.21 s; \
loss 0.5, accuracy 0.81, val_accuracy 0.77; stopped early; kept the weights of \
iteration 150'
    """
    done = loop.n_iter - start
    which = ""
    if start:
        span = f"{start + 1}-{loop.n_iter}; " if done else ""
        which = f" ({span}resumed at {start})"
    parts = [f"{description}: {done} iterations{which} in {seconds:.3g} s"]
    if loop.history:
        metric = loop.algorithm.metric
        last = loop.history[-1]
        shown = [k for k in ("loss", metric, f"val_{metric}") if k in last]
        parts.append(", ".join(f"{k} {last[k]:.3g}" for k in shown))
    if loop.interrupted:
        parts.append("interrupted")
    elif loop.stop:
        parts.append("stopped early")
    if loop.best_iter != loop.n_iter:
        parts.append(f"kept the weights of iteration {loop.best_iter}")
    return "; ".join(parts)

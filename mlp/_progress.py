"""A one-line progress bar for long fits (epoch, loss, time left), written to stderr.

It stays silent on short fits: only once half a second has passed and the epochs done so far
predict a fit longer than `min_seconds` does it start drawing. Plain ASCII and carriage returns, so it needs no tqdm.
"""
from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class ProgressBar:
    """Draw ``Epoch 12/100 [###-------] 12% loss 0.0123 ETA 0:00:05`` over itself.

    Parameters
    ----------
    total : int
        The number of epochs.
    stream : file-like, default=sys.stderr
    min_seconds : float, default=2.0
        Draw only when the whole fit is predicted to take longer than this.
    force : bool or None, default=None
        True draws from the first epoch, False never draws, None decides by `min_seconds`.
    settle : float, default=0.5
        Seconds that must pass before the automatic decision is taken.
    """

    width = 24

    def __init__(self, total: int, stream=None, min_seconds: float = 2.0, force: bool | None = None,
                 settle: float = 0.5):
        self.total = total
        self.settle = settle
        self.stream = sys.stderr if stream is None else stream
        self.min_seconds = min_seconds
        self.force = force
        self.start = time.perf_counter()
        self.active = bool(force)
        self.drawn = False
        self.last_draw = -float("inf")
        # A terminal redraws in place, so it can be refreshed often; a log file gets one line per
        # refresh, so it is refreshed rarely.
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.interval = 0.1 if isatty() else 5.0

    def update(self, epoch: int, loss: float) -> None:
        """Report that `epoch` (1-based) has finished with training loss `loss`."""
        now = time.perf_counter()
        elapsed = now - self.start
        per_epoch = elapsed / epoch
        if not self.active and self.force is None:
            # Wait for some real time to pass: the first epoch carries one-off costs (thread
            # start-up, page faults) and alone would predict long fits that are not.
            self.active = (elapsed >= self.settle and per_epoch * self.total > self.min_seconds
                           and epoch < self.total)
        if not self.active or (now - self.last_draw < self.interval and epoch < self.total):
            return
        self.last_draw = now
        done = int(self.width * epoch / self.total)
        bar = "#" * done + "-" * (self.width - done)
        left = per_epoch * (self.total - epoch)
        line = (f"Epoch {epoch}/{self.total} [{bar}] {100 * epoch // self.total:3d}% "
                f"loss {loss:.6g} ETA {_clock(left)}")
        self.stream.write("\r" + line)
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """End the line, if one was drawn."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False

"""Training progress: tqdm when it is installed (a widget in Jupyter, a bar in a terminal), else
a plain bar on stderr that also renders in Jupyter and degrades to occasional lines in logs."""

import sys
import time


def _in_notebook():
    try:
        from IPython import get_ipython  # noqa: PLC0415 - optional dependency

        shell = get_ipython()
        return shell is not None and "IPKernelApp" in getattr(shell, "config", {})
    except Exception:  # noqa: BLE001 - any failure means "not in a notebook"
        return False


def _describe(record):
    parts = [f"loss {record['loss']:.4g}"]
    for key in ("accuracy", "rmse", "val_loss", "val_accuracy", "val_rmse"):
        if key in record:
            parts.append(f"{key} {record[key]:.4g}")
    return ", ".join(parts)


class PlainBar:
    """A dependency-free progress bar on a text stream.

    On a terminal or in Jupyter it redraws one line with carriage returns; elsewhere (a CI log,
    a file) it prints a line at most every 10% of the run, so logs stay short.
    """

    def __init__(self, total, desc="train", stream=None, delay=1.0):
        self.total = max(int(total), 1)
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.start = time.monotonic()
        interactive = getattr(self.stream, "isatty", lambda: False)()
        self.redraw = interactive or _in_notebook()
        self.last_tenth = -1
        self.shown = False

    def update(self, epoch, record):
        elapsed = time.monotonic() - self.start
        if elapsed < self.delay and epoch < self.total:
            return  # short runs stay silent, like the CLI's bars
        frac = min(epoch / self.total, 1.0)
        rate = epoch / elapsed if elapsed > 0 else 0.0
        eta = (self.total - epoch) / rate if rate > 0 else 0.0
        bar = "#" * int(frac * 24)
        line = (
            f"{self.desc} [{bar:<24}] {epoch}/{self.total} epochs "
            f"({frac:4.0%}, {elapsed:.1f}s, eta {eta:.1f}s) {_describe(record)}"
        )
        if self.redraw:
            self.stream.write("\r" + line)
            self.shown = True
        else:
            tenth = int(frac * 10)
            if tenth == self.last_tenth:
                return
            self.last_tenth = tenth
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self):
        if self.redraw and self.shown:
            self.stream.write("\n")
            self.stream.flush()


class TqdmBar:
    """tqdm.auto: a widget in Jupyter, a bar in a terminal."""

    def __init__(self, total, desc="train", delay=1.0):
        from tqdm.auto import tqdm  # noqa: PLC0415 - optional dependency

        try:
            self.bar = tqdm(total=total, desc=desc, unit="epoch", delay=delay)
        except TypeError:  # tqdm < 4.58 has no `delay`
            self.bar = tqdm(total=total, desc=desc, unit="epoch")
        self.n = 0

    def update(self, epoch, record):
        self.bar.update(epoch - self.n)
        self.n = epoch
        self.bar.set_postfix_str(_describe(record), refresh=False)

    def close(self):
        self.bar.close()


def make_bar(progress, total, desc="train"):
    """The bar for `progress`: True (tqdm if installed, else plain), "tqdm", "plain", a
    callable `f(epoch, total, record)`, or False/None (no bar)."""
    if progress is None or progress is False:
        return None
    if callable(progress) and not isinstance(progress, str):
        return progress
    if progress == "plain":
        bar = PlainBar(total, desc)
    elif progress == "tqdm":
        bar = TqdmBar(total, desc)
    elif progress is True:
        try:
            bar = TqdmBar(total, desc)
        except ImportError:
            bar = PlainBar(total, desc)
    else:
        raise ValueError(f"progress: {progress!r} is not one of True, False, 'tqdm', 'plain' or a callable")
    return bar

"""Fit pictures drawn in a process of their own, beside a process that writes many runs.

A sweep written by the stacked launcher knows every job's last fit before it writes the
first job: each picture is a function of the job's data, its setting's words, its fitted
line, step and k alone. Drawing one is matplotlib's work in Python (it holds Python's lock
throughout, so a thread would not draw beside the launcher), so here a second Python
process draws them in the order they are asked for, while the launcher writes the jobs;
each `Future` gives the PNG bytes. The worker draws with the same code as the image sink
(`FitPlot.drawn` in the last picture's figure, then `png`), so the bytes are those the
sink would write.

The worker is `python -m pipeline.sinks.fit_pictures`: requests and answers are pickled
over its stdin and stdout; it ignores Ctrl-C (its parent stops it by closing its stdin, or
by dying) and writes nothing to the terminal. If it cannot be started or it dies, the
pictures are drawn in this process instead, by the same code.
"""

from __future__ import annotations

import atexit
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections import deque
from concurrent.futures import Future
from typing import Any

import numpy as np

#: how long `close` lets the worker finish what it was asked before stopping it
CLOSE_SECONDS = 2.0


def fit_png(plot: Any, data: Any, label: str, line: tuple, step: int, k: float) -> tuple:
    """(the plot, its PNG) of a run's fit: `data` drawn in `plot` (a spare figure, or None),
    then `line` (x, y), the step and k over it, as the image sink draws a run's fit."""
    from pipeline.sinks.fit_plot import FitPlot

    plot = FitPlot.drawn(data, label, plot)
    return plot, plot.png(line[0], line[1], step=step, k=k)


class FitPictures:
    """Fit pictures drawn in order by one worker process; `submit` gives a Future."""

    def __init__(self) -> None:
        self._asked: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: deque[tuple[Future, tuple]] = deque()  # sent, not answered yet
        self._lock = threading.Lock()
        self._local_plot: Any = None  # the figure of pictures drawn here (worker gone)
        self._closed = False  # `close` ended the worker: nothing is drawn after it
        try:
            self._worker: subprocess.Popen | None = subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
        except OSError:
            self._worker = None
            return
        threading.Thread(target=self._send, name="tbpipe-fit-send", daemon=True).start()
        threading.Thread(target=self._receive, name="tbpipe-fit-receive", daemon=True).start()
        atexit.register(self.close)

    def submit(self, data: Any, label: str, line: tuple, step: int, k: float) -> Future:
        """The PNG of this fit (see `fit_png`), to be drawn by the worker."""
        future: Future = Future()
        request = (data, label, (np.asarray(line[0]), np.asarray(line[1])), int(step), float(k))
        with self._lock:
            if self._worker is None:
                self._draw_here(future, request)
                return future
            self._waiting.append((future, request))
        self._asked.put(request)
        return future

    def _draw_here(self, future: Future, request: tuple) -> None:
        try:
            self._local_plot, png = fit_png(self._local_plot, *request)
        except Exception as error:  # raised where the picture is taken
            future.set_exception(error)
        else:
            future.set_result(png)

    def _send(self) -> None:
        stream = self._worker.stdin
        try:
            while (request := self._asked.get()) is not None:
                pickle.dump(request, stream, protocol=pickle.HIGHEST_PROTOCOL)
                stream.flush()
            stream.close()
        except (OSError, ValueError):  # the worker is gone: `_receive` draws what is left
            pass

    def _receive(self) -> None:
        stream = self._worker.stdout
        while True:
            try:
                ok, answer = pickle.load(stream)
            except Exception:  # EOF: the worker ended (closed, or died)
                break
            with self._lock:
                future, _ = self._waiting.popleft()
            if ok:
                future.set_result(answer)
            else:
                future.set_exception(RuntimeError(answer))
        with self._lock:  # whatever it had not answered is drawn here, in order
            self._worker = None
            left = [] if self._closed else list(self._waiting)
            self._waiting.clear()
            for future, request in left:
                self._draw_here(future, request)

    def close(self) -> None:
        """End the worker once it has answered what it was asked (at most a few seconds:
        a process left with pictures not taken, e.g. interrupted, stops it) and reap it.
        Pictures not sent to it yet are not drawn."""
        self._closed = True
        try:
            while self._asked.get_nowait() is not None:
                pass
        except queue.Empty:
            pass
        self._asked.put(None)
        worker = self._worker
        if worker is None:
            return
        try:
            worker.wait(timeout=CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _serve() -> None:
    """The worker: answer each pickled request on stdin with (True, PNG bytes), or
    (False, the error in words), until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    requests, answers = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    quiet = os.open(os.devnull, os.O_WRONLY)  # nothing else goes to the answers' pipe
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    plot = None
    while True:
        try:
            request = pickle.load(requests)
        except EOFError:
            return
        try:
            plot, png = fit_png(plot, *request)
            answer = (True, png)
        except Exception as error:
            plot, answer = None, (False, f"{type(error).__name__}: {error}")
        pickle.dump(answer, answers, protocol=pickle.HIGHEST_PROTOCOL)
        answers.flush()


if __name__ == "__main__":
    _serve()

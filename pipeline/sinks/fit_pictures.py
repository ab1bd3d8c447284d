"""Fit pictures drawn in processes of their own, beside a process that writes many runs.

A sweep written by the stacked launcher knows every job's last fit before it writes the
first job: each picture is a function of the job's data, its setting's words, its fitted
line, step and k alone. Drawing one is matplotlib's work in Python (it holds Python's lock
throughout, so a thread would not draw beside the launcher), so worker processes draw
them while the launcher writes the jobs, each worker the pictures it is given in the order
given; each `Future` gives the PNG bytes. The workers draw with the same code as the image
sink (`FitPlot.drawn` in the worker's last figure, then `png`), so the bytes are those the
sink would write, whichever worker draws them.

A worker is `python -m pipeline.sinks.fit_pictures`: requests and answers are pickled over
its stdin and stdout; it ignores Ctrl-C (its parent stops it by closing its stdin, or by
dying) and writes nothing to the terminal. If none can be started, or one dies, the
pictures it would have drawn are drawn in this process instead, by the same code.
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

#: how long `close` lets a worker finish what it was asked before stopping it
CLOSE_SECONDS = 2.0


def fit_png(plot: Any, data: Any, label: str, line: tuple, step: int, k: float) -> tuple:
    """(the plot, its PNG) of a run's fit: `data` drawn in `plot` (a spare figure, or None),
    then `line` (x, y), the step and k over it, as the image sink draws a run's fit."""
    from pipeline.sinks.fit_plot import FitPlot

    plot = FitPlot.drawn(data, label, plot)
    return plot, plot.png(line[0], line[1], step=step, k=k)


class FitPictures:
    """Fit pictures drawn by `workers` processes; `submit` gives a Future. Each picture goes
    to the worker with the fewest waiting (they all cost about the same)."""

    def __init__(self, workers: int = 1) -> None:
        self._local_plot: Any = None  # the figure of pictures drawn here (a worker gone)
        self._local_lock = threading.Lock()  # one figure: one picture drawn here at a time
        self._workers: list[_Worker] = []
        for _ in range(max(1, workers)):
            try:
                self._workers.append(_Worker(self._draw_here))
            except OSError:
                break
        atexit.register(self.close)

    def submit(self, data: Any, label: str, line: tuple, step: int, k: float) -> Future:
        """The PNG of this fit (see `fit_png`), to be drawn by a worker."""
        future: Future = Future()
        request = (data, label, (np.asarray(line[0]), np.asarray(line[1])), int(step), float(k))
        for worker in sorted(self._workers, key=_Worker.waiting_count):
            if worker.ask(future, request):
                return future
        self._draw_here(future, request)  # no worker left
        return future

    def _draw_here(self, future: Future, request: tuple) -> None:
        with self._local_lock:
            try:
                self._local_plot, png = fit_png(self._local_plot, *request)
            except Exception as error:  # raised where the picture is taken
                future.set_exception(error)
            else:
                future.set_result(png)

    def close(self) -> None:
        """End the workers once they have answered what they were asked (at most a few
        seconds: a process left with pictures not taken, e.g. interrupted, stops them) and
        reap them. Pictures not sent to them yet are not drawn."""
        for worker in self._workers:
            worker.stop_asking()
        for worker in self._workers:
            worker.reap()


class _Worker:
    """One drawing process: what it is asked goes down its stdin from a thread of its
    own, its answers come back on another, in the order asked. Should it end with pictures
    unanswered (it died), `draw_here` draws them, in order."""

    def __init__(self, draw_here: Any) -> None:
        self._asked: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: deque[tuple[Future, tuple]] = deque()  # sent, not answered yet
        self._lock = threading.Lock()
        self._draw_here = draw_here
        self._closed = False  # `stop_asking` ended it: nothing is drawn after it
        self.alive = True  # False once its answers have ended (closed, or it died)
        self.process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        threading.Thread(target=self._send, name="tbpipe-fit-send", daemon=True).start()
        threading.Thread(target=self._receive, name="tbpipe-fit-receive", daemon=True).start()

    def waiting_count(self) -> int:
        return len(self._waiting)

    def ask(self, future: Future, request: tuple) -> bool:
        """Queue this picture for the worker; False when it is gone."""
        with self._lock:
            if not self.alive or self._closed:
                return False
            self._waiting.append((future, request))
            self._asked.put(request)  # in the order of `_waiting`
        return True

    def _send(self) -> None:
        stream = self.process.stdin
        try:
            while (request := self._asked.get()) is not None:
                pickle.dump(request, stream, protocol=pickle.HIGHEST_PROTOCOL)
                stream.flush()
            stream.close()
        except (OSError, ValueError):  # the worker is gone: `_receive` draws what is left
            pass

    def _receive(self) -> None:
        stream = self.process.stdout
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
            self.alive = False
            left = [] if self._closed else list(self._waiting)
            self._waiting.clear()
        for future, request in left:
            self._draw_here(future, request)

    def stop_asking(self) -> None:
        """Take back what was not sent yet and close the worker's stdin after the rest."""
        with self._lock:
            self._closed = True
        try:
            while self._asked.get_nowait() is not None:
                pass
        except queue.Empty:
            pass
        self._asked.put(None)

    def reap(self) -> None:
        """Wait for the worker to end (`CLOSE_SECONDS` at most, then stop it)."""
        try:
            self.process.wait(timeout=CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _serve() -> None:
    """The worker: answer each pickled request on stdin with (True, PNG bytes), or
    (False, the error in words), until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it
    requests, answers = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    quiet = os.open(os.devnull, os.O_WRONLY)  # nothing else goes to the answers' pipe
    os.dup2(quiet, 1)
    os.dup2(quiet, 2)
    import pipeline.sinks.fit_plot  # noqa: F401  matplotlib loaded before the first picture is asked

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

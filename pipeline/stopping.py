"""Runs that stop before their last step: Ctrl-C / SIGTERM, and a loss that diverged.

A signal must not kill the process mid-write: the handler only notes it, and training
stops at the next chunk boundary (`SignalWatch.check`, the trainer's `on_chunk`), so the
caller can close the writers and say in metrics.json how the run ended. A second signal
gives up waiting and raises KeyboardInterrupt at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipeline.runinfo import DIVERGED, INTERRUPTED

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM before training started (e.g. during the TensorFlow import): ends the
    process like Ctrl-C does, so the run is marked `interrupted`, not left `running`."""

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def stop_before_training_on_sigterm() -> None:
    """From here until training starts, SIGTERM raises `Terminated` (Python's default
    would end the process at once, with metrics.json still saying `running`)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(signum)


def signal_of(stop: KeyboardInterrupt) -> int:
    """The signal behind a KeyboardInterrupt: SIGTERM for `Terminated`, else SIGINT."""
    return int(getattr(stop, "signum", signal.SIGINT))


class RunInterrupted(Exception):
    """Training stopped at `step` because the process received `signum`."""

    def __init__(self, signum: int, step: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name} at step {step}")
        self.signum, self.step = signum, step


class SignalWatch:
    """Remembers the first stop signal; `check(step)` raises `RunInterrupted` once one came."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def check(self, step: int) -> None:
        if self.signum is not None:
            if _after.planned is not None and step >= _after.planned:
                return  # every step is done: the run ends as it would, then stops (below)
            raise RunInterrupted(self.signum, step)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt  # asked twice: stop now
        self.signum = signum


@contextmanager
def stop_on_signals() -> Iterator[SignalWatch]:
    """While inside, SIGINT and SIGTERM are noted by the watch instead of ending the process."""
    watch = SignalWatch()
    if threading.current_thread() is not threading.main_thread():
        yield watch  # only the main thread may install handlers; the launcher's own apply
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, watch._handle)
    try:
        yield watch
    except BaseException:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        raise
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    if _after.planned is not None:  # the steps are done: what comes after them ends too
        _after.hold(watch.signum)


class _AfterTheSteps:
    """A job's signal that came once all its steps were done (`plan_steps` says how many).

    The run then completes as it would have (its final records, metrics.json
    `completed`): its steps are all there. The signal is held until `signal_after_steps`,
    so that the process still stops after the run (a sweep runs no further job)."""

    def __init__(self) -> None:
        self.planned: int | None = None
        self.signum: int | None = None
        self.previous: dict[int, Any] = {}

    def hold(self, signum: int | None) -> None:
        self.signum = signum
        if threading.current_thread() is threading.main_thread():
            self.previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
            for number in STOP_SIGNALS:
                signal.signal(number, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        if self.signum is not None:
            raise Terminated(signum)  # asked twice: stop now
        self.signum = signum


_after = _AfterTheSteps()


def plan_steps(steps: int | None) -> None:
    """The job about to run plans `steps` steps: a signal once they are done is held
    (see `signal_after_steps`) instead of marking the job interrupted. None: forget it."""
    _after.planned, _after.signum = steps, None


def signal_after_steps() -> int | None:
    """The signal that came after the job's steps were done (None if none); the handlers
    from before training are back."""
    for number, handler in _after.previous.items():
        signal.signal(number, handler)
    signum, _after.previous = _after.signum, {}
    plan_steps(None)
    return signum


def interrupted_ending(stop: RunInterrupted, steps_planned: int) -> dict[str, Any]:
    """The status and reason metrics.json records for a run stopped by a signal."""
    name = signal.Signals(stop.signum).name
    return {
        "status": INTERRUPTED,
        "reason": f"{name} received after step {stop.step} of {steps_planned}; "
        "events up to that step are kept",
        "signal": name,
    }


def diverged_ending(step: int, learning_rate: Any) -> dict[str, Any]:
    """The status, reason and hint metrics.json records for a loss that became NaN or Inf."""
    hint = "lower optimizer.learning_rate"
    if isinstance(learning_rate, (int, float)):
        hint += f" (now {learning_rate:g}; try {learning_rate / 10:g})"
    return {
        "status": DIVERGED,
        "reason": f"the loss became NaN or Inf at step {step}; {hint}",
    }

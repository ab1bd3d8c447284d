"""Claim a run or sweep directory for this process alone: at the moment it is created, and
for as long as the process that launched or resumes it lives.

Checking that a directory is new and then letting Hydra create it is check-then-act: two
`tbpipe` started at once with the same `hydra.run.dir` both pass the check and both write
into one dir. Here the directory is created with `os.mkdir` (no `exist_ok`): the kernel
lets exactly one process create it, and every other one gets one line and exit 2 before
writing anything. Hydra then finds the dir already there and writes into it.

The process that launches a run or a sweep (`hold=True`) or resumes one (`resuming=True`)
then holds `<dir>/.tbpipe.lock` (`pid host start-time`) until it exits: `tbpipe resume`
refuses a dir whose lock names a live process, from the first moment of a sweep (before
its first job has a dir) to its summary. A process is the pid and its start time
(`pipeline.runinfo.process_alive`): a lock left by a killed process is taken over, also
when its pid has since been given to another process.
"""

from __future__ import annotations

import atexit
import errno
import fcntl
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from pipeline.check.errors import BadInput
from pipeline.runinfo import pid_started, process_alive

#: held by the one process that launches or resumes a directory (see `claim_dir`)
OWNER_LOCK = ".tbpipe.lock"


@dataclass
class Claim:
    """A directory this process created or resumes; `release()` drops its lock, if held."""

    path: Path
    lock: Path | None = None

    def release(self) -> None:
        if self.lock is not None:
            try:
                if _holder(self.lock) == _me():  # never remove a lock another process took over
                    self.lock.unlink()
            except OSError:
                pass  # gone already, or its dir with it
            self.lock = None


def claim_dir(
    path: str | os.PathLike, key: str, *, resuming: bool = False, hold: bool = False
) -> Claim:
    """Create `path` for this process alone, or raise `BadInput` (one line naming `key`).

    The contract (the only function that makes a run or sweep dir tbpipe's):

    - `resuming=False` (every new run and sweep): the parents are created as needed and
      `path` itself with `os.mkdir`, which fails if it exists. Of two processes aiming at
      one dir exactly one gets it; the other raises before it has written anything. An
      existing directory, empty or not, is never claimed: tbpipe writes only into a dir
      it created. With `hold=True` (the console script, whose process is the run or the
      sweep) the new dir's lock is taken too, until the process exits.
    - `resuming=True` (`tbpipe resume` re-entering a run or sweep dir it means to
      continue): `path` must exist and its lock must be free or stale; it is then held.
      A second resume, or a resume of a dir still being launched, gets `BadInput`.

    A lock is removed by `Claim.release()` and, failing that, when the process exits
    (atexit); one left by a killed process is taken over.
    """
    path = Path(path)
    if resuming:
        if not path.is_dir():
            raise BadInput(f"{key}={path} is not a directory: nothing to resume")
        return _hold(path, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path)
    except FileExistsError:
        raise BadInput(
            f"{key}={path} already exists (another tbpipe may have just created it); "
            "tbpipe writes only into a directory it creates: choose a new one"
        ) from None
    except OSError as error:
        reason = os.strerror(error.errno or errno.EACCES)
        raise BadInput(f"cannot write {key}={path}: {reason}") from None
    return _hold(path, key, created=True) if hold else Claim(path)


def owner_of(path: str | os.PathLike) -> str | None:
    """`pid N on HOST` of the live process that launches or resumes `path`; None if none.
    A lock of another host cannot be checked from here: it counts as held."""
    lock = Path(path) / OWNER_LOCK
    try:
        holder = _holder(lock)
    except FileNotFoundError:
        return None
    except OSError:
        holder = None
    if holder is None:
        return "another process"  # being written this instant, or not tbpipe's
    return None if _gone(holder) else _said(holder)


def _hold(path: Path, key: str, created: bool = False) -> Claim:
    lock = path / OWNER_LOCK
    line = " ".join(map(str, _me())) + "\n"
    try:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            fd = _take_over(lock, key)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, line.encode())
        finally:
            os.close(fd)
    except OSError as error:
        if created:  # nothing of it is left: the dir was made a moment ago, for this run
            lock.unlink(missing_ok=True)
            path.rmdir()
        raise BadInput(f"cannot write {key}={path}: {os.strerror(error.errno or 0)}") from None
    claim = Claim(path, lock)
    atexit.register(claim.release)
    return claim


def _take_over(lock: Path, key: str) -> int:
    """The fd of an existing lock once this process may have it (its holder is gone), else
    BadInput. Two processes taking one stale lock over are serialised by `flock`, and the
    lock is rewritten in place, so the second one finds the first one's pid."""
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder = _holder(lock)
        if holder is not None and _gone(holder):
            return fd  # the flock goes with the fd once this process has written its line
    except BlockingIOError:
        holder = None  # another process is taking it over this instant
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    who = "another process" if holder is None else _said(holder)
    raise BadInput(
        f"{key}={lock.parent} is being launched or resumed by {who} ({lock}); "
        "wait for it to end, or stop it first"
    )


def _me() -> tuple[int, str, int | None]:
    return os.getpid(), socket.gethostname(), pid_started(os.getpid())


def _holder(lock: Path) -> tuple[int, str, int | None] | None:
    """(pid, host, start time) from a lock; None when it cannot be read as one.
    FileNotFoundError: no lock."""
    words = lock.read_text().split()
    try:
        pid, host = int(words[0]), words[1]
        started = int(words[2]) if len(words) > 2 and words[2] != "None" else None
    except (IndexError, ValueError):
        return None
    return pid, host, started


def _gone(holder: tuple[int, str, int | None]) -> bool:
    pid, host, started = holder
    return host == socket.gethostname() and not process_alive(pid, started)


def _said(holder: tuple[int, str, int | None]) -> str:
    return f"pid {holder[0]} on {holder[1]}"

"""Claim a run or sweep directory for this process alone, at the moment it is created.

Checking that a directory is new and then letting Hydra create it is check-then-act: two
`tbpipe` started at once with the same `hydra.run.dir` both pass the check and both write
into one dir. Here the directory is created with `os.mkdir` (no `exist_ok`): the kernel
lets exactly one process create it, and every other one gets one line and exit 2 before
writing anything. Hydra then finds the dir already there and writes into it.

A resumed run re-enters a directory on purpose (`tbpipe resume`): it says so with
`resuming=True` and holds `<dir>/.resume.lock`, created with O_EXCL, for as long as it runs.
"""

from __future__ import annotations

import atexit
import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from pipeline.check.errors import BadInput

#: held by the one process that resumes a directory (see `claim_dir`)
RESUME_LOCK = ".resume.lock"


@dataclass
class Claim:
    """A directory this process created (or is resuming); `release()` drops a resume lock."""

    path: Path
    lock: Path | None = None

    def release(self) -> None:
        if self.lock is not None:
            self.lock.unlink(missing_ok=True)
            self.lock = None


def claim_dir(path: str | os.PathLike, key: str, *, resuming: bool = False) -> Claim:
    """Create `path` for this process alone, or raise `BadInput` (one line naming `key`).

    The contract (the only function that makes a run or sweep dir tbpipe's):

    - `resuming=False` (every new run and sweep): the parents are created as needed and
      `path` itself with `os.mkdir`, which fails if it exists. Of two processes aiming at
      one dir exactly one gets it; the other raises before it has written anything. An
      existing directory, empty or not, is never claimed: tbpipe writes only into a dir
      it created.
    - `resuming=True` (`tbpipe resume` re-entering a run or sweep dir it means to
      continue): `path` must exist; `<path>/.resume.lock` is created with O_EXCL and
      holds `pid host`. A second resume of the same dir gets `BadInput` while the first
      holds it. A lock left by a process that no longer exists on this host (kill -9) is
      taken over. The lock is removed by `Claim.release()` and, failing that, when the
      process exits (atexit). Everything written while resuming must stay inside `path`.
    """
    path = Path(path)
    if resuming:
        return _claim_for_resume(path, key)
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
    return Claim(path)


def _claim_for_resume(path: Path, key: str) -> Claim:
    if not path.is_dir():
        raise BadInput(f"{key}={path} is not a directory: nothing to resume")
    lock = path / RESUME_LOCK
    for _ in range(2):  # a second try after taking over a stale lock
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _stale(lock):
                lock.unlink(missing_ok=True)
                continue
            holder = _read(lock) or "another process"
            raise BadInput(
                f"{key}={path} is being resumed by {holder} ({lock}); "
                "wait for it, or remove the lock if that process is gone"
            ) from None
        except OSError as error:
            raise BadInput(f"cannot resume {key}={path}: {os.strerror(error.errno)}") from None
        with os.fdopen(fd, "w") as stream:
            stream.write(f"{os.getpid()} {socket.gethostname()}\n")
        claim = Claim(path, lock)
        atexit.register(claim.release)
        return claim
    raise BadInput(f"{key}={path}: could not take {lock}")


def _read(lock: Path) -> str:
    try:
        pid, _, host = lock.read_text().strip().partition(" ")
    except OSError:
        return ""
    return f"pid {pid} on {host}" if pid else ""


def _stale(lock: Path) -> bool:
    """True if the lock's process ran on this host and is gone."""
    try:
        pid, _, host = lock.read_text().strip().partition(" ")
        pid_number = int(pid)
    except (OSError, ValueError):
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid_number, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False

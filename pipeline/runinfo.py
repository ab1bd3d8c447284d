"""What a run leaves: metrics.json (atomic), run.json (how to redo it), and the framing of
its event files (TFRecord records, walked here once for every reader and for resume)."""

from __future__ import annotations

import errno
import functools
import json
import math
import os
import platform
import re
import shlex
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

#: TensorBoard reads any file whose name contains this as an event file
EVENT_FILE_MARK = "tfevents"


class Records:
    """The records of one event file (a TFRecord file) in order, up to its first damaged one.

    A record is its data's length (8 bytes, little-endian), the length's masked CRC-32C, the
    data (an Event proto) and the data's masked CRC-32C. Iterating yields (offset, end,
    data) of each whole record; `checked` also checks both CRCs (with google-crc32c, in C).
    Where a record is cut short (or, checked, fails a CRC) it stops, as TensorBoard's loader
    does, and `problem` says why; `stop` lets a caller end it the same way (e.g. data that
    is not an Event)."""

    def __init__(self, data: bytes, checked: bool = True):
        self.data, self.checked = data, checked
        self.problem: str | None = None
        self.number = 0  # the record being read, from 1

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        import struct

        from pipeline.compat import masked_crc32c_function

        data, size, offset = self.data, len(self.data), 0
        header, footer = struct.Struct("<QI"), struct.Struct("<I")
        crc = masked_crc32c_function() if self.checked else None
        while offset < size and self.problem is None:
            self.number += 1
            if offset + 12 > size:
                self.stop(offset, "truncated: {}", "ends inside its header")
                return
            length, length_crc = header.unpack_from(data, offset)
            end = offset + 12 + length
            if crc is not None and crc(data[offset : offset + 8]) != length_crc:
                self.stop(offset, "malformed: {}", "has a bad length checksum")
            elif end + 4 > size:
                self.stop(
                    offset, "truncated: {}", f"needs {length + 16} bytes, the file ends first"
                )
            elif (
                crc is not None and crc(data[offset + 12 : end]) != footer.unpack_from(data, end)[0]
            ):
                self.stop(offset, "malformed: {}:", "its data fails its checksum")
            else:
                yield offset, end + 4, data[offset + 12 : end]
                offset = end + 4

    def stop(self, offset: int, where: str, problem: str) -> None:
        """End the walk at the record at `offset`, saying why (`where` holds its place)."""
        record_at = f"record {self.number} (byte {offset} of {len(self.data)})"
        self.problem = f"{where.format(record_at)} {problem}"


def framed(payloads: np.ndarray) -> np.ndarray:
    """`payloads` ((n, L) uint8: n records' data of one length) framed as TFRecord records,
    as `Records` reads them: (n, L + 16) uint8, each row a whole record, the rows in order.

    For writing many small records at once (a job's scalar events) without a Python call
    per record. A CRC-32C is affine in its data over GF(2), so for rows of one length the
    CRC of each row is the first row's CRC xor, for each byte where the row differs from
    the first row, a table entry of that difference at that column (`_byte_crc_tables`):
    one google-crc32c call and a few numpy operations for all the rows."""
    import struct

    import numpy as np

    from pipeline.compat import masked_crc32c

    count, length = payloads.shape
    header = struct.pack("<Q", length)
    records = np.empty((count, length + 16), dtype=np.uint8)
    records[:, :8] = np.frombuffer(header, dtype=np.uint8)
    records[:, 8:12] = np.frombuffer(struct.pack("<I", masked_crc32c(header)), dtype=np.uint8)
    records[:, 12:-4] = payloads
    if count == 0:
        return records
    first = payloads[0]
    columns = np.flatnonzero((payloads != first).any(axis=0))
    changes = _byte_crc_tables(length)[columns, payloads[:, columns] ^ first[columns]]
    crc = np.bitwise_xor.reduce(changes, axis=1, dtype=np.uint32, initial=_crc32c(first))
    masked = ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(0xA282EAD8)
    records[:, -4:] = masked.astype("<u4").view(np.uint8).reshape(count, 4)
    return records


def framed_record(payload: bytes) -> bytes:
    """One record's data framed as a TFRecord (its length, the length's CRC-32C, the data,
    the data's), each checksum computed on its own: for a few records of their own lengths,
    where `framed`'s tables would cost more than they save."""
    import struct

    from pipeline.compat import masked_crc32c

    header = struct.pack("<Q", len(payload))
    return b"".join(
        (header, struct.pack("<I", masked_crc32c(header)), payload,
         struct.pack("<I", masked_crc32c(payload)))
    )  # fmt: skip


def _crc32c(data: Any) -> int:
    """The plain (unmasked) CRC-32C of `data` (bytes or a buffer), by google-crc32c (in C)."""
    from google_crc32c import value

    return value(bytes(data))


@functools.cache
def _byte_crc_tables(length: int) -> np.ndarray:
    """For data of `length` bytes: what a byte `b` xor-ed into column `c` changes in the
    data's CRC-32C, at [c, b] (uint32): crc32c(0 * c, b, 0 * rest) ^ crc32c(0 * length).
    That change is linear in `b` too: each column's 8 single-bit changes, xor-ed."""
    import numpy as np

    zeros = _crc32c(bytes(length))
    single_bits = np.array(
        [
            [_crc32c(bytes(column) + bytes((1 << bit,)) + bytes(length - 1 - column)) ^ zeros
             for bit in range(8)]
            for column in range(length)
        ],
        dtype=np.uint32,
    )  # fmt: skip
    has_bit = (np.arange(256)[:, None] >> np.arange(8)) & 1 == 1  # [b, bit]
    return np.bitwise_xor.reduce(np.where(has_bit, single_bits[:, None, :], 0), axis=2)


#: how much of a file's end is searched first for its last record (most are < 10 KB)
TAIL_BYTES = 16384
#: how many offsets are compared at once when searching for the last record
SEARCH_CHUNK = 2**20


def ends_on_a_whole_record(file: Path) -> bool:
    """Whether `file` ends with a whole record: its length, the length's CRC, the data and
    the data's CRC, the data ending the file. A file cut inside its last record does not.

    TensorBoard's data server stops quietly at a cut record (it takes the file for one still
    being written); `Records` reports it. Searching back from the end for a record that ends
    there reads the file's last KBs instead of walking every record (docs/PERFORMANCE.md,
    "Reading runs back"); the part read grows 64-fold while no record is found (a large
    last record, or a cut file)."""
    with open(file, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        if size == 0:
            return True  # no records: nothing cut
        window = TAIL_BYTES
        while True:
            start = max(0, size - window)
            stream.seek(start)
            if _last_record_whole(stream.read()):
                return True
            if start == 0:
                return False
            window *= 64


def _last_record_whole(tail: bytes) -> bool:
    """Whether some offset of `tail` starts a record whose data ends `tail` with both CRCs;
    offsets are tried from the end, SEARCH_CHUNK at a time (memory stays ~8 x SEARCH_CHUNK)."""
    import numpy as np

    from pipeline.compat import masked_crc32c_function

    size = len(tail)
    crc = masked_crc32c_function()
    data_crc = int.from_bytes(tail[-4:], "little")
    high = size - 15  # offsets below this leave room for a header and a data CRC
    while high > 0:
        low = max(0, high - SEARCH_CHUNK)
        lengths = np.ndarray((high - low,), dtype="<u8", buffer=tail, offset=low, strides=(1,))
        fits = lengths == (size - 16 - low) - np.arange(high - low, dtype=np.uint64)
        for start in (low + np.flatnonzero(fits)[::-1]).tolist():
            length_crc = int.from_bytes(tail[start + 8 : start + 12], "little")
            if (
                crc(tail[start : start + 8]) == length_crc
                and crc(tail[start + 12 : -4]) == data_crc
            ):
                return True
        high = low
    return False


def user_cache_dir() -> Path | None:
    """Where tbpipe keeps what it can make again (the report cache, the tab's digests, the
    --help pages): `$TBPIPE_CACHE_DIR`, else `$XDG_CACHE_HOME/tbpipe`, else
    ~/.cache/tbpipe; None without a home directory."""
    root = os.environ.get("TBPIPE_CACHE_DIR")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    try:
        return Path(xdg, "tbpipe") if xdg else Path.home() / ".cache" / "tbpipe"
    except RuntimeError:  # no home directory
        return None


METRICS_FILE = "metrics.json"
#: the folder of a run dir that holds its checkpoints (pipeline/checkpoints.py)
CHECKPOINT_DIR = "checkpoints"
#: a complete checkpoint's index file (TensorFlow writes it last, once its data is written)
CHECKPOINT_INDEX = re.compile(r"^ckpt-(\d+)\.index$")


def saved_checkpoints(run_dir: Path) -> list[int]:
    """The steps of a run's complete checkpoints on disk, newest first (no TensorFlow)."""
    try:
        names = os.listdir(Path(run_dir) / CHECKPOINT_DIR)
    except OSError:
        return []
    found = (CHECKPOINT_INDEX.match(name) for name in names)
    return sorted((int(match.group(1)) for match in found if match), reverse=True)


# -- how a run ended: the `status` in metrics.json (docs/ERRORS.md lists the exit codes) --
RUNNING = "running"  # written as soon as the run starts; replaced when it ends
COMPLETED = "completed"
DIVERGED = "diverged"  # the loss became NaN or Inf
INTERRUPTED = "interrupted"  # SIGINT / SIGTERM
FAILED = "failed"  # an error inside the run, or a job that left no metrics
ENDINGS = (COMPLETED, DIVERGED, INTERRUPTED, FAILED)
# -- states only `tbpipe status` gives (never written to metrics.json) --
PENDING = "pending"  # a sweep's job that has not started training (no metrics.json yet)
DIED = "died"  # metrics.json says running, but its process is gone (or silent too long)
STATES = (PENDING, RUNNING, *ENDINGS, DIED)

#: what metrics.json holds, in this order: final statistics (k, k_true and k_error for a
#: task that estimates k; `final`: every scalar's last value, "<writer>/<tag>" -> value;
#: the task's main metric), progress, time, ending
METRIC_KEYS = (
    "k",
    "k_true",
    "k_error",
    "train_loss",
    "test_loss",
    "final",
    "main_metric",
    "steps",
    "steps_planned",
    "seconds",
    "train_seconds",
    "status",
    "reason",
)


def strict_json_value(value: Any) -> Any:
    """NaN and infinities become null, in maps too: the JSON we write is strict
    (allow_nan=False)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: strict_json_value(item) for key, item in value.items()}
    return value


#: a few blocks kept free in each run dir while it runs, so that a full disk can still be
#: told in metrics.json: freed to write the run's last status, removed when it ends
RESERVE_FILE = ".tbpipe-reserve"
RESERVE_BYTES = 64 * 1024


def write_metrics(
    run_dir: Path, metrics: dict[str, Any], batch: DurableBatch | None = None
) -> Path:
    """Write metrics.json durably: a temporary file, fsync, rename, fsync of the dir (or
    staged in `batch`, which makes it durable with others).

    A reader sees the old file or the new one, never a half-written or empty one (what a
    full disk or a crash between write and rename would leave). On a full disk the run
    dir's reserve is given up to write this file.
    """
    path = Path(run_dir) / METRICS_FILE
    clean = {key: strict_json_value(value) for key, value in metrics.items()}
    text = json.dumps(clean, indent=2, allow_nan=False) + "\n"
    write = write_durably if batch is None else batch.stage
    try:
        write(path, text)
    except OSError as error:
        if error.errno not in DISK_FULL_ERRNOS or not release_reserve(run_dir):
            raise
        write(path, text)  # the reserve's blocks are free now
    return path


def write_durably(path: Path, data: str | list[bytes], tmp: Path | None = None) -> None:
    """`path` replaced by `data` (text, or chunks of bytes) atomically and on disk: `tmp`
    (default `<path>.tmp`) written, fsynced and renamed over it, then the dir fsynced. On
    any error nothing changes and no temp file stays (a 0-byte one is what a full disk
    would leave)."""
    tmp = tmp or path.with_name(path.name + ".tmp")
    try:
        _write_file(tmp, data, sync=True)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _write_file(path: Path, data: str | list[bytes], sync: bool) -> None:
    """`data` (text, or chunks of bytes) as the file `path`; fsynced when `sync`."""
    with open(path, "w" if isinstance(data, str) else "wb") as stream:
        for chunk in [data] if isinstance(data, str) else data:
            stream.write(chunk)
        if sync:
            stream.flush()
            os.fsync(stream.fileno())


class DurableBatch:
    """Files replaced atomically and on disk together, as `write_durably` replaces one:
    `stage` writes each to its temporary file, `commit` syncs the filesystem once (every
    staged file's bytes on disk), renames them all in the order staged, and syncs once
    more (the renames on disk). Two syncs a batch instead of two or three a file: each
    sync waits for the disk, which is most of what writing a small file durably costs.
    A crash leaves each file as it was or whole, never half-written or empty; a file staged
    after another is renamed after it (a run's metrics.json after its run.json)."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []  # (temporary file, file)

    def __len__(self) -> int:
        return len(self._staged)

    def stage(self, path: Path, data: str | list[bytes]) -> None:
        """`data` written as `<path>.tmp`, renamed over `path` by `commit` (on an error
        no temporary file stays)."""
        tmp = path.with_name(path.name + ".tmp")
        try:
            _write_file(tmp, data, sync=False)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._staged.append((tmp, path))

    def commit(self) -> None:
        """Every staged file in its place, on disk."""
        if not self._staged:
            return
        where = self._staged[0][1].parent
        sync_filesystem(where)
        for tmp, path in self._staged:
            os.replace(tmp, path)
        self._staged.clear()
        sync_filesystem(where)


def sync_filesystem(path: Path) -> None:
    """Everything written to the filesystem holding `path` on disk: Linux's syncfs(2),
    elsewhere (or should it fail) `os.sync()`, every filesystem's."""
    import ctypes

    fd = os.open(path, os.O_RDONLY)
    try:
        syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


#: errno of a full disk (ENOSPC) or a quota reached (EDQUOT)
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(error: BaseException | None) -> bool:
    """Whether `error`, or one it was raised from or while handling, says the disk is full
    (an OSError, or TensorFlow's error when an event file cannot be flushed)."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return True
        if "No space left on device" in str(error) or "Disk quota exceeded" in str(error):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def start_run(run_dir: Path, steps_planned: int | None = None) -> None:
    """What a run dir holds from the moment it exists: metrics.json saying `running` (so a
    run that dies before it trains is never missing one) and the reserve."""
    run_dir = Path(run_dir)
    reserve = run_dir / RESERVE_FILE
    with open(reserve, "wb") as stream:  # real blocks, not a sparse file
        stream.write(b"\0" * RESERVE_BYTES)
        stream.flush()
        os.fsync(stream.fileno())
    if not (run_dir / METRICS_FILE).exists():
        write_metrics(run_dir, {"status": RUNNING, "steps": 0, "steps_planned": steps_planned})


def release_reserve(run_dir: Path) -> bool:
    """Remove the run dir's reserve; True if there was one."""
    try:
        (Path(run_dir) / RESERVE_FILE).unlink()
    except FileNotFoundError:
        return False
    return True


def read_metrics(run_dir: Path) -> dict[str, Any]:
    """The metrics of a finished (or failed) run."""
    return json.loads((Path(run_dir) / METRICS_FILE).read_text())


#: what stands in for a value read from the environment (`${oc.env:...}`): often a secret
REDACTED = "<from the environment: not recorded>"


def environment_values(cfg: Any) -> set[str]:
    """The resolved values of every `${oc.env:...}` in `cfg` (as text)."""
    from omegaconf import OmegaConf

    found: set[str] = set()

    def collect(raw_node: Any, node: Any) -> None:
        for key, raw_value in _items(raw_node):
            value = node[key]
            if isinstance(raw_value, str) and "oc.env" in raw_value and value is not None:
                found.add(str(value))
            elif isinstance(raw_value, (dict, list)) and isinstance(value, (dict, list)):
                collect(raw_value, value)

    collect(OmegaConf.to_container(cfg, resolve=False), OmegaConf.to_container(cfg, resolve=True))
    return {value for value in found if value}


def redacted(tree: Any, secrets: set[str]) -> Any:
    """`tree` (dicts, lists, values) with every value that holds one of `secrets` redacted.

    A long secret is also cut out of longer text (a command line, a URL); a short one
    (e.g. a thread count read from the environment) only as a whole value, or every "2"
    in the config would go.
    """
    if isinstance(tree, dict):
        return {key: redacted(value, secrets) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [redacted(value, secrets) for value in tree]
    text = str(tree)
    if text in secrets:
        return REDACTED
    for secret in secrets:
        if len(secret) >= 8 and secret in text:
            text = text.replace(secret, REDACTED)
    return text if text != str(tree) else tree


def _items(node: Any) -> Any:
    return node.items() if isinstance(node, dict) else enumerate(node)


RUN_FILE = "run.json"
#: The packages whose versions decide a run's numbers (distribution names).
PACKAGES = ("tensorflow", "tensorboard", "hydra-core", "omegaconf", "numpy")


def versions() -> dict[str, str]:
    """Python and the packages that shape a run's numbers, without importing them; read
    once a process (the versions a process has loaded do not change while it runs,
    whatever is installed meanwhile)."""
    return dict(_versions())


@functools.cache
def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from pipeline import __version__

    found = {"python": platform.python_version(), "tbpipe": __version__}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def write_run_info(
    run_dir: Path,
    command: str,
    overrides: Sequence[str] = (),
    config: Any = None,
    batch: DurableBatch | None = None,
) -> Path:
    """run.json: what reproduces this run: command, overrides, resolved config, versions;
    written durably, or staged in `batch`, which makes it durable with others.

    `rerun` runs the saved config (.hydra/) again, checked, into a new run dir.
    """
    run_dir = Path(run_dir)
    info = {
        "command": command,
        "overrides": list(overrides),
        "rerun": shlex.join(["tbpipe", "rerun", str(run_dir.resolve())]),
        "versions": versions(),
        "platform": platform.platform(),
        "config": config,
    }
    path = run_dir / RUN_FILE
    write = write_durably if batch is None else batch.stage
    write(path, json.dumps(info, indent=2) + "\n")
    return path


def run_info_differs(
    run_dir: Path, command: str, overrides: Sequence[str] = (), config: Any = None
) -> bool:
    """True when run.json is missing, unreadable, or records another command, overrides
    or config than these: a resumed run keeps the run.json it started with unless its
    .hydra/ files were edited (to extend it), and then run.json says what runs now."""
    try:
        recorded = json.loads((Path(run_dir) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return True
    now = json.loads(json.dumps({"command": command, "overrides": list(overrides),
                                 "config": config}))  # fmt: skip
    return any(recorded.get(key) != value for key, value in now.items())


def record_unfinished(run_dir: Path, status: str, reason: str) -> str:
    """Mark a run that stopped early (`failed`, `interrupted`) unless it already says how it ended.

    Called when an exception escaped training: metrics.json may be missing or still say
    "running". Returns the reason metrics.json gives, so the message and the file agree.
    """
    run_dir = Path(run_dir)
    try:
        metrics = read_metrics(run_dir)
    except (OSError, ValueError):
        metrics = {}
    if metrics.get("status") not in (None, RUNNING):
        return str(metrics.get("reason", reason))
    ended = {key: metrics.get(key) for key in METRIC_KEYS[:9]}  # statistics and progress
    # how long it ran or trained is not known here: null, never a made-up 0.0
    ended.update(
        seconds=None, train_seconds=None, status=status, reason=" ".join(str(reason).split())
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    write_metrics(run_dir, ended)
    release_reserve(run_dir)
    return ended["reason"]


# -- the process behind a running run: host, pid, start time, heartbeat -----------------
#: metrics.json keys that say which process runs the run and when it was last heard from
PROCESS_KEYS = (
    "host",
    "pid",
    "pid_started",
    "started_at",
    "heartbeat_at",
    "checkpoint_step",
    "resumed_from",
)
#: a running run refreshes metrics.json at chunk ends at most this often (seconds)
HEARTBEAT_SECONDS = 10.0
#: a run on another host whose metrics.json is older than this is taken for dead (seconds)
SILENT_FOR = 600.0
#: set (through `hydra.job.env_set`) in a job that `tbpipe resume` continues in its old dir
RESUME_ENV = "TBPIPE_RESUME"


class ResumeFault(Exception):
    """`tbpipe resume` could not prepare a run to go on (e.g. a full disk while it rewrote
    the event files): the run is left as it was, not marked failed, and can be resumed again."""


def this_process() -> dict[str, Any]:
    """host, pid and the pid's start time, for metrics.json and a dir's owner lock: a pid
    alone names a process only until it is reused, the pair names it for good."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "pid_started": pid_started(pid)}


def pid_started(pid: int) -> int | None:
    """When process `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat);
    None where there is no /proc (then only the pid is compared) or no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: count from its end
    return int(stat.rsplit(")", 1)[1].split()[19])


def process_alive(pid: int, started: int | None = None) -> bool:
    """Whether the process that had this pid (and, when given, this start time: see
    `pid_started`) still runs on this host. A zombie counts as gone, and so does a live
    process that got the same pid later."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    try:  # Linux: a zombie has exited, only its parent has not collected it yet
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True  # no /proc: the pid is all there is to go by
    if fields[0] == "Z":
        return False
    return started is None or int(fields[19]) == started


class Heartbeat:
    """Refreshes a running run's metrics.json (its step, its mtime) at chunk ends, at most
    every HEARTBEAT_SECONDS, and at once when a checkpoint was written. Until this run
    writes a checkpoint of its own, the one it went on from is kept as `checkpoint_step`."""

    def __init__(self, run_dir: Path, running: dict[str, Any]):
        self.run_dir, self.running = Path(run_dir), dict(running)
        self.last = time.monotonic()
        if self.running.get("checkpoint_step") is None and running.get("resumed_from"):
            self.running["checkpoint_step"] = running["resumed_from"]
            write_metrics(self.run_dir, self.running)

    def beat(self, step: int, checkpoint_step: int | None = None) -> None:
        if checkpoint_step is None:
            checkpoint_step = self.running.get("checkpoint_step")
        saved = checkpoint_step != self.running.get("checkpoint_step")
        if not saved and time.monotonic() - self.last < HEARTBEAT_SECONDS:
            return
        self.running.update(steps=step, heartbeat_at=time.time())
        if checkpoint_step is not None:  # a run without one has no such key, however long
            self.running["checkpoint_step"] = checkpoint_step
        write_metrics(self.run_dir, self.running)
        self.last = time.monotonic()


def state_of(metrics: dict[str, Any] | None, mtime: float | None = None) -> str:
    """A run's state from its metrics.json (None: no file): pending, running, an ending, or
    died. A running run died when its host is this one and its process is gone (its pid
    absent, or taken by a process that started later), or, on another
    host, when metrics.json has not been refreshed for SILENT_FOR seconds."""
    if metrics is None:
        return PENDING
    status = metrics.get("status")
    if status != RUNNING:
        return status if status in ENDINGS else FAILED
    host, pid = metrics.get("host"), metrics.get("pid")
    if host == socket.gethostname() and isinstance(pid, int):
        return RUNNING if process_alive(pid, metrics.get("pid_started")) else DIED
    heard = mtime if mtime is not None else metrics.get("heartbeat_at")
    if heard is not None and time.time() - heard > SILENT_FOR:
        return DIED
    return RUNNING

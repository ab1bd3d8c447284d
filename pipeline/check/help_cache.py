"""`tbpipe --help` shown again from the user's cache while nothing it was made from changed.

Making the page means importing Hydra, scanning its plugins and composing the config: most
of a second (docs/PERFORMANCE.md, the `--help` row). The page depends only on files and on
the command line, so it is kept per command line in the user's cache (`$TBPIPE_CACHE_DIR`,
else `$XDG_CACHE_HOME/tbpipe`, else ~/.cache/tbpipe, as `tbpipe report`'s cache) and shown
again only if all of these are as they were when it was made:

- the command line (overrides, `--config-dir`, `-cp`/`-cn`) and the current directory;
- the Python that runs it and its import path, each folder's mtime among them: installing,
  upgrading or removing any package (tbpipe, Hydra, a plugin) changes a folder there;
- every file (path, size, mtime) of each folder the page was made from: the config search
  path (tbpipe's conf/, Hydra's, a `--config-dir`), tbpipe's own code (the subcommands'
  summaries, the structured configs) and every `hydra_plugins` folder.

Only the page of a command that succeeded is kept, and only a page whose template is
tbpipe's own (a user's template may read the environment or the clock). This module
imports neither Hydra nor OmegaConf: a page shown from the cache needs neither.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.runinfo import user_cache_dir

#: bump when what an entry holds changes: older entries are then ignored
FORMAT = 1
#: entries kept (one per command line and directory); the oldest go first
KEEP = 64
#: folders holding more files than this (a `--config-dir` of a whole disk) are not worth it
MAX_FILES = 5000
#: a file changed this shortly before the page was made may change again with the same
#: mtime (file times advance by the kernel's clock tick): such a page is not kept
RACY_NS = 100_000_000


def cached_page(argv: Sequence[str]) -> str | None:
    """The page `tbpipe <argv>` showed last time, if nothing it was made from has changed."""
    path = _entry_path(argv)
    if path is None:
        return None
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
        if entry["format"] != FORMAT or entry["checksum"] != _checksum(entry):
            return None
        if entry["files"] != fingerprint(entry["folders"])[0]:
            return None
        return str(entry["page"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def keep_page(argv: Sequence[str], page: str, folders: Iterable[str], started: int) -> None:
    """Keep the page of `tbpipe <argv>`, made from `folders` from the time `started` on
    (ns); a cache that cannot be written (no home, a read-only or full disk) is left alone:
    the page is only made again."""
    path = _entry_path(argv)
    folders = sorted({os.path.abspath(folder) for folder in folders})
    files, newest = fingerprint(folders)
    if path is None or files is None or newest >= started - RACY_NS:
        return  # a file changed as (or just before) the page was made: it may be older
    entry = {"format": FORMAT, "folders": folders, "files": files, "page": page}
    entry["checksum"] = _checksum(entry)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(temporary, path)  # a reader sees the old entry or the whole new one
        _forget_the_oldest(path.parent)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


def fingerprint(folders: Iterable[str]) -> tuple[str | None, int]:
    """A digest of every file under `folders` (path, size, mtime), None if too many; and
    the newest mtime (ns)."""
    digest, count, newest = hashlib.sha256(), 0, 0
    seen: set[tuple[int, int]] = set()  # folders walked, by device and inode: links may loop
    for folder in folders:
        digest.update(f"\0{folder}\0".encode())
        for root, dirs, names in os.walk(folder, followlinks=True):  # a linked group counts
            dirs[:] = sorted(name for name in dirs if name != "__pycache__")
            try:
                stat = os.stat(root)
            except OSError:
                continue
            if (stat.st_dev, stat.st_ino) in seen:
                dirs[:] = []
                continue
            seen.add((stat.st_dev, stat.st_ino))
            for name in sorted(names):
                try:
                    stat = os.stat(os.path.join(root, name))
                except OSError:
                    continue  # gone meanwhile: the digest differs from the kept one
                digest.update(f"{root}/{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
                count, newest = count + 1, max(newest, stat.st_mtime_ns)
            if count > MAX_FILES:
                return None, newest
    return digest.hexdigest(), newest


def cache_folder() -> Path | None:
    """Where the pages are kept, or None without a home directory."""
    root = user_cache_dir()
    return None if root is None else root / "help"


def _entry_path(argv: Sequence[str]) -> Path | None:
    """The entry of this command line, named by everything the page depends on besides
    the files of its folders."""
    folder = cache_folder()
    if folder is None:
        return None
    try:
        here = os.getcwd()
    except OSError:  # the current directory was removed
        return None
    imports = []
    for entry in sys.path:
        with contextlib.suppress(OSError):
            imports.append([entry, os.stat(entry or here).st_mtime_ns])
    argv = ["--help" if arg == "-h" else arg for arg in argv]  # the same page
    key = [FORMAT, argv, here, sys.executable, sys.version, imports, __file__]
    name = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:32]
    return folder / f"{name}.json"


def _checksum(entry: dict) -> str:
    """SHA-256 of an entry's folders, files and page: a page edited in the cache file is
    not shown, but made again."""
    kept = [entry.get(key) for key in ("format", "folders", "files", "page")]
    return hashlib.sha256(json.dumps(kept).encode()).hexdigest()


def _forget_the_oldest(folder: Path) -> None:
    """At most KEEP entries: one per command line and directory the user asked for help in."""
    entries = sorted(folder.glob("*.json"), key=lambda path: path.stat().st_mtime_ns)
    for path in entries[:-KEEP]:
        with contextlib.suppress(OSError):
            path.unlink()

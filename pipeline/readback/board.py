"""`tbpipe board [DIR]`: TensorBoard for a run or sweep in one command, on loopback only.

Uses TensorBoard's own program API: the server listens on 127.0.0.1 (never on every
interface) on a free port the OS picks, so two boards never collide. Without DIR it
shows the newest single run under outputs/ or sweep under multirun/.
Ctrl-C stops it and exits 0.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from pipeline.check.errors import OneLineParser

PROG = "tbpipe board"
HOST = "127.0.0.1"
#: Where Hydra puts single runs and sweeps (conf/config.yaml: <root>/<date>/<time>).
RUN_ROOTS = ("outputs", "multirun")


def newest_logdir(base: Path = Path(".")) -> Path | None:
    """The newest `<root>/<date>/<time>` folder under outputs/ or multirun/, if any.

    Hydra names them by start time, so the newest is the largest `<date>/<time>` name.
    """
    candidates = [
        folder
        for root in RUN_ROOTS
        for folder in (base / root).glob("*/*")
        if folder.is_dir() and not folder.name.startswith(".")
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda folder: (folder.parent.name, folder.name))


def start(logdir: Path, port: int = 0) -> tuple[object, str]:
    """Start TensorBoard for `logdir` on loopback; returns (server program, URL).

    The server runs in daemon threads: it lives as long as this process does.
    `--load_fast=false` keeps TensorBoard's Python reader, the same one `tbpipe report`
    uses, so both see the same runs and tags.
    """
    from pipeline.tensorflow_quiet import import_tensorflow

    import_tensorflow()  # TensorBoard imports it; quietly first
    from tensorboard import program

    board = program.TensorBoard()
    board.configure(
        argv=[None, "--logdir", str(logdir), "--host", HOST, "--port", str(port)]
        + ["--load_fast", "false"]
    )
    return board, board.launch()


def main(argv: Sequence[str] | None = None) -> int:
    """`tbpipe board [DIR] [--port N]`: serve until Ctrl-C."""
    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument(
        "logdir",
        nargs="?",
        type=Path,
        help="a TensorBoard logdir (default: the newest run in outputs/ or sweep in multirun/)",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: free)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        print(
            f"{PROG}: --port {args.port} is not allowed; give 0 (any free) to 65535",
            file=sys.stderr,
        )
        return 2
    logdir = args.logdir or newest_logdir()
    if logdir is None:
        print(
            f"{PROG}: no runs in {' or '.join(RUN_ROOTS)}/ here; give one: {PROG} DIR",
            file=sys.stderr,
        )
        return 2
    if not logdir.is_dir():
        print(
            f"{PROG}: DIR '{logdir}' is not a directory; give a TensorBoard logdir", file=sys.stderr
        )
        return 2
    from pipeline.readback.runs import symlink_loops

    loops = symlink_loops(logdir)
    if loops:  # TensorBoard follows them ~40 levels deep: the same runs, many times over
        print(
            f"{PROG}: warning: {loops[0]} leads back into {logdir} (a symlink loop); "
            f"TensorBoard lists the runs behind it again under longer names; "
            f"`tbpipe report` reads each run once",
            file=sys.stderr,
        )
    try:
        _, url = start(logdir, args.port)
    except Exception as error:  # e.g. the port is taken: TensorBoard says which
        print(f"{PROG}: TensorBoard could not start: {error}", file=sys.stderr)
        return 1
    print(f"TensorBoard {url} serving {logdir} (Ctrl-C to stop)", flush=True)
    # Ctrl-C (and a polite `kill`) stop it, even where the shell started us ignoring SIGINT
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print(f"{PROG}: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

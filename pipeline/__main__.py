"""`tbpipe` / `python -m pipeline`: the console script, a dispatcher.

Subcommands that read runs back go to their modules before Hydra sees argv; everything else
is a run, made ready by pipeline/job.py (checked before Hydra runs anything, so a bad
override is one line on stderr within a second) and run by Hydra. How each kind of failure
ends (message, exit code) is listed in docs/ERRORS.md.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable
from importlib.metadata import version as package_version
from pathlib import Path
from typing import NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

import pipeline.sweeps  # noqa: F401  registers `tbpipe.job_dir` (names job dirs) and sweep checks
from pipeline.check.errors import EXIT_BAD_INPUT, BadInput, exit_code_for_signal, report
from pipeline.compat import exit_without_teardown
from pipeline.job import RUNS, interrupted_before_training, prepare, run_job, settle
from pipeline.runinfo import versions
from pipeline.stopping import signal_of, stop_before_training_on_sigterm

#: Subcommands that read runs back; dispatched before Hydra sees argv (not Hydra runs).
SUBCOMMANDS = {
    "report": "pipeline.readback.report",
    "board": "pipeline.readback.board",
    "status": "pipeline.readback.status",
}
#: how many jobs ran in this process (not in a launcher's workers)
_jobs_run_here = 0


@hydra.main(version_base="1.3", config_path="pkg://pipeline.conf", config_name="config")
def _task(cfg: DictConfig) -> float:
    global _jobs_run_here
    _jobs_run_here += 1
    return run_job(cfg)


def main() -> None:
    """Console-script entry point."""
    name = sys.argv[1] if len(sys.argv) > 1 else None
    if name == "help":  # `tbpipe help [SUBCOMMAND]`
        name = _help(sys.argv[2:3])
    if name in SUBCOMMANDS:
        leave(_read_back(name, sys.argv[2:]))
    if name not in RUNS and {"--help", "-h"} & set(sys.argv[1:]):
        try:
            print(help_page(sys.argv[1:]))
        except BadInput as error:
            report(str(error))
            sys.exit(EXIT_BAD_INPUT)
        sys.exit(0)
    if name in ("--version", "-V"):
        leave(print(version_line()))
    logging.raiseExceptions = False  # a log file on a full disk must not print tracebacks
    stop_before_training_on_sigterm()
    try:
        argv, output = prepare(sys.argv[1:])
    except BadInput as error:
        report(str(error))
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt as stop:
        sys.exit(exit_code_for_signal(signal_of(stop)))  # nothing was started
    if argv is None:  # `tbpipe resume`: nothing left to do (said on stdout)
        leave(0)
    sys.argv[1:] = argv
    try:
        _task()
    except SystemExit as stop:
        code = stop.code
    except KeyboardInterrupt as stop:  # before the run's own handling (Hydra starting up)
        code = exit_code_for_signal(signal_of(stop))
        if output is not None and output.key == "hydra.run.dir":
            interrupted_before_training(output.path, stop)
    except BaseException as error:  # HYDRA_FULL_ERROR=1: Hydra lets the error out
        settle(output, error)
        raise
    else:
        code = 0
    settle(output)  # a run dir never stays `running`, nor keeps its reserve
    if _jobs_run_here:  # the basic launcher: no worker processes to wind down
        leave(code)
    sys.exit(code)


def _help(asked: list[str]) -> str:
    """`tbpipe help [SUBCOMMAND]`: argv rewritten to the `--help` that shows it."""
    if asked and asked[0] in SUBCOMMANDS:
        sys.argv[1:] = [asked[0], "--help"]
    elif asked and asked[0] in RUNS:
        leave(print(importlib.import_module(RUNS[asked[0]]).__doc__.strip()))
    else:
        sys.argv[1:] = ["--help", *sys.argv[2:]]
    return sys.argv[1]


def _read_back(name: str, argv: list[str]) -> int | str | None:
    """A subcommand that reads runs back (report, status, board): its exit code."""
    subcommand = importlib.import_module(SUBCOMMANDS[name])
    try:
        code = subcommand.main(argv)
        sys.stdout.flush()
    except BrokenPipeError:  # `tbpipe report DIR | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = exit_code_for_signal(signal.SIGPIPE)
    return code


def version_line() -> str:
    """`tbpipe --version`: tbpipe's version and those that shape its runs (no import)."""
    found = versions()
    return f"tbpipe {package_version('tbpipe')} (" + ", ".join(
        f"{name} {found[package]}"
        for name, package in (("TensorFlow", "tensorflow"), ("TensorBoard", "tensorboard"),
                              ("Hydra", "hydra-core"), ("OmegaConf", "omegaconf"),
                              ("Python", "python"))
    ) + ")"  # fmt: skip


def _subcommands_text() -> str:
    """`tbpipe --help`'s list of subcommands: each module's first docstring line."""
    import ast
    import importlib.util
    import re

    lines = []
    for name, module in {**SUBCOMMANDS, **RUNS}.items():
        origin = importlib.util.find_spec(module).origin
        first = (ast.get_docstring(ast.parse(_first_statement(origin))) or name).splitlines()[0]
        usage, what = name, first
        if found := re.match(r"`tbpipe ([^`]+)`: (.+)", first):
            usage, what = found.groups()
        lines.append(f"  {usage:28} {what.rstrip('.')}")
    lines.append(f"  {'help [SUBCOMMAND]':28} this page, or a subcommand's")
    return "\n".join(lines)


def _first_statement(path: str) -> bytes:
    """The source of a module up to the end of its first statement (its docstring, if it
    has one): what the docstring is read from, without parsing the whole module."""
    import tokenize

    read = []
    with open(path, "rb") as source:

        def readline() -> bytes:
            read.append(source.readline())
            return read[-1]

        for token in tokenize.tokenize(readline):
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                break
    return b"".join(read)


#: what `help_page` composed: the config and its groups, for the page's resolvers
_page: dict = {}


def help_page(argv: list[str]) -> str:
    """`tbpipe --help`: conf/hydra/help/tbpipe.yaml (or the hydra/help chosen) filled in,
    without Hydra's help, which lists every option of every group of every plugin first
    (seconds). Overrides and `--config-dir` count as for a run; a bad one is one line."""
    from hydra.types import RunMode

    from pipeline.check.compose import CONFIG_NAME, searchpath_override, tbpipe_configs
    from pipeline.check.errors import full_error_requested
    from pipeline.check.validate import explain
    from pipeline.compat import (
        GroupOptions,
        compose_with_hydra,
        hydra_args_parser,
        hydra_config_loader,
        structured_configs_made_when_read,
    )

    args = hydra_args_parser().parse_args([arg for arg in argv if arg not in ("--help", "-h")])
    overrides = list(args.overrides)
    if args.config_dir is not None:
        if not Path(args.config_dir).is_dir():
            raise BadInput(f"bad value --config-dir {args.config_dir}: no such directory")
        overrides.append(searchpath_override(args.config_dir))
    with structured_configs_made_when_read(), tbpipe_configs(args.config_path):
        groups = GroupOptions(hydra_config_loader(), overrides)
        _page.update(composing=True)  # the page's text is made once, after the compose
        try:  # composed once, as for a run: a misspelled override is one line
            cfg = compose_with_hydra(args.config_name or CONFIG_NAME, overrides, RunMode.RUN)
        except Exception as error:
            if full_error_requested():
                raise
            raise explain(error, list(args.overrides), groups.get_group_options) from None
        finally:
            _page.clear()
        _page.update(cfg=cfg, groups=groups)
        try:
            return str(cfg.hydra.help.template)
        finally:
            _page.clear()


def _choices_text() -> str:
    from pipeline.check.hints import choices_text
    from pipeline.compat import hydra_config_loader

    if _page:
        return choices_text(_page["groups"], dict(_page["cfg"].hydra.runtime.choices))
    return choices_text(hydra_config_loader(), dict(HydraConfig.get().runtime.choices))


#: the groups whose keys `tbpipe --help` lists, in the order a run uses them
KEYED_GROUPS = ("task", "data", "model", "optimizer", "trainer", "writer")


def _keys_text() -> str:
    """`tbpipe --help`'s main keys: each group's keys as its chosen option has them, each
    sink's, and the top-level settings."""
    import textwrap

    from omegaconf import DictConfig

    cfg = _page.get("cfg")
    if cfg is None:
        return ""

    def line(lead: str, keys: list[str]) -> str:
        text = textwrap.fill(", ".join(keys), width=92 - 30)
        return textwrap.indent(text, " " * 31).replace(" " * 31, f"  {lead:28} ", 1)

    def keys_of(node: DictConfig) -> list[str]:
        return [str(key) for key in node if not str(key).startswith("_")]

    lines = [line("KEY", [key for key in cfg if not isinstance(cfg[key], DictConfig)])]
    for group in KEYED_GROUPS:
        if isinstance(cfg.get(group), DictConfig) and keys_of(cfg[group]):
            lines.append(line(f"{group}.KEY", keys_of(cfg[group])))
    for name, node in (cfg.get("sinks") or {}).items():
        if isinstance(node, DictConfig) and keys_of(node):
            lines.append(line(f"sinks.{name}.KEY", keys_of(node)))
    return "\n".join(lines)


def _docs_text() -> str:
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "docs").is_dir():
        return f"{checkout / 'README.md'} and {checkout / 'docs'}/ (TUTORIAL, ERRORS, ...)"
    return "README.md and docs/ in tbpipe's source (TUTORIAL, ERRORS, EXTENDING, SWEEPS, ...)"


def _page_text(make: Callable[[], str]) -> Callable[[], str]:
    """A resolver of the help page that makes nothing while `help_page` composes: OmegaConf's
    merge resolves an interpolated key that a later config sets again, only to see whether
    it is a config node, and throws the text away (the page's lists cost a noticeable share
    of `tbpipe --help`)."""

    def text() -> str:
        return "" if _page.get("composing") else make()

    return text


# what conf/hydra/help/tbpipe.yaml (`tbpipe --help`) fills in
for _name, _make in {
    "subcommands": _subcommands_text, "choices": _choices_text, "keys": _keys_text,
    "docs": _docs_text, "version": version_line,
}.items():  # fmt: skip
    OmegaConf.register_new_resolver(f"tbpipe.{_name}", _page_text(_make), replace=True)


def leave(code: int | str | None) -> NoReturn:
    """Exit as `sys.exit(code)` would, without tearing the interpreter down.

    Once TensorFlow is loaded, Python's teardown (freeing every module and TensorFlow's
    C++ objects) takes a noticeable share of a default run after the last file is written.
    Every file tbpipe writes is closed by then, and the atexit handlers (logging's flush)
    still run first; only the teardown is skipped. Not for a process that launched
    workers (joblib, submitit): their shutdown belongs to that teardown.
    """
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    exit_without_teardown(code or 0)


if __name__ == "__main__":
    main()

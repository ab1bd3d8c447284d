"""`tbpipe --help`: tbpipe's own page (conf/hydra/help/tbpipe.yaml) filled in, and `--version`.

Hydra's own help lists every option of every group of every plugin first (seconds). This
page is composed once as a run would be (overrides and `--config-dir` count, a bad one is
one line), then its ${tbpipe.*} parts are filled in: the subcommands, the groups and their
options, each group's main keys. A page made is kept (pipeline/check/help_cache.py) and
shown again while nothing it was made from has changed. Imports no TensorFlow.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import version as package_version
from pathlib import Path

from omegaconf import OmegaConf

from pipeline.check.errors import BadInput
from pipeline.runinfo import versions

#: the ${...} parts of tbpipe's own template: a page made of these alone can be kept
TBPIPE_PARTS = re.compile(r"\$\{tbpipe\.(subcommands|choices|keys|docs|version):\}")
#: the groups whose keys `tbpipe --help` lists, in the order a run uses them
KEYED_GROUPS = ("task", "data", "model", "optimizer", "trainer", "writer")
#: what `help_page` composed: the config, its groups and the subcommands, for the resolvers
_page: dict = {}


def version_line() -> str:
    """`tbpipe --version`: tbpipe's version and those that shape its runs (no import)."""
    found = versions()
    return f"tbpipe {package_version('tbpipe')} (" + ", ".join(
        f"{name} {found[package]}"
        for name, package in (("TensorFlow", "tensorflow"), ("TensorBoard", "tensorboard"),
                              ("Hydra", "hydra-core"), ("OmegaConf", "omegaconf"),
                              ("Python", "python"))
    ) + ")"  # fmt: skip


def help_page(argv: Sequence[str], subcommands: Mapping[str, str]) -> str:
    """`tbpipe <argv>` with `--help` in it: the page, made and kept for next time
    (`help_cache.cached_page` shows it then). `subcommands` maps each subcommand to the
    module whose first docstring line sums it up."""
    from pipeline.check.help_cache import keep_page

    started = time.time_ns()
    page, folders = _made_page(argv, subcommands)
    if folders is not None:
        keep_page(argv, page, folders, started)
    return page


def _made_page(argv: Sequence[str], subcommands: Mapping[str, str]) -> tuple[str, list | None]:
    """The page, and the folders it was made from (None: a page not to keep)."""
    from hydra.types import RunMode

    import hydra_plugins
    import pipeline
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
        _page.update(cfg=cfg, groups=groups, subcommands=subcommands)
        try:
            page = str(cfg.hydra.help.template)
        finally:
            _page.clear()
        template = OmegaConf.to_container(cfg.hydra.help, resolve=False).get("template")
        if not isinstance(template, str) or TBPIPE_PARTS.sub("", template).count("${"):
            return page, None  # a template of the user's own: made each time
        plugins = [
            os.path.dirname(module.__file__)
            for name, module in list(sys.modules.items())
            if name.startswith("hydra_plugins.") and getattr(module, "__file__", None)
        ]  # every plugin the scan imported, wherever it is installed
        code = [*pipeline.__path__, *hydra_plugins.__path__, *plugins]
        folders = [*groups.folders(list(cfg.hydra.searchpath)), *code]
        return page, [folder for folder in folders if os.path.isdir(folder)]


def _subcommands_text() -> str:
    """`tbpipe --help`'s list of subcommands: each module's first docstring line."""
    import ast
    import importlib.util

    lines = []
    for name, module in _page.get("subcommands", {}).items():
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


def _choices_text() -> str:
    from hydra.core.hydra_config import HydraConfig

    from pipeline.check.hints import choices_text
    from pipeline.compat import hydra_config_loader

    if _page:
        return choices_text(_page["groups"], dict(_page["cfg"].hydra.runtime.choices))
    return choices_text(hydra_config_loader(), dict(HydraConfig.get().runtime.choices))


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
    checkout = Path(__file__).resolve().parents[2]
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

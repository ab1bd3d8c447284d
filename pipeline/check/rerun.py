"""`tbpipe rerun RUN_DIR [overrides]`: run a saved run again, into a new run dir.

A run's `.hydra/` holds what ran: `config.yaml` (every value), `overrides.yaml` (what was
typed) and `hydra.yaml` (config dirs, search path, working dir). A rerun composes tbpipe's
own config with the saved overrides again, so the schemas and checks apply and the new run
gets tbpipe's run dir (with microseconds) and job log, and then lays the saved values over
it (stored in Hydra's ConfigStore, added with `+saved_run=config`): a default changed since
cannot change the numbers. New overrides come last and are checked like any other. Works
for a sweep's job dir and from any directory (the original working dir, and for a rerun of a
rerun the earlier runs' too, is searched for a
user's modules, after everything else). A run made with other versions of tbpipe or of
what shapes its numbers is rerun with a warning (`tbpipe resume` refuses it).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from pipeline.check.compose import CONFIG_MODULE, CONFIG_NAME
from pipeline.check.errors import BadInput, report
from pipeline.runinfo import RUN_FILE, versions

PROG = "tbpipe rerun"
USAGE = f"usage: {PROG} RUN_DIR [key=value ...]"
SAVED_GROUP = "saved_run"
#: the override that lays the saved values over the composed config (named in no folder,
#: recorded in no overrides: pipeline/sweeps/naming.py, pipeline/job.py)
SAVED = f"+{SAVED_GROUP}=config"
#: what a saved run's .hydra/ holds
SAVED_FILES = ("config.yaml", "overrides.yaml", "hydra.yaml")
#: the run being rerun and the new overrides, for the command recorded in run.json
_current: tuple[Path, list[str]] | None = None


def command_line(argv: Sequence[str]) -> list[str]:
    """The `tbpipe` arguments that rerun `argv[0]` with the overrides `argv[1:]`.

    Raises `BadInput` (one line) when argv[0] is not a saved run. Stores the saved values
    in Hydra's ConfigStore, so the run must happen in this process.
    """
    global _current
    if not argv:
        raise BadInput(f"rerun: give the run dir to rerun ({USAGE})")
    run_dir, overrides = Path(argv[0]).resolve(), list(argv[1:])
    saved = run_dir / ".hydra"
    if (run_dir / "multirun.yaml").exists():
        raise BadInput(
            f"cannot rerun {argv[0]}: it is a sweep; rerun one of its jobs: {argv[0]}/<job>"
        )
    missing = [name for name in SAVED_FILES if not (saved / name).is_file()]
    if missing:
        raise BadInput(
            f"cannot rerun {argv[0]}: it holds no saved run (.hydra/{missing[0]} is missing); "
            "give a run dir, e.g. outputs/<date>/<time>"
        )
    hydra = OmegaConf.load(saved / "hydra.yaml").hydra
    typed = [str(o) for o in OmegaConf.load(saved / "overrides.yaml") if str(o) != SAVED]
    choices = {str(k) for k in hydra.runtime.choices if not str(k).startswith("hydra/")}
    groups = choices | {"sinks"}
    new_keys = {_key(o) for o in overrides}
    if "experiment" in new_keys:
        raise BadInput(
            "cannot rerun with +experiment: it changes the whole experiment; run it as a new one: "
            f"tbpipe {shlex.join(overrides)}"
        )
    values = OmegaConf.load(saved / "config.yaml")
    for group in groups & new_keys:  # a new choice: the saved node of that group goes
        values.pop(group, None)
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group=SAVED_GROUP, name="config", node=values, package="_global_")
    for folder in module_folders(run_dir):
        _find_modules_in(folder)
    for package, was, now in changed_versions(run_dir)[:1]:  # resume refuses this case
        report(
            f"warning: {argv[0]} ran with {package} {was}, this is {package} {now}; "
            "the rerun's numbers could differ from the saved run's"
        )
    _current = (run_dir, overrides)
    kept = [o for o in typed if _key(o) not in new_keys]
    searched = [str(o) for o in hydra.overrides.hydra if str(o).startswith("hydra.searchpath")]
    return [*config_flags(hydra), *searched, *kept, SAVED, *overrides]


def changed_versions(run_dir: Path) -> list[tuple[str, str, str]]:
    """(package, version then, version now) of each package whose version differs from
    the one `run_dir`'s run.json records (tbpipe and what shapes the numbers); [] when
    there is no run.json (a job that never got as far) or it cannot be read."""
    try:
        recorded = json.loads((Path(run_dir) / RUN_FILE).read_text()).get("versions", {})
    except (OSError, ValueError, AttributeError):
        return []
    current = versions()
    return [
        (package, str(version), current.get(package, "not installed"))
        for package, version in recorded.items()
        if current.get(package) != version
    ]


def command_for(task_overrides: Sequence[str]) -> str | None:
    """The command run.json records for a rerun (`tbpipe rerun RUN ...`), else None."""
    if _current is None or SAVED not in task_overrides:
        return None
    run_dir, overrides = _current
    return shlex.join(["tbpipe", "rerun", str(run_dir), *overrides])


def rerun_command(run_dir: str | os.PathLike) -> str:
    """What to type to rerun the run in `run_dir`."""
    return shlex.join(["tbpipe", "rerun", str(Path(run_dir).resolve())])


def plain_config_flags(argv: Sequence[str]) -> list[str]:
    """argv with a relative `--config-path` made absolute (Hydra would look for it beside
    tbpipe's own code), and a saved run's `.hydra` as config dir turned into a rerun.

    `--config-path RUN/.hydra --config-name config` (the rerun command before `tbpipe
    rerun`) becomes `rerun RUN`; `--config-dir RUN/.hydra` is refused: tbpipe's own
    config.yaml comes first in the search path, so its defaults would run.
    """
    argv, out, i = list(argv), [], 0
    while i < len(argv):
        flag, _, value = argv[i].partition("=")
        if flag in ("--config-path", "-cp", "--config-dir", "-cd") and (value or i + 1 < len(argv)):
            if not value:
                value, i = argv[i + 1], i + 1
            folder = Path(value).expanduser()
            if _is_saved_run(folder) and flag in ("--config-dir", "-cd"):
                raise BadInput(
                    f"{flag} {value} is a saved run's .hydra: tbpipe's own config would run "
                    f"instead of it; to run it again, write: {rerun_command(folder.parent)}"
                )
            if _is_saved_run(folder):
                return ["rerun", str(folder.parent), *_without_config_name(out + argv[i + 1 :])]
            if flag in ("--config-path", "-cp") and not value.startswith("pkg://"):
                value = str(folder.resolve())
            out += [flag, value]
        else:
            out.append(argv[i])
        i += 1
    return out


def _without_config_name(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--config-name", "-cn"):
            skip = True
        elif not arg.startswith(("--config-name=", "-cn=")):
            out.append(arg)
    return out


def _is_saved_run(folder: Path) -> bool:
    return all((folder / name).is_file() for name in SAVED_FILES)


def config_flags(hydra) -> list[str]:
    """--config-path/--config-dir/--config-name as the saved run was given them (its
    primary config when not tbpipe's, the config dirs it searched): for a rerun and for
    `tbpipe resume` (sweeps/resume.py)."""
    flags = []
    for source in hydra.runtime.config_sources:
        if source.provider == "main" and not (
            source.schema == "pkg" and source.path == CONFIG_MODULE
        ):
            flags += ["--config-path", str(source.path)]
        elif source.provider == "command-line" and source.schema == "file":
            flags += ["--config-dir", str(source.path)]
    if hydra.job.config_name not in (None, CONFIG_NAME):
        flags += ["--config-name", str(hydra.job.config_name)]
    return flags


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~").partition("@")[0]


def module_folders(run_dir: Path) -> list[str]:
    """The working dir `run_dir`'s run started in, then, for a rerun, those of the runs it
    reran in turn: a rerun started from another folder found the user's modules in the
    first run's folder, and so must a rerun of it. A run no longer there ends the chain."""
    folders: list[str] = []
    seen: set[Path] = set()
    while run_dir not in seen:
        seen.add(run_dir)
        try:
            hydra = OmegaConf.load(run_dir / ".hydra" / "hydra.yaml").hydra
            folders.append(str(hydra.runtime.cwd))
            words = shlex.split(json.loads((run_dir / RUN_FILE).read_text())["command"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            break
        if words[:2] != ["tbpipe", "rerun"] or len(words) < 3:
            break
        run_dir = Path(words[2])
    return folders


def _find_modules_in(folder: str) -> None:
    """A user's module beside the original run's working dir, searched last."""
    if folder and folder not in sys.path:
        sys.path.append(folder)

"""Run folder names that say what differs: they are TensorBoard's run names and legends.

A sweep job's folder is `<num>_<setting>`: its number, zero-padded to the sweep's width so
that folders sort in launch order (`03` before `10`), and only the settings the sweep
varies, with short keys in the user's words (`03_noise_std-1`, not
`3_+experiment=noise_sweep,data.noise_std=1,trainer.steps=300`). Which settings vary, and
how many jobs the sweep plans, is decided once, from the sweep's own command line, when
the sweep starts (`SweptNames`): the overrides that stay constant join
`hydra.job.config.override_dirname.exclude_keys`, and the width goes to
`hydra.job.env_set.TBPIPE_JOB_WIDTH`, which every job's config then carries. So a name is
a pure function of the sweep's overrides and the job's: the same command gives the same
folders (`tbpipe resume` finds its jobs by them). The constants are still in each job's
TEXT and HPARAMS tabs.

A single run's folder is `<time>_<name>`: `name=...` if the user gave one, else what it
ran (the experiment, or its overrides as short key-value), else `default`.

Folder names are safe to paste into a shell and into `tensorboard --logdir`: a key and its
value are joined by `-`, two settings by `_`, a list's items by `-`; every character other
than a letter, a digit, `.`, `_`, `+` and `-` becomes `-` (no `[`, `,`, `=`, `:`, `/`,
space or quote). Plot titles keep the readable `noise_std=0.1` (`label_of`).

Importing this module registers the `tbpipe.job_dir` and `tbpipe.run_name` resolvers that
conf/config.yaml uses; it stays light (no TensorFlow).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pipeline.check import registry
from pipeline.compat import add_sweep_hydra_override, parsed_override, resolved_further

#: Longest folder name we write; file systems stop at 255 bytes.
MAX_NAME_BYTES = 200
#: the config group whose option names a single run by itself
EXPERIMENT = "experiment"
#: a single run with no overrides and no name
DEFAULT_RUN_NAME = "default"
#: a `tbpipe rerun` without a `name=` of its own
RERUN_NAME = "rerun"
#: the override by which `tbpipe rerun` lays a saved run's values (pipeline/check/rerun.py)
RERUN_SAVED = "+saved_run=config"


#: the characters a folder name keeps; any other becomes FILLER
FOLDER_CHARACTERS = frozenset("._+-")
#: what stands for a character a shell or `tensorboard --logdir NAME:PATH` reads specially
FILLER = "-"
#: the environment variable that carries a sweep's job-number width to its jobs' configs
JOB_WIDTH_ENV = "TBPIPE_JOB_WIDTH"
#: conf/config.yaml's `hydra.sweep.subdir`: each job's dir named by `_job_dir_resolver`
JOB_SUBDIR = "${tbpipe.job_dir:${hydra.job.num}}"
#: a job dir being made whole beside its sweep's jobs (pipeline/sweeps/stacked_write.py):
#: `.<job dir's name>.partial-<pid>`, a name no job dir has; `tbpipe resume` removes any left
STAGED_JOB_MARK = ".partial-"


def staged_dir(run_dir: Path) -> Path:
    """Where `run_dir` is made before one rename makes it the job dir."""
    return run_dir.parent / f".{run_dir.name}{STAGED_JOB_MARK}{os.getpid()}"


def shell_safe(text: str) -> str:
    """`text` with every character but letters, digits, `.`, `_`, `+`, `-` made `-`."""
    return "".join(c if c.isalnum() or c in FOLDER_CHARACTERS else FILLER for c in text)


def safe_name(name: str) -> str:
    """One path component safe in a shell: only letters, digits, `.`, `_`, `+`, `-` (a `/`
    cannot nest dirs), and a very long name is cut and given a hash of the full text so
    it stays unique."""
    name = shell_safe(name.replace("\0", ""))
    if len(name.encode()) > MAX_NAME_BYTES:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = name.encode()[: MAX_NAME_BYTES - 11].decode(errors="ignore") + "~" + digest
    return name


def settings(overrides: Iterable[str], exclude_keys: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(key, value as typed) of each override whose key is not excluded, in command order."""
    excluded = set(exclude_keys)
    found = []
    for override in map(parsed_override, overrides):
        key = override.key_or_group
        if key in excluded or override.is_delete():
            continue
        value = override.value()
        text = value if isinstance(value, str) else override.get_value_element_as_str()
        found.append((key, as_typed(text)))
    return found


#: an interpolation in a value as typed: `${oc.env:TOKEN}`, `${data.noise_std}`
INTERPOLATION = re.compile(r"\$\{([^${}]*)\}")


def as_typed(value: str) -> str:
    """A value for a name, its interpolations shown by what they name, never resolved:
    `${oc.env:TOKEN}` becomes `oc.env:TOKEN` (a secret read from the environment stays
    out of folder names, and no `${` can be resolved later from a path)."""
    while INTERPOLATION.search(value):
        value = INTERPOLATION.sub(r"\1", value)
    return value.replace("$", "").replace("{", "").replace("}", "")


def short_keys(keys: Sequence[str]) -> list[str]:
    """Each key's last dotted part, unless two keys share it (then the whole key)."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return [short if last.count(short) == 1 else key for short, key in zip(last, keys, strict=True)]


def short_settings(found: Sequence[tuple[str, str]]) -> str:
    """`noise_std=0.01,seed=1`, for reading (plot titles): keys shortened (`short_keys`)."""
    shown = short_keys([key for key, _ in found])
    return ",".join(f"{key}={value}" for key, (_, value) in zip(shown, found, strict=True))


def folder_settings(found: Sequence[tuple[str, str]]) -> str:
    """`noise_std-0.01_seed-1`, `sinks-scalars-images`: the settings for a folder name."""
    shown = short_keys([key for key, _ in found])
    return "_".join(
        f"{shell_safe(key)}-{folder_value(value)}"
        for key, (_, value) in zip(shown, found, strict=True)
    )


def folder_value(value: str) -> str:
    """A value as typed, its list or dict brackets dropped and its items joined by `-`."""
    if value[:1] + value[-1:] in ("[]", "{}", "()"):
        value = value[1:-1].replace(" ", "")
    return shell_safe(value)


def job_dir_name(
    num: int | str, overrides: Iterable[str], exclude_keys: Iterable[str] = (), width: int = 1
) -> str:
    """`<num>_<swept settings>`, or `<num>` when the job has none; the number zero-padded
    to `width` digits (the sweep's, so folders sort as jobs run); never a nested path."""
    named = folder_settings(settings(overrides, exclude_keys))
    padded = str(num).zfill(width)
    return safe_name(f"{padded}_{named}" if named else padded)


def run_name(name: Any, overrides: Iterable[str], exclude_keys: Iterable[str] = ()) -> str:
    """A single run's name: the user's `name`, else the experiment and the other overrides."""
    if name not in (None, ""):
        return safe_name(str(name))
    found = [(k, v) for k, v in settings(overrides, exclude_keys) if k != "name"]
    experiment = [value for key, value in found if key == EXPERIMENT]
    rest = folder_settings([(key, value) for key, value in found if key != EXPERIMENT])
    return safe_name("_".join(experiment + ([rest] if rest else [])) or DEFAULT_RUN_NAME)


def label_of(overrides: Iterable[str], exclude_keys: Iterable[str] = ()) -> str:
    """What sets a run apart, for its plots' titles: a sweep job's swept settings (the
    sweep excludes its constants), a single run's experiment and overrides; "" for none."""
    found = [(k, v) for k, v in settings(overrides, exclude_keys) if k != "name"]
    experiment = [value for key, value in found if key == EXPERIMENT]
    rest = short_settings([(key, value) for key, value in found if key != EXPERIMENT])
    return " ".join(experiment + ([rest] if rest else []))


def constant_keys(sweep_overrides: Iterable[str]) -> list[str]:
    """Keys the sweep's command line sets to one value: every plain override, and a sweep
    over one value repeated (`seed=0,0`). Ranges, intervals and real choices vary."""
    constant = []
    for override in OverridesParser.create().parse_overrides(list(sweep_overrides)):
        if override.is_sweep_override() and (
            override.is_interval_sweep() or len(set(override.sweep_string_iterator())) > 1
        ):
            continue
        constant.append(override.key_or_group)
    return constant


class SweptNames(Callback):
    """Hydra callback: before a sweep's jobs are composed, keep its constants out of names."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        naming = config.hydra.job.config.override_dirname
        excluded = list(naming.exclude_keys)
        constants = constant_keys(config.hydra.overrides.task)
        excluded += [key for key in constants if key not in excluded]
        quoted = ",".join(f"'{key}'" for key in excluded)
        add_sweep_hydra_override(
            config, f"hydra.job.config.override_dirname.exclude_keys=[{quoted}]"
        )
        jobs = planned_jobs(config)
        if jobs is not None:  # `++`: a resumed sweep carries the recorded one already
            width = len(str(max(jobs - 1, 0)))
            add_sweep_hydra_override(config, f"++hydra.job.env_set.{JOB_WIDTH_ENV}={width}")


def planned_jobs(config: DictConfig) -> int | None:
    """How many jobs the sweep will run: a grid's size (Hydra's basic sweep or tbpipe's),
    an Optuna search's `n_trials`; None for a sweeper that does not say."""
    sweeper = config.hydra.sweeper
    if "n_trials" in sweeper:
        return int(sweeper.n_trials)
    if "params" not in sweeper:
        return None
    from pipeline.compat import split_sweep

    params = [f"{key}={value}" for key, value in (sweeper.params or {}).items()]
    task = [str(o) for o in config.hydra.overrides.task]
    try:
        parsed = OverridesParser.create().parse_overrides([*params, *task])
        return sum(len(batch) for batch in split_sweep(parsed))
    except Exception:  # noqa: BLE001  e.g. a glob over a config group: names stay unpadded
        return None


def _given(root: DictConfig) -> tuple[list[str], list[str]]:
    """The job's overrides as typed (an `${...}` in one is not resolved here) and the
    keys left out of names."""
    task = OmegaConf.to_container(root.hydra.overrides.task, resolve=False)
    excluded = OmegaConf.select(root, "hydra.job.config.override_dirname.exclude_keys")
    return [str(o) for o in task], list(excluded or ())


def _job_dir_resolver(num: Any, _root_: DictConfig) -> str:
    from pipeline.runinfo import RESUME_ENV

    if OmegaConf.select(_root_, f"hydra.job.env_set.{RESUME_ENV}") is not None:
        found = resumed_job_dir(OmegaConf.select(_root_, "hydra.sweep.dir"), int(num))
        if found is not None:
            return found
    width = OmegaConf.select(_root_, f"hydra.job.env_set.{JOB_WIDTH_ENV}", default=1)
    return job_dir_name(num, *_given(_root_), width=int(width))


def job_dir_of(hydra: dict[str, Any]) -> str | None:
    """What `_job_dir_resolver` names a job's dir, read from the job's `hydra` node as a
    container, unresolved (the stacked launcher converts every job's config once anyway):
    when `hydra.sweep.subdir` is `JOB_SUBDIR`, the sweep is not being resumed (its dirs are
    found on disk) and the keys left out of names and the width are plain (no `${...}`;
    the overrides are taken as typed either way); else None, and OmegaConf resolves the
    subdir itself."""
    from pipeline.runinfo import RESUME_ENV

    try:
        job = hydra["job"]
        env = job.get("env_set") or {}
        num, width = job["num"], env.get(JOB_WIDTH_ENV, 1)
        overrides = hydra["overrides"]["task"]
        excluded = job["config"]["override_dirname"]["exclude_keys"] or []
        texts = [*excluded, width] if isinstance(width, str) else excluded
        if (
            hydra["sweep"]["subdir"] != JOB_SUBDIR
            or RESUME_ENV in env
            or type(num) is not int
            or not isinstance(width, (int, str))
            or not (isinstance(overrides, list) and isinstance(excluded, list))
            or not all(isinstance(text, str) and not resolved_further(text) for text in texts)
        ):
            return None
        return job_dir_name(num, [str(o) for o in overrides], excluded, width=int(width))
    except (KeyError, TypeError, AttributeError, ValueError):
        return None


def job_dir_names(cfg: DictConfig) -> Any:
    """job number -> what `_job_dir_resolver` names its dir, for every job whose config is
    `cfg` but for its number (the preflight checks a sweep's dirs with it); None for a
    resumed sweep, whose dirs are found on disk."""
    from pipeline.runinfo import RESUME_ENV

    if OmegaConf.select(cfg, f"hydra.job.env_set.{RESUME_ENV}") is not None:
        return None
    width = int(OmegaConf.select(cfg, f"hydra.job.env_set.{JOB_WIDTH_ENV}", default=1))
    overrides, excluded = _given(cfg)
    return lambda num: job_dir_name(num, overrides, excluded, width=width)


def resumed_job_dir(sweep_dir: Any, num: int) -> str | None:
    """The name of job `num`'s dir in a sweep being resumed, as it was made: a sweep made
    before names were padded and shell-safe (`7_noise_std=1`) goes on in its own dirs."""
    from pathlib import Path

    from pipeline.readback.status import job_dirs

    if sweep_dir is None or not Path(str(sweep_dir)).is_dir():
        return None
    found = job_dirs(Path(str(sweep_dir))).get(num)
    return None if found is None else found.name


def _run_suffix_resolver(name: Any, _root_: DictConfig) -> str:
    """`_<name>` after a single run's time; nothing for a run of the defaults; `_rerun`
    for `tbpipe rerun` unless its command line gives a `name=`."""
    overrides, excluded = _given(_root_)
    if RERUN_SAVED in overrides:
        given = overrides[overrides.index(RERUN_SAVED) + 1 :]
        if not any(key == "name" for key, _ in settings(given, excluded)):
            return f"_{RERUN_NAME}"
    named = run_name(name_as_shown(name, _root_), overrides, excluded)
    return "" if named == DEFAULT_RUN_NAME and name in (None, "") else f"_{named}"


def name_as_shown(name: Any, root: DictConfig) -> Any:
    """`name` as its folder may show it: a name that holds a value read from the
    environment (`name=${oc.env:TOKEN}`, or `${token}` set so) is shown as typed
    (`oc.env:TOKEN`), never as what it resolves to."""
    if not OmegaConf.is_interpolation(root, "name") and "${" not in str(_raw_name(root)):
        return name
    from pipeline.runinfo import environment_values

    try:
        task = OmegaConf.masked_copy(root, [key for key in root if key != "hydra"])
        secrets = environment_values(task)
    except Exception:  # noqa: BLE001  what cannot be resolved here is not shown either
        return as_typed(str(_raw_name(root)))
    if any(secret in str(name) for secret in secrets):  # short ones too: this is a name
        return as_typed(str(_raw_name(root)))
    return name


def _raw_name(root: DictConfig) -> Any:
    return OmegaConf.to_container(OmegaConf.masked_copy(root, ["name"]), resolve=False)["name"]


if not OmegaConf.has_resolver("tbpipe.job_dir"):
    OmegaConf.register_new_resolver("tbpipe.job_dir", _job_dir_resolver)
if not OmegaConf.has_resolver("tbpipe.run_suffix"):
    OmegaConf.register_new_resolver("tbpipe.run_suffix", _run_suffix_resolver)
registry.job_dir_names.setdefault(JOB_SUBDIR, job_dir_names)

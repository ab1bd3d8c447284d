"""Run folder names that say what differs: they are TensorBoard's run names and legends.

A sweep job's folder is `<num>_<setting>`: its number (unique, in launch order) and only
the settings the sweep varies, with short keys in the user's words (`3_noise_std=1`, not
`3_+experiment=noise_sweep,data.noise_std=1,trainer.steps=300`). Which settings vary is
decided once, from the sweep's own command line, when the sweep starts (`SweptNames`):
the overrides that stay constant join `hydra.job.config.override_dirname.exclude_keys`,
which every job's config then carries. So a name is a pure function of the sweep's
overrides and the job's: the same command gives the same folders (`tbpipe resume` finds
its jobs by them). The constants are still in each job's TEXT and HPARAMS tabs.

A single run's folder is `<time>_<name>`: `name=...` if the user gave one, else what it
ran (the experiment, or its overrides as short key=value), else `default`.

Importing this module registers the `tbpipe.job_dir` and `tbpipe.run_name` resolvers that
conf/config.yaml uses; it stays light (no TensorFlow).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pipeline.compat import add_sweep_hydra_override

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


def safe_name(name: str) -> str:
    """One path component: `/` becomes `∕` (U+2215), NUL is dropped, and a very long name
    is cut and given a hash of the full text so it stays unique."""
    name = name.replace("/", "\u2215").replace("\0", "")
    if len(name.encode()) > MAX_NAME_BYTES:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = name.encode()[: MAX_NAME_BYTES - 11].decode(errors="ignore") + "~" + digest
    return name


def settings(overrides: Iterable[str], exclude_keys: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(key, value as typed) of each override whose key is not excluded, in command order."""
    excluded = set(exclude_keys)
    found = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
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


def short_settings(found: Sequence[tuple[str, str]]) -> str:
    """`noise_std=0.01,seed=1`: each key's last dotted part, unless two keys share it."""
    last = [key.rsplit(".", 1)[-1] for key, _ in found]
    shown = [
        short if last.count(short) == 1 else key
        for short, (key, _) in zip(last, found, strict=True)
    ]
    return ",".join(f"{key}={value}" for key, (_, value) in zip(shown, found, strict=True))


def job_dir_name(num: int | str, overrides: Iterable[str], exclude_keys: Iterable[str] = ()) -> str:
    """`<num>_<swept settings>`, or `<num>` when the job has none; never a nested path."""
    named = short_settings(settings(overrides, exclude_keys))
    return safe_name(f"{num}_{named}" if named else str(num))


def run_name(name: Any, overrides: Iterable[str], exclude_keys: Iterable[str] = ()) -> str:
    """A single run's name: the user's `name`, else the experiment and the other overrides."""
    if name not in (None, ""):
        return safe_name(str(name))
    found = [(k, v) for k, v in settings(overrides, exclude_keys) if k != "name"]
    experiment = [value for key, value in found if key == EXPERIMENT]
    rest = short_settings([(key, value) for key, value in found if key != EXPERIMENT])
    return safe_name("_".join(experiment + ([rest] if rest else [])) or DEFAULT_RUN_NAME)


def label_of(overrides: Iterable[str], exclude_keys: Iterable[str] = ()) -> str:
    """What sets a run apart, for its plots' titles: a sweep job's swept settings (the
    sweep excludes its constants), a single run's experiment and overrides; "" for none."""
    label = run_name(None, overrides, exclude_keys)
    return "" if label == DEFAULT_RUN_NAME else label


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


def _given(root: DictConfig) -> tuple[list[str], list[str]]:
    """The job's overrides as typed (an `${...}` in one is not resolved here) and the
    keys left out of names."""
    task = OmegaConf.to_container(root.hydra.overrides.task, resolve=False)
    excluded = OmegaConf.select(root, "hydra.job.config.override_dirname.exclude_keys")
    return [str(o) for o in task], list(excluded or ())


def _job_dir_resolver(num: Any, _root_: DictConfig) -> str:
    return job_dir_name(num, *_given(_root_))


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

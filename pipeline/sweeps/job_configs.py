"""Each sweep job's config from one composition per choice of config group options.

Hydra's basic launcher composes every job's config from scratch: the defaults list, every
YAML file, the merges, as much as the rest of a default job together. In a
sweep over values (`seed=range(1000)`, `data.noise_std=0,0.5,1`) the jobs differ only in
values, never in which config group options they pick, so `ReusingConfigLoader` composes
once per set of group choices (a "template") and gives each job a copy with its values
set, the way Hydra's loader sets them (`OmegaConf.update(..., merge=True)` on the struct
config), plus the two fields Hydra derives from a job's overrides
(`hydra.overrides.task`, `hydra.job.override_dirname`).

Anything else goes through Hydra's own composition, so its errors read as Hydra's: a group
choice (`model=mlp`) or a `hydra.` key picks the template, and `+key`, `++key`, `~key`, a
key the config lacks or a value OmegaConf refuses fall back to composing the job whole.
tests/test_job_configs.py checks, job by job, that both ways give the same config.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, OmegaConf, open_dict

from pipeline.compat import GroupOptions, overrides_dirname, parsed_override

#: templates kept at once (one per set of group choices a sweep visits; LRU beyond that)
TEMPLATES_KEPT = 8

#: what `OmegaConf.select` returns for a key the config does not have
_ABSENT = object()


class ReusingConfigLoader:
    """Hydra's config loader, with `load_sweep_config` reusing one composition per set of
    group choices. Everything else is the wrapped loader's."""

    def __init__(self, loader: Any):
        self._loader = loader
        #: each template pickled: unpickling is a copy several times faster than
        #: `copy.deepcopy` of tbpipe's config, with the same nodes and flags
        self._templates: OrderedDict[tuple[str, ...], bytes] = OrderedDict()
        #: {(group choices, the keys of the job's overrides): the first config of that shape
        #: pickled, with its values and task}: a later job changes what it sets otherwise
        self._shapes: OrderedDict[tuple, tuple] = OrderedDict()
        self._groups: set[str] | None = None
        self.composed = 0  # whole compositions made (templates and fallbacks): tests read it

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: list[str]):
        """The job's config: a copy of its template with the job's values set."""
        # each line parsed once a process (a noise level's is in hundreds of jobs)
        parsed = [parsed_override(line) for line in sweep_overrides]
        self._learn_groups(master_config)
        picks = tuple(o.input_line for o in parsed if self._picks_template(o))
        values = [o for o in parsed if not self._picks_template(o)]
        if any(not settable_value(o) for o in values):
            return self._compose(master_config, sweep_overrides)
        task = [o.input_line for o in parsed if not o.is_hydra_override()]
        shape = (picks, tuple(o.key_or_group for o in parsed if not o.is_hydra_override()))
        first = self._shapes.get(shape) if plain_values(values) else None
        config = self._like_first(first, values) if first is not None else None
        if config is not None:  # its task's lines set where they differ from the first's
            lines = config.hydra.overrides.task
            with open_dict(config.hydra):
                for index, (line, was) in enumerate(zip(task, first[2], strict=True)):
                    if line != was:
                        lines[index] = line
                config.hydra.job.override_dirname = overrides_dirname(task, config)
        else:
            config = pickle.loads(self._template(master_config, picks))
            try:
                for override in values:
                    if OmegaConf.select(config, override.key_or_group, default=_ABSENT) is _ABSENT:
                        raise KeyError(override.key_or_group)
                    OmegaConf.update(config, override.key_or_group, override.value(), merge=True)
            except Exception:  # Hydra's composition says what is wrong, in its own words
                return self._compose(master_config, sweep_overrides)
            with open_dict(config.hydra):
                config.hydra.overrides.task = task
            if plain_values(values):
                self._keep(self._shapes, shape, (pickle.dumps(config), values, task))
            with open_dict(config.hydra):
                config.hydra.job.override_dirname = overrides_dirname(task, config)
        OmegaConf.copy_cache(from_config=master_config, to_config=config)
        return config

    def _like_first(self, first: tuple, values: list[Override]) -> DictConfig | None:
        """A copy of the first config of the job's shape with the values the job sets
        otherwise set (a seed sweep: its seed); None when one does not take (the caller
        composes the job as it did the first, to say why)."""
        pickled, first_values, _ = first
        config = pickle.loads(pickled)
        try:
            for override, was in zip(values, first_values, strict=True):
                if override.input_line != was.input_line:
                    OmegaConf.update(config, override.key_or_group, override.value(), merge=True)
        except Exception:  # noqa: BLE001
            return None
        return config

    def _picks_template(self, override: Override) -> bool:
        """A group choice or a Hydra setting: composed into the template, not set on it."""
        return override.is_hydra_override() or override.key_or_group in self._groups

    def _template(self, master_config: DictConfig, picks: tuple[str, ...]) -> bytes:
        template = self._templates.get(picks)
        if template is None:
            template = pickle.dumps(self._compose(master_config, list(picks)))
        self._keep(self._templates, picks, template)
        return template

    @staticmethod
    def _keep(kept: OrderedDict, key: tuple, value: Any) -> None:
        """Keep `value` as the most recently used of at most TEMPLATES_KEPT."""
        kept[key] = value
        kept.move_to_end(key)
        if len(kept) > TEMPLATES_KEPT:
            kept.popitem(last=False)

    def _compose(self, master_config: DictConfig, overrides: Sequence[str]) -> DictConfig:
        self.composed += 1
        return self._loader.load_sweep_config(master_config, list(overrides))

    def _learn_groups(self, master_config: DictConfig) -> None:
        """Config groups a job could pick an option of: every group Hydra's loader knows,
        and every group the sweep's own config chose from (a `hydra.searchpath` adds some)."""
        if self._groups is None:
            chosen = OmegaConf.select(master_config, "hydra.runtime.choices", default={}) or {}
            # one copy of the loader's repository for every question (its own copies it
            # for each, and the search walks every nested group)
            self._groups = {*all_groups(GroupOptions(self._loader)), *chosen}


def settable_value(override: Override) -> bool:
    """`key=value` on a key the config has: what a copy of the template can take."""
    return (
        override.type == OverrideType.CHANGE
        and override.package is None
        and not override.is_sweep_override()
    )


def plain_values(values: Sequence[Override]) -> bool:
    """Whether the values are numbers, text or booleans set on keys none of which holds
    another: then setting some of them again changes only those."""
    keys = [override.key_or_group for override in values]
    return all(
        type(override.value()) in (int, float, bool, str) for override in values
    ) and not any(
        key == other or other.startswith(f"{key}.")
        for position, key in enumerate(keys)
        for other in keys[position + 1 :] + keys[:position]
    )


def all_groups(loader: Any, parent: str = "") -> list[str]:
    """Every config group in the loader's search path, nested ones as `a/b`, also as `a.b`
    (an override may name a nested group either way)."""
    from hydra.core.object_type import ObjectType

    found = []
    for name in loader.get_group_options(parent, results_filter=ObjectType.GROUP):
        group = f"{parent}/{name}" if parent else name
        found += [group, group.replace("/", "."), *all_groups(loader, group)]
    return found

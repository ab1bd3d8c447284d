"""A job's `.hydra/` files written by the stacked launcher (pipeline/sweeps/stacked_write.py)
hold the bytes Hydra's own `run_job` writes: `OmegaConf.to_yaml` of the job's config and of
its hydra node, even though the launcher dumps them entry by entry, reusing the text of the
entries that every job of the sweep shares (pipeline/sweeps/stacked_configs.py), from the
job's config read straight from its nodes (compat.config_container). Its task config, made
from the previous job's, is the one `OmegaConf.create` makes."""

from __future__ import annotations

import pytest
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict

from pipeline import compat
from pipeline.check.compose import tbpipe_configs
from pipeline.sweeps import stacked_configs
from pipeline.sweeps.job_configs import ReusingConfigLoader
from pipeline.sweeps.stacked_configs import task_config_of, yaml_by_entry

#: a sweep's jobs as the stacked launcher gets them, values that YAML could misread among them
JOBS = [
    ["data.noise_std=0.01", "seed=0"],
    ["data.noise_std=0.01", "seed=1"],
    ["data.noise_std=2", "seed=0", "name='yes'"],
    ["data.noise_std=1e-3", "seed=7", "name='a long name: with a colon, " + "words " * 20 + "'"],
    ["data.noise_std=0.5", "seed=3", "name=' 1.5'", "optimizer=adam"],
    ["data.noise_std=0.5", "seed=4", "+hydra.job.env_set.NOTE='a note: " + "said " * 30 + "'"],
    ["data.noise_std=0.5", "seed=5", "data.x_low=-1e-3", "name=null", "optimizer=adam"],
    ["data.noise_std=inf", "seed=-9", "trainer.progress=true", "data.x_low=-0.0"],
    ["data.noise_std=nan", "seed=123456789012345678901234567890", "data.x_low=1e+300"],
]


def composed_jobs(sweep_dir: str, jobs: list[list[str]]) -> list:
    """Each job's config of a sweep into `sweep_dir` (job N's output dir `<sweep_dir>/N`),
    composed as the stacked launcher composes it; inside `tbpipe_configs()`."""
    master = compat.compose_with_hydra("config", [f"hydra.sweep.dir={sweep_dir}"], RunMode.MULTIRUN)
    loader = ReusingConfigLoader(compat.hydra_config_loader())
    configs = []
    for num, overrides in enumerate(jobs):
        cfg = loader.load_sweep_config(master, overrides)
        with open_dict(cfg):
            cfg.hydra.job.num = num
            cfg.hydra.runtime.output_dir = f"{sweep_dir}/{num}"
        configs.append(cfg)
    return configs


@pytest.fixture(scope="module")
def job_configs():
    """Each job's config, composed as the stacked launcher composes it."""
    with tbpipe_configs():
        yield composed_jobs("/tmp/stacked-yaml-test", JOBS)


def test_each_jobs_saved_config_has_the_bytes_hydra_writes(job_configs, monkeypatch):
    """Dumped twice over the whole sweep (the second time every shared entry is reused),
    and with a cache too small to keep them, every file equals Hydra's own text."""
    for kept in (stacked_configs.ENTRIES_KEPT, 2):
        monkeypatch.setattr(stacked_configs, "ENTRIES_KEPT", kept)
        stacked_configs._entry_yaml.clear()
        for _ in range(2):
            for cfg in job_configs:
                saved = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
                hydra_saved = saved.pop("hydra")
                want_config = OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, list(saved)))
                want_hydra = OmegaConf.to_yaml(OmegaConf.masked_copy(cfg, "hydra"))
                assert yaml_by_entry(saved) == want_config
                assert yaml_by_entry(hydra_saved, under="hydra") == want_hydra
        assert len(stacked_configs._entry_yaml) <= kept


def test_each_jobs_task_config_is_the_one_create_makes(job_configs):
    """Each job's task config, a copy of the last one created whole with its own values
    set, has the values, nodes and flags of `OmegaConf.create` of its saved config."""
    stacked_configs._template.clear()
    for _ in range(2):
        for cfg in job_configs:
            saved = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
            del saved["hydra"]
            made, want = task_config_of(saved), OmegaConf.create(saved)
            assert OmegaConf.to_container(made, resolve=False) == saved
            assert repr(made) == repr(want)  # each node's type and raw value
            assert made._metadata.flags == want._metadata.flags
    with_a_key_more = {**saved, "more": 1}
    assert OmegaConf.to_container(task_config_of(with_a_key_more)) == with_a_key_more
    assert task_config_of(saved).get("more") is None


def test_an_empty_mapping_reads_as_hydras():
    assert yaml_by_entry({}) == OmegaConf.to_yaml({})
    assert yaml_by_entry({}, under="hydra") == OmegaConf.to_yaml({"hydra": {}})


def test_each_jobs_config_reads_as_omegaconfs_container(job_configs):
    """The stacked launcher reads each job's whole config straight from its nodes: the
    dicts, lists and values of `OmegaConf.to_container(resolve=False, enum_to_str=True)`."""
    for cfg in job_configs:
        want = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
        got = compat.config_container(cfg)
        assert got == want and repr(got) == repr(want)  # the same types, in the same order


#: texts a job's entry may hold, many of which YAML reads as another type or must quote
TRICKY_TEXTS = [
    "", "0", "-1", "1_000", "0x1F", "0o17", "1e3", "-.inf", ".nan", "1:20", "2001-12-14",
    "yes", "No", "on", "OFF", "y", "~", "null", "Null", "true", "=", "<<", "-", "--", "---",
    "...", "?", ":", "a:b", "a:", ":a", "#a", "a#b", "[a]", "{a}", "a,b", "!a", "&a", "*a",
    "|", ">", "%a", "@a", "`a", "'a'", '"a"', "a'b", "a\\b", "seed=3", "data.noise_std=0.01",
    "/tmp/sweep/007_noise_std-0.01_seed-7", "x" * 40, "-x", "+1", "0.", ".5", "1.5e-3",
    "/a/long/sweep/dir/" + "d" * 200 + "/007_noise_std-0.01_seed-7", "k=" + "9" * 120,
]  # fmt: skip


def test_a_short_texts_yaml_is_the_one_omegaconf_writes():
    """A job's own texts (its dir, its overrides) are written without PyYAML's Python
    emitter: each text, under a key, in a list, as OmegaConf's dumper writes it."""
    for text in TRICKY_TEXTS:
        assert yaml_by_entry({"hydra": {"job": {"id": text}}}) == OmegaConf.to_yaml(
            {"hydra": {"job": {"id": text}}}
        ), text
    assert stacked_configs.list_yaml(TRICKY_TEXTS) == OmegaConf.to_yaml(TRICKY_TEXTS)
    deep = {"a": {"b": {"c": {"d": {"e": TRICKY_TEXTS}}}}}
    assert yaml_by_entry(deep) == OmegaConf.to_yaml(deep)
    for longer in ["x" * 1025, "a b", "a\tb", "é", "a\nb"]:
        assert stacked_configs.scalar_text(longer) == ""  # dumped whole, as any other entry
        assert stacked_configs.list_yaml([longer]) == OmegaConf.to_yaml([longer])


def test_an_entry_equal_in_python_but_not_in_yaml_is_dumped_again():
    """`1`, `1.0` and `true` are equal in Python; `0.0` and `-0.0` too; a mapping's keys
    in another order are equal: each job's entry is written as its own."""
    for values in ([1, 1.0, True, 1], [0.0, -0.0, 0.0], [{"a": 1, "b": 2}, {"b": 2, "a": 1}]):
        for value in values:
            assert yaml_by_entry({"m": {"v": value}}) == OmegaConf.to_yaml({"m": {"v": value}})


def test_a_list_of_short_texts_in_a_mapping_reads_as_omegaconfs():
    """A job's overrides (`hydra.overrides.task`), written item by item, at every depth."""
    for items in (TRICKY_TEXTS, ["seed=1", 2, 0.5, True, None], ["a b", "c"], [[1]], [{"a": 1}]):
        for tree in ({"task": items}, {"hydra": {"overrides": {"task": items}}}):
            assert yaml_by_entry(tree) == OmegaConf.to_yaml(tree), items


def test_each_jobs_shown_config_is_omegaconfs_resolved_container(job_configs):
    """What run.json shows of a job (its task config resolved) is read from its saved
    config, OmegaConf resolving only the values that hold an interpolation."""
    for cfg in job_configs:
        saved = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
        del saved["hydra"]
        made = task_config_of(saved)
        assert stacked_configs.resolved_copy(made, saved) == OmegaConf.to_container(
            made, resolve=True
        )
    saved = {"a": {"b": 1, "c": [2, "${a.b}"]}, "d": "${a}", "e": "x${a.b}", "f": "???"}
    got = stacked_configs.resolved_copy(OmegaConf.create(saved), saved)
    assert got == {"a": {"b": 1, "c": [2, 1]}, "d": {"b": 1, "c": [2, 1]}, "e": "x1", "f": "???"}
    assert saved["a"]["c"][1] == "${a.b}"  # the saved config is left as it was
    broken = {"a": "${nowhere}"}
    with pytest.raises(Exception) as ours:
        stacked_configs.resolved_copy(OmegaConf.create(broken), broken)
    with pytest.raises(Exception) as omegaconfs:
        OmegaConf.to_container(OmegaConf.create(broken), resolve=True)
    assert str(ours.value) == str(omegaconfs.value)

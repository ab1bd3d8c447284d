"""Each job the stacked launcher writes logs as under Hydra's own `configure_log`: the same
loggers, levels, handlers and format, its tbpipe.log in its own dir holding its own lines,
though dictConfig runs once and later jobs get a file handler of their own
(pipeline/sweeps/stacked_logging.py). Between jobs the launcher puts Hydra's own logging
back (`hydra.hydra_logging`), as here."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hydra.core.utils import configure_log
from omegaconf import OmegaConf, open_dict

from pipeline.check.compose import tbpipe_configs
from pipeline.sweeps import stacked_logging
from pipeline.sweeps.stacked_logging import JobLogging, SweepLogging
from tests.test_stacked_yaml import composed_jobs

#: a sweep's jobs, the last three with a logging config of their own
JOBS = [
    ["data.noise_std=0.01", "seed=0"],
    ["data.noise_std=0.01", "seed=1"],
    ["data.noise_std=2", "seed=0"],
    ["data.noise_std=2", "seed=1", "hydra.job_logging.loggers.tbpipe.level=WARNING"],
    ["data.noise_std=2", "seed=2", "hydra.verbose=true"],
    ["data.noise_std=2", "seed=3"],
]


@pytest.fixture
def saved_logging():
    """Python's logging as it was before the test, put back after it."""
    loggers = [logging.root, *logging.root.manager.loggerDict.values()]
    kept = [
        (logger, logger.level, list(logger.handlers), logger.propagate, logger.disabled)
        for logger in loggers
        if isinstance(logger, logging.Logger)
    ]
    yield
    for logger, level, handlers, propagate, disabled in kept:
        logger.setLevel(level)
        logger.handlers, logger.propagate, logger.disabled = handlers, propagate, disabled


@pytest.fixture(scope="module")
def a_job(tmp_path_factory):
    return job_configs(tmp_path_factory.mktemp("sweep"))[2]


def job_configs(sweep_dir: Path) -> list:
    with tbpipe_configs():
        configs = composed_jobs(str(sweep_dir), JOBS)
    for num in range(len(configs)):
        (sweep_dir / str(num)).mkdir(parents=True)
    return configs


def described() -> dict:
    """Every logger's level, propagation, state and handlers (class, name, file, format)."""
    loggers = {"": logging.root, **logging.root.manager.loggerDict}
    return {
        name: (
            logger.level,
            logger.propagate,
            logger.disabled,
            [
                (
                    type(h),
                    h.get_name(),
                    getattr(h, "baseFilename", None),
                    h.level,
                    h.formatter and h.formatter._fmt,
                    getattr(h, "stream", None) is not None,
                )
                for h in logger.handlers
            ],
        )  # fmt: skip
        for name, logger in loggers.items()
        if isinstance(logger, logging.Logger)
    }


def log_each_job(configs: list, configure_job, configure_sweep) -> list:
    """Each job's logging set by `configure_job(cfg)`, a few lines logged, the launcher's
    own set back by `configure_sweep` and a line logged; the state of logging in each
    job and after it."""
    states = []
    detail = logging.getLogger("pipeline.some.module")  # there before the first job
    configure_log(configs[0].hydra.hydra_logging, False)  # as the launcher starts
    for cfg in configs:
        configure_job(cfg)
        states.append(described())
        logging.getLogger("tbpipe").info("job %s started", cfg.hydra.job.num)
        logging.getLogger("tbpipe").warning("job %s warns", cfg.hydra.job.num)
        detail.debug("job %s in detail", cfg.hydra.job.num)
        configure_sweep(configs[0])  # the sweep's own config, the same after every job
        states.append(described())
        logging.getLogger("hydra").info("after job %s", cfg.hydra.job.num)
    return states


@pytest.mark.slow  # several jobs' logging in one process: in `make test` only
def test_each_job_logs_as_under_hydras_configure_log(tmp_path, saved_logging):
    """Job by job, the same logging state as Hydra's `configure_log` gives, the same log
    files (timestamps aside), and dictConfig run only for a config that differs."""
    hydras = job_configs(tmp_path / "hydra")
    states = log_each_job(
        hydras,
        lambda cfg: configure_log(cfg.hydra.job_logging, cfg.hydra.verbose),
        lambda cfg: configure_log(cfg.hydra.hydra_logging, cfg.hydra.verbose),
    )
    job_logging = JobLogging()
    sweep_logging = SweepLogging(job_logging)
    consoles = []

    def configure(cfg):
        saved = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
        job_logging.configure(cfg, saved)
        consoles.append(logging.root.handlers[0])

    def configure_sweep(cfg):
        sweep_logging.configure(cfg.hydra)
        consoles.append(logging.root.handlers[0])

    mine = log_each_job(job_configs(tmp_path / "stacked"), configure, configure_sweep)
    for index, (got, want) in enumerate(zip(mine, states, strict=True)):
        # the same state, each job's file in its own dir
        num = index // 2
        files = {k: [h[2] for h in v[3] if h[2]] for k, v in got.items()}
        assert {k: v for k, v in files.items() if v} == {
            k: [f.replace(str(tmp_path / "hydra"), str(tmp_path / "stacked")) for f in v]
            for k, v in {k: [h[2] for h in v[3] if h[2]] for k, v in want.items()}.items()
            if v
        }, index
        if index % 2 == 0:
            assert set(sum(files.values(), [])) == {
                str(tmp_path / "stacked" / str(num) / "tbpipe.log")
            }
        without_files = {k: (*v[:3], [h[:2] + h[3:] for h in v[3]]) for k, v in got.items()}
        assert without_files == {
            k: (*v[:3], [h[:2] + h[3:] for h in v[3]]) for k, v in want.items()
        }, index
    for num in range(len(JOBS)):
        got = (tmp_path / "stacked" / str(num) / "tbpipe.log").read_text().splitlines()
        want = (tmp_path / "hydra" / str(num) / "tbpipe.log").read_text().splitlines()
        assert [line[25:] for line in got] == [line[25:] for line in want], num
        assert any(f"job {num} warns" in line for line in got), num
    verbose = (tmp_path / "stacked" / "4" / "tbpipe.log").read_text()
    assert "job 4 in detail" in verbose  # hydra.verbose=true: debug lines too
    # dictConfig ran for the first job and for each that changed the config: the console
    # handler it made is kept for the jobs after; the launcher's, made after the first
    # job, is kept for the whole sweep
    jobs, sweep = consoles[0::2], consoles[1::2]
    assert [h is jobs[0] for h in jobs] == [True, True, True, False, False, False]
    assert len(set(map(id, jobs))) == 4
    assert all(h is sweep[0] for h in sweep) and sweep[0] not in jobs


@pytest.mark.parametrize(
    "filename",
    [
        "${hydra.runtime.output_dir}/${hydra.job.name}.log",
        "${hydra.runtime.output_dir}/${hydra.job.num}-${hydra.job.override_dirname}.log",
        "${hydra.job.num}",
        "${hydra.runtime.output_dir}/${hydra.mode}.log",  # an enum: OmegaConf's own text
        "${hydra.runtime.output_dir}/${oc.env:USER,someone}.log",
        "${hydra.runtime.output_dir}/\\${hydra.job.name}.log",
        "${hydra.runtime.output_dir}/${hydra.job.config_name}$.log",
        "${hydra.job.override_dirname}/${hydra.sweep.dir}/${hydra.job.chdir}.log",
    ],
)
def test_a_log_files_name_reads_as_omegaconf_resolves_it(a_job, filename):
    cfg = a_job.copy()
    with open_dict(cfg):
        cfg.hydra.job_logging.handlers.file.filename = filename
    saved = OmegaConf.to_container(cfg, resolve=False, enum_to_str=True)
    got = stacked_logging.resolved(cfg, saved, ("handlers", "file", "filename"))
    want = cfg.hydra.job_logging.handlers.file.filename
    assert got == want and type(got) is type(want)

"""The Python API: the same experiment from a notebook as from the command line.

A run from `pipeline.api` with the same overrides and seed as `tbpipe` writes bit-identical
series; a sweep from Python has the command line's layout; runs read back as plain data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import api


@pytest.fixture(scope="module")
def cli_and_api_runs(default_run, tmp_path_factory) -> tuple[Path, api.RunResult]:
    """The default experiment twice: through the console script (the suite's shared run,
    `tbpipe hydra.run.dir=...`) and through the API with the same (no) overrides."""
    result = api.run_experiment(run_dir=tmp_path_factory.mktemp("api") / "run")
    return default_run, result


def test_same_config_and_seed_as_the_command_line_gives_bit_identical_series(cli_and_api_runs):
    cli_dir, result = cli_and_api_runs
    from_cli, from_api = api.read_run(cli_dir), api.read_run(result.run_dir)
    assert set(from_api["scalars"]) >= {"train/k", "train/k/error", "train/loss", "test/loss"}
    assert len(from_api["scalars"]["train/k"]) == 1001  # steps 0..1000
    assert from_api["scalars"] == from_cli["scalars"]  # exact float equality, every point
    for key in ("k", "k_error", "train_loss", "test_loss", "steps", "status"):
        assert from_api["metrics"][key] == from_cli["metrics"][key]


def test_a_run_from_python_is_laid_out_like_a_command_line_run(cli_and_api_runs):
    cli_dir, result = cli_and_api_runs
    assert result.metrics["status"] == "completed"
    assert result.metrics == api.read_run(result.run_dir)["metrics"]
    saved_cli, saved_api = cli_dir / ".hydra", result.run_dir / ".hydra"
    assert (saved_api / "config.yaml").read_text() == (saved_cli / "config.yaml").read_text()
    assert api.read_run(result.run_dir)["overrides"] == api.read_run(cli_dir)["overrides"] == []
    assert (result.run_dir / "train").is_dir() and (result.run_dir / "test").is_dir()


def test_a_finished_run_resumed_from_python_is_left_as_it_is(cli_and_api_runs, capsys):
    _, result = cli_and_api_runs
    files = sorted(result.run_dir.rglob("*"))
    stamps = [(path, path.stat().st_mtime_ns) for path in files]
    again = api.resume_run(result.run_dir)
    assert again.metrics == result.metrics
    assert capsys.readouterr().out.startswith(f"nothing to resume: {result.run_dir} completed")
    assert [(path, path.stat().st_mtime_ns) for path in sorted(result.run_dir.rglob("*"))] == stamps
    with pytest.raises(api.BadInput, match="holds no run"):
        api.resume_run(result.run_dir.parent)  # not a run dir


def test_a_bad_override_from_python_is_the_command_lines_one_line_error(tmp_path):
    with pytest.raises(api.BadInput, match=r"^bad value trainer.steps=0: must be an integer >= 1$"):
        api.run_experiment("trainer.steps=0", run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_sweep_from_python_has_the_command_lines_layout_and_reads_back(tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep = api.run_sweep(
        "data.noise_std=0.1,1.0",
        "trainer.steps=30",
        "trainer.progress=false",
        "sinks=[scalars]",
        sweep_dir=sweep_dir,
    )
    assert sweep.sweep_dir == sweep_dir
    assert [job.run_dir.name for job in sweep.jobs] == [
        "0_noise_std-0.1",
        "1_noise_std-1.0",
    ]
    assert [job.metrics["status"] for job in sweep.jobs] == ["completed", "completed"]
    assert (sweep_dir / "multirun.yaml").exists() and (sweep_dir / "summary.csv").exists()

    runs = api.read_runs(sweep_dir)
    assert [run["overrides"][0] for run in runs] == ["data.noise_std=0.1", "data.noise_std=1.0"]
    final_k = [run["scalars"]["train/k"][-1] for run in runs]
    assert [step for step, _ in final_k] == [30, 30]
    assert [value for _, value in final_k] == pytest.approx([j.metrics["k"] for j in sweep.jobs])

    rows = api.scalars_table(sweep_dir)
    assert {row["run"] for row in rows} == {job.run_dir.name for job in sweep.jobs}
    assert len([r for r in rows if r["tag"] == "test/loss"]) == 2 * 31
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pandas"):
            api.scalars_frame(sweep_dir)
    else:
        frame = api.scalars_frame(sweep_dir)
        assert list(frame.columns) == ["run", "tag", "step", "value"]
        assert len(frame) == len(rows)

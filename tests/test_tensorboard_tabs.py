"""TensorBoard's own tabs, as a user opens them on a sweep: every run listed holds
something to show, folders sort in launch order and paste into a shell, a diverged job is
a failure in HPARAMS without stretching its axes, a seeds sweep keeps its sessions."""

from __future__ import annotations

import io
import json
import shlex
import shutil
from pathlib import Path

import pytest

from tests.conftest import hparams_session_groups, run_tbpipe

pytestmark = pytest.mark.slow  # real sweeps through the console script

# grid_sweep (conftest.py): 2 noise levels x 2 learning rates x 3 seeds, half diverging

#: the plugins whose data a user can see in a tab (HParams bookkeeping alone is not)
VISIBLE = ("scalars", "histograms", "images", "text")


def tensorboard_runs(logdir: Path):
    """TensorBoard's multiplexer and data provider over `logdir`, loaded."""
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.backend.event_processing import plugin_event_multiplexer as pem

    runs = pem.EventMultiplexer()
    runs.AddRunsFromDirectory(str(logdir))
    runs.Reload()
    return runs, data_provider.MultiplexerDataProvider(runs, str(logdir))


def shown_by_run(logdir: Path) -> dict[str, set[str]]:
    """Every run TensorBoard lists (its /data/runs), with the tabs that show data of it."""
    from tensorboard import context

    runs, provider = tensorboard_runs(logdir)
    ctx = context.RequestContext()
    found = {run.run_name: set() for run in provider.list_runs(ctx, experiment_id="")}
    for plugin in VISIBLE:
        for kind in ("list_scalars", "list_tensors", "list_blob_sequences"):
            listing = getattr(provider, kind)(ctx, experiment_id="", plugin_name=plugin)
            for run, tags in listing.items():
                if tags:
                    found[run].add(plugin)
    return found


def job_dirs(sweep_dir: Path) -> list[Path]:
    return sorted(p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir())


def test_job_folders_sort_in_launch_order_and_every_command_finds_them(grid_sweep):
    sweep_dir, stdout, stderr = grid_sweep
    assert "Traceback" not in stderr and "ERROR" not in stderr
    names = [job.name for job in job_dirs(sweep_dir)]
    assert [name[:3] for name in names] == [f"{num:02d}_" for num in range(12)]  # 10 after 9
    assert names[10] == "10_noise_std-1_learning_rate-1000_seed-1"
    status = json.loads(run_tbpipe("status", str(sweep_dir), "--json", cwd=sweep_dir.parent,
                                   check=False).stdout)  # fmt: skip
    assert [(row["job"], Path(row["run_dir"]).name) for row in status] == list(enumerate(names))
    with open(sweep_dir / "summary.csv") as stream:
        rows = [line.split(",")[:2] for line in stream.read().splitlines()[1:]]
    assert rows == [[str(num), name] for num, name in enumerate(names)]
    report = run_tbpipe("report", str(sweep_dir), "--json", cwd=sweep_dir.parent)
    shown = [run["run"] for run in json.loads(report.stdout)["runs"]]
    assert shown == sorted(shown) and f"{names[10]}/train" in shown
    # nothing left to resume: every job found by its number, none run again
    resumed = run_tbpipe("resume", str(sweep_dir), cwd=sweep_dir.parent)
    assert resumed.stdout.startswith("nothing to resume") and resumed.stderr == ""


def test_every_folder_name_and_printed_hint_pastes_into_a_shell(grid_sweep):
    sweep_dir, stdout, _ = grid_sweep
    for path in sweep_dir.rglob("*"):
        assert shlex.quote(path.name) == path.name and not set(path.name) & set("[],=:\u2215")
    hints = [line.split("| tensorboard --logdir ", 1)[1] for line in stdout.splitlines()
             if "| tensorboard --logdir " in line]  # fmt: skip
    assert len(hints) == 6  # one per completed job
    for hint in hints:
        (where,) = shlex.split(hint)
        assert (sweep_dir.parent / where / "train").is_dir()


def test_every_run_tensorboard_lists_holds_something_to_show(grid_sweep):
    sweep_dir, _, _ = grid_sweep
    shown = shown_by_run(sweep_dir)
    assert not [run for run, tabs in shown.items() if not tabs], shown
    # a job's root is a run because its HParams session must see train/ and test/:
    # it shows the settings in TEXT
    roots = [run for run in shown if run.count("/") == 0 and run != "."]
    assert len(roots) == 12 and all(shown[run] == {"text"} for run in roots)
    # ".", each job's root/train/test, mean/<setting>/{train,test} of the 2 settings that
    # did not diverge (a diverged job has nothing to average)
    assert len(shown) == 1 + 12 * 3 + 2 * 2


def test_a_diverged_job_is_a_failure_in_hparams_without_its_blown_up_values(grid_sweep):
    sweep_dir, _, _ = grid_sweep
    runs, _ = tensorboard_runs(sweep_dir)
    groups = {group.name: group for group in hparams_session_groups(sweep_dir, runs)}
    assert sorted(groups) == [job.name for job in job_dirs(sweep_dir)]
    from tensorboard.plugins.hparams import api_pb2

    for job in job_dirs(sweep_dir):
        metrics = json.loads((job / "metrics.json").read_text())
        (session,) = groups[job.name].sessions
        values = {(m.name.group, m.name.tag): m.value for m in groups[job.name].metric_values}
        if metrics["status"] == "diverged":
            assert session.status == api_pb2.STATUS_FAILURE and values == {}
            assert groups[job.name].hparams["optimizer.learning_rate"].number_value == 1000
        else:
            assert metrics["status"] == "completed" and session.status == api_pb2.STATUS_SUCCESS
            assert values[("train", "k")] == pytest.approx(metrics["k"], rel=1e-6)
            assert values[("test", "loss")] == pytest.approx(metrics["test_loss"], rel=1e-6)
            assert all(abs(value) < 10 for value in values.values())  # the axes stay readable
    assert sum(json.loads((j / "metrics.json").read_text())["status"] == "diverged"
               for j in job_dirs(sweep_dir)) == 6  # fmt: skip


@pytest.fixture(scope="module")
def seeds_sweep(tmp_path_factory) -> Path:
    """`+experiment=noise_seeds` over 2 noise levels x 2 seeds: the sweep dir (tests that
    change it work on a copy)."""
    workdir = tmp_path_factory.mktemp("seeds")
    run_tbpipe("-m", "+experiment=noise_seeds", "data.noise_std=0.01,1", "seed=0,1",
               "trainer.steps=30", "trainer.progress=false", "hydra.sweep.dir=sweep",
               cwd=workdir)  # fmt: skip
    return workdir / "sweep"


def test_a_seeds_sweep_keeps_its_hparams_sessions_without_more_runs(seeds_sweep):
    sweep_dir = seeds_sweep
    shown = shown_by_run(sweep_dir)
    # ".", 4 jobs x (train, test), 2 settings x mean (train, test): no job root
    assert len(shown) == 1 + 4 * 2 + 2 * 2 and all(shown.values()), shown
    groups = hparams_session_groups(sweep_dir)
    assert len(groups) == 4
    for group in groups:
        metrics = json.loads((sweep_dir / group.name / "metrics.json").read_text())
        values = {m.name.tag: m.value for m in group.metric_values}
        assert values["k"] == pytest.approx(metrics["k"], rel=1e-6)
        assert values["k/error"] == pytest.approx(metrics["k_error"], rel=1e-5)
        assert group.hparams["seed"].number_value in (0, 1)


def test_the_sweep_summary_is_one_card_sized_picture_a_panel(grid_sweep):
    from PIL import Image

    sweep_dir, _, _ = grid_sweep
    runs, _ = tensorboard_runs(sweep_dir)
    images = sorted(runs.PluginRunToTagToContent("images")["."])
    assert images == ["plots/sweep_summary/k", "plots/sweep_summary/k_spread"]
    for tag in images:
        (event,) = runs.Tensors(".", tag)  # [width, height, PNG], as IMAGES reads it
        picture = Image.open(io.BytesIO(event.tensor_proto.string_val[2]))
        assert (picture.width, picture.height) == (440, 330)  # ~1.35x a card: little shrinking
    assert Image.open(sweep_dir / "summary.png").size == (900, 360)  # the file: both panels


def test_a_sweep_named_the_old_way_resumes_in_its_own_folders(seeds_sweep, tmp_path):
    """A sweep made before names were padded and shell-safe (`1_noise_std=1,seed=0`): a
    copy of the module's seeds sweep, its folders renamed so."""
    sweep_dir = tmp_path / "sweep"
    shutil.copytree(seeds_sweep, sweep_dir)
    for job in job_dirs(sweep_dir):
        num, setting = job.name.split("_", 1)
        old = setting.replace("_seed-", ",seed=").replace("noise_std-", "noise_std=")
        job.rename(sweep_dir / f"{int(num)}_{old}")
    lost = sweep_dir / "2_noise_std=1,seed=0"
    for name in ("metrics.json", "train", "test"):
        path = lost / name
        path.unlink() if path.is_file() else shutil.rmtree(path)
    resumed = run_tbpipe("resume", "sweep", cwd=tmp_path)
    assert "Traceback" not in resumed.stderr
    names = sorted(job.name for job in job_dirs(sweep_dir))
    assert names == ["0_noise_std=0.01,seed=0", "1_noise_std=0.01,seed=1",
                     "2_noise_std=1,seed=0", "3_noise_std=1,seed=1"]  # fmt: skip
    assert json.loads((lost / "metrics.json").read_text())["status"] == "completed"

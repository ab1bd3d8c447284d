"""The front door as a new user meets it: `tbpipe --help`, `--version`, `tbpipe help`, hints
that lead to the right override, and `tbpipe rerun` of a saved run. The console script runs
in a subprocess and its stderr is counted line by line."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from pipeline.check import hints
from pipeline.readback.runs import SCALARS, load_run
from tests.conftest import ROOT, TBPIPE, environment_kept, extending_commands, run_tbpipe

EXAMPLE = ROOT / "examples" / "quadratic"


# -- hints (in process) -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "known", "meant"),
    [
        ("lr", ["_target_", "learning_rate"], ["learning_rate"]),
        ("stepz", ["batch_size", "chunk", "steps"], ["steps"]),
        ("bs", ["batch_size", "chunk", "steps"], ["batch_size"]),
        ("noise", ["noise_std", "n_train", "seed"], ["noise_std"]),
        ("colour", ["every", "writer"], []),
    ],
)
def test_a_typo_finds_the_key_it_meant(typed, known, meant):
    assert hints.closest(typed, known) == meant


def _refusal(monkeypatch, capsys, tmp_path, *args: str) -> list[str]:
    from pipeline.__main__ import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["tbpipe", *args])
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 2
    assert list(tmp_path.iterdir()) == [] or args[0] == "--config-dir"  # nothing written
    return capsys.readouterr().err.splitlines()


def test_plus_is_suggested_only_for_a_users_piece(monkeypatch, capsys, tmp_path):
    """A user's class decides which keys it takes: there `+` may be what was meant."""
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)
    (err,) = _refusal(
        monkeypatch, capsys, tmp_path, "--config-dir", "conf", "data=quadratic", "data.k_tru=1"
    )
    assert "did you mean data.k_true?" in err and "(to add a new key, write +data.k_tru=1)" in err
    (err,) = _refusal(monkeypatch, capsys, tmp_path, "--config-dir", "conf", "data.noize_std=1")
    assert "did you mean data.noise_std" in err and "+" not in err  # tbpipe's own data


def test_a_new_key_on_a_checked_node_is_refused_before_anything_runs(monkeypatch, capsys, tmp_path):
    (err,) = _refusal(monkeypatch, capsys, tmp_path, "+optimizer.lr=0.1")
    assert err == (
        "tbpipe: unknown key +optimizer.lr=0.1: did you mean optimizer.learning_rate? "
        "(optimizer has learning_rate)"
    )
    (err,) = _refusal(monkeypatch, capsys, tmp_path, "-m", "seed=0,1", "+model.k_int=1")
    assert "did you mean model.k_init?" in err


@pytest.mark.parametrize("flag", [["--cfg", "job"], ["--info", "defaults"], ["--help"]])
def test_printing_flags_go_through_the_same_checks(flag, monkeypatch, capsys, tmp_path):
    (err,) = _refusal(monkeypatch, capsys, tmp_path, *flag, "model=mlpp")
    assert err == "tbpipe: unknown option model=mlpp: model is one of keras_mlp, linear, mlp"


def test_a_saved_runs_hydra_as_config_dir_is_refused(monkeypatch, capsys, tmp_path):
    saved = tmp_path / "run" / ".hydra"
    saved.mkdir(parents=True)
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
        (saved / name).write_text("{}\n")
    (err,) = _refusal(
        monkeypatch, capsys, tmp_path, "--config-dir", str(saved), "--config-name", "config"
    )
    assert "is a saved run's .hydra: tbpipe's own config would run instead of it" in err
    assert err.endswith(f"write: tbpipe rerun {saved.parent}")


# -- help and version (the console script) ----------------------------------------------
@pytest.mark.slow
def test_help_is_tbpipes_own_page(tmp_path):
    page = run_tbpipe("--help", cwd=tmp_path)
    assert page.stderr == "" and list(tmp_path.iterdir()) == []
    text = page.stdout
    assert "powered by Hydra" not in text and "schema" not in text
    for said in ("report DIR", "board [DIR]", "rerun RUN_DIR", "help [SUBCOMMAND]"):
        assert said in text, said
    for said in ("model=NAME", "linear (default), mlp", "sinks=[a,b,...]", "+experiment=NAME",
                 "example2_scalars", "-m hydra/launcher=NAME", "tbpipe -m ", "outputs/<date>",
                 "multirun/<date>", "docs/"):  # fmt: skip
        assert said in text, said
    assert run_tbpipe("help", cwd=tmp_path).stdout == text
    report_help = run_tbpipe("help", "report", cwd=tmp_path)
    assert report_help.stdout.startswith("usage: tbpipe report") and report_help.stderr == ""


@pytest.mark.slow
def test_help_lists_a_users_groups_from_their_config_dir(tmp_path):
    shutil.copytree(EXAMPLE, tmp_path, dirs_exist_ok=True)
    text = run_tbpipe("--help", "--config-dir", "conf", cwd=tmp_path).stdout
    assert "two_param" in text and "quadratic_two_param" in text and "curvature" in text


@pytest.mark.slow
def test_version_names_tbpipe_and_what_shapes_its_runs_without_loading_tensorflow(tmp_path):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipeline", "--version"],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    )  # fmt: skip
    (line,) = result.stdout.splitlines()
    assert line.startswith("tbpipe 0.") and "TensorFlow 2.21" in line and "Hydra 1.3" in line
    assert "TensorBoard 2.21" in line
    imported = {row.split("|")[-1].strip() for row in result.stderr.splitlines()}
    assert "tensorflow" not in imported and "hydra" in imported  # the rows are read right
    assert run_tbpipe("--version", cwd=tmp_path).stderr == ""


@pytest.mark.slow
def test_experiment_without_plus_says_to_write_the_plus(tmp_path):
    result = run_tbpipe("experiment=example2_scalars", cwd=tmp_path, check=False)
    assert result.returncode == 2 and list(tmp_path.iterdir()) == []
    assert result.stderr.splitlines() == [
        "tbpipe: experiment=example2_scalars: no experiment is chosen by default, so there is "
        "none to replace; to add one, write +experiment=example2_scalars"
    ]
    cfg = run_tbpipe("--cfg", "job", "model=mlpp", cwd=tmp_path, check=False)
    assert cfg.returncode == 2 and len(cfg.stderr.splitlines()) == 1 and cfg.stdout == ""


# -- rerun ----------------------------------------------------------------------------
def scalars(run_dir: Path) -> dict:
    """Every scalar series of both writers, as TensorBoard's reader gives them back."""
    return {
        (writer, tag): [(step, value.tobytes()) for step, value in points]
        for writer in ("train", "test")
        for tag, points in load_run(run_dir / writer).series[SCALARS].items()
    }


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    """A short MLP run, to rerun: made in this process (pipeline.api, the command line's
    config, seed and saved files); the reruns below are the console script's."""
    from pipeline import api

    run_dir = tmp_path_factory.mktemp("saved") / "run"
    with environment_kept():  # scalars alone: the reruns compare them, pictures cost time
        made = api.run_experiment(
            "model=mlp", "trainer.steps=40", "sinks=[scalars]", run_dir=run_dir
        )
    assert made.metrics["status"] == "completed"
    return run_dir


@pytest.fixture(scope="module")
def users_job(quadratic_commands) -> Path:
    """EXTENDING's sweep job of the user's own model, data and sink (made in their folder)."""
    _, ran = quadratic_commands
    (sweep,) = [Path(c["dir"]) for c in ran if "-m" in c["words"]]
    (job,) = sweep.glob("0_*")
    assert "quadratic_two_param" in job.name
    return job


#: the rerun command before `tbpipe rerun`, with a path relative to where it is typed
OLD_RERUN = ("--config-path", "{relative}/.hydra", "--config-name", "config")


@pytest.fixture(scope="module")
def two_reruns(saved_run, users_job, tmp_path_factory) -> tuple[Path, list[bytes], list[Path]]:
    """Two reruns started together from another directory: `tbpipe rerun RUN` of the saved
    run, and the old command (OLD_RERUN, relative to that directory), which is a rerun too,
    of the sweep job of the user's pieces. That directory, each one's stderr, and the run
    each one reran."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    relative = os.path.relpath(users_job, elsewhere)
    old = [word.format(relative=relative) for word in OLD_RERUN]
    started = [
        subprocess.Popen([TBPIPE, *args], cwd=elsewhere, stderr=subprocess.PIPE)
        for args in (["rerun", str(saved_run)], old)
    ]
    assert [p.wait(timeout=300) for p in started] == [0, 0]
    return elsewhere, [p.stderr.read() for p in started], [saved_run, users_job]


def rerun_of(elsewhere: Path, source: Path) -> Path:
    """The one run dir under `elsewhere` that reran `source` (its run.json says so)."""
    (found,) = [
        new
        for new in (elsewhere / "outputs").glob("*/*")
        if json.loads((new / "run.json").read_text())["command"]
        == f"tbpipe rerun {source.resolve()}"
    ]
    return found


@pytest.mark.slow
def test_a_rerun_from_another_directory_gives_the_same_numbers(saved_run, two_reruns):
    """Of tbpipe's own MLP, and of a sweep job of the user's own model, data and sink."""
    rerun = json.loads((saved_run / "run.json").read_text())["rerun"]
    assert rerun == f"tbpipe rerun {saved_run.resolve()}"
    elsewhere, stderrs, sources = two_reruns
    assert stderrs == [b"", b""]
    assert len(list((elsewhere / "outputs").glob("*/*"))) == 2
    for source in sources:
        new = rerun_of(elsewhere, source)  # its command: `tbpipe rerun SOURCE`
        assert scalars(new) == scalars(source)
        info = json.loads((new / "run.json").read_text())
        assert info["config"] == json.loads((source / "run.json").read_text())["config"]
        # named `<time>_rerun`: the override that lays the saved values over names nothing
        assert new.name.endswith("_rerun") and "saved_run" not in new.name


@pytest.mark.slow
def test_two_reruns_started_together_get_two_dirs(two_reruns):
    elsewhere, stderrs, _ = two_reruns
    assert stderrs == [b"", b""]
    dirs = list((elsewhere / "outputs").glob("*/*"))
    assert len(dirs) == 2
    for run_dir in dirs:  # one event file per writer: nobody wrote into another's dir
        assert len(list((run_dir / "train").iterdir())) == 1


@pytest.mark.slow
def test_a_rerun_takes_checked_overrides_and_name_and_warns_of_other_versions(
    saved_run, two_reruns, users_job, tmp_path
):
    """A rerun of a rerun (of `saved_run`), with an override and `name=`, of a copy that
    says it ran with another TensorFlow: the saved model, the new step count, a
    `<time>_<name>` folder, a warning."""
    typo = run_tbpipe("rerun", str(saved_run), "optimizer.lr=1", cwd=tmp_path, check=False)
    assert typo.returncode == 2 and list(tmp_path.iterdir()) == []
    assert typo.stderr.splitlines() == [
        "tbpipe: unknown key optimizer.lr=1: did you mean optimizer.learning_rate? "
        "(optimizer has learning_rate)"
    ]
    saved = tmp_path / "saved"
    shutil.copytree(rerun_of(two_reruns[0], saved_run), saved)
    info = json.loads((saved / "run.json").read_text())
    ours = info["versions"]["tensorflow"]
    info["versions"]["tensorflow"] = "2.0.0"  # made with another TensorFlow
    (saved / "run.json").write_text(json.dumps(info))
    longer = run_tbpipe("rerun", str(saved), "trainer.steps=50", "name=again", cwd=tmp_path)
    assert longer.stderr == (
        f"tbpipe: warning: {saved} ran with tensorflow 2.0.0, this is tensorflow {ours}; "
        "the rerun's numbers could differ from the saved run's\n"
    )
    assert "outputs/" in longer.stdout and "_again |" in longer.stdout
    (rerun_dir,) = (tmp_path / "outputs").glob("*/*")
    assert rerun_dir.name.endswith("_again")
    metrics = json.loads((rerun_dir / "metrics.json").read_text())
    assert metrics["steps"] == 50 and metrics["status"] == "completed"
    # the saved run's own overrides kept, the one given anew in place of its old value
    overrides = ["model=mlp", "sinks=[scalars]", "trainer.steps=50", "name=again"]
    recorded = json.loads((rerun_dir / "run.json").read_text())
    assert recorded["overrides"] == overrides
    assert list(OmegaConf.load(rerun_dir / ".hydra" / "overrides.yaml")) == overrides
    assert list(OmegaConf.load(rerun_dir / ".hydra" / "hydra.yaml").hydra.overrides.task) == (
        overrides
    )
    config, saved_config = recorded["config"], info["config"]
    assert config["model"] == saved_config["model"] and config["model"]["hidden"] > 1  # the MLP
    nothing = run_tbpipe("rerun", str(tmp_path), cwd=tmp_path, check=False)
    assert nothing.returncode == 2 and len(nothing.stderr.splitlines()) == 1
    assert "holds no saved run" in nothing.stderr
    refused = run_tbpipe("rerun", str(users_job.parent), cwd=tmp_path, check=False)
    assert refused.returncode == 2 and "is a sweep; rerun one of its jobs" in refused.stderr


@pytest.fixture(scope="module")
def own_config_sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A sweep from a config dir of one's own given by a relative `--config-path`, into a
    sweep dir named with `[`, `,`, `=` and a space, whose second job asks for more inter-op
    threads than its process already runs with: the folder it ran from, what it printed."""
    where = tmp_path_factory.mktemp("own")
    shutil.copytree(ROOT / "conf", where / "myconf")
    own = run_tbpipe(
        "-m", "--config-path", "myconf", "trainer.inter_op_threads=1,2,1", "trainer.steps=5",
        "sinks=[scalars]", "hydra.sweep.dir='runs/k=2, [x]'", cwd=where,
    )  # fmt: skip
    return where, own


@pytest.mark.slow
def test_the_old_rerun_command_and_a_relative_config_path_work(
    users_job, two_reruns, own_config_sweep
):
    """`--config-path RUN/.hydra --config-name config` (relative, too) is a rerun now: the
    second of `two_reruns`, whose dir holds the job's numbers (tested above)."""
    elsewhere, stderrs, _ = two_reruns
    assert not os.path.isabs(OLD_RERUN[1].format(relative=os.path.relpath(users_job, elsewhere)))
    assert stderrs[1] == b""
    assert rerun_of(elsewhere, users_job).is_dir()  # what the old one ran: `tbpipe rerun JOB`
    where, own = own_config_sweep  # a config dir of one's own, relative
    jobs = sorted((where / "runs" / "k=2, [x]").glob("*_inter_op_threads-*"))
    assert len(jobs) == 3 and all((job / "metrics.json").exists() for job in jobs)
    assert "ERROR" not in own.stderr and "Traceback" not in own.stderr


@pytest.mark.slow
def test_the_printed_tensorboard_command_pastes_into_a_shell(own_config_sweep):
    """tbpipe's own folder names need no quoting; a folder the user names with `[`, `,`,
    `=` and a space does, and the printed command quotes it, so a shell hands TensorBoard
    the folder as it is."""
    where, own = own_config_sweep
    (line,) = [line for line in own.stdout.splitlines() if "/0_inter_op_threads-1 |" in line]
    command = line.rsplit(" | ", 1)[1]
    words = shlex.split(command)
    assert words[:2] == ["tensorboard", "--logdir"] and (where / words[2]).is_dir()
    assert words[2] == "runs/k=2, [x]/0_inter_op_threads-1" and "'" in command
    shell = subprocess.run(["bash", "-O", "failglob", "-c", f"ls -d {command.split(' ', 2)[2]}"],
                           cwd=where, capture_output=True, text=True)  # fmt: skip
    assert shell.returncode == 0 and shell.stdout.strip() == words[2]


@pytest.mark.slow
def test_inter_op_threads_that_cannot_apply_say_so_once(own_config_sweep):
    """The sweep's only line on stderr (the second job's; the third asks for what runs)."""
    _, own = own_config_sweep
    assert own.stderr.splitlines() == [
        "tbpipe: trainer.inter_op_threads=2 not applied: TensorFlow already runs in this process "
        "with 1 inter-op thread (fixed when it ran its first op, e.g. an earlier job of a sweep "
        "or a notebook cell); it applies in a new process"
    ]


# -- what a run leaves, read back light --------------------------------------------------
@pytest.fixture(scope="module")
def small_sweep(basic) -> Path:
    """The suite's shared short sweep (conftest's LAUNCHER_SWEEP, two jobs of 50 steps, by
    the basic launcher, made once for every file that reads it): only read here."""
    return basic[0]


@pytest.mark.slow
def test_report_lists_the_runs_that_hold_data_without_loading_tensorflow(small_sweep, tmp_path):
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipeline", "report", str(small_sweep)],
        capture_output=True, text=True, cwd=tmp_path, check=True,
    )  # fmt: skip
    imported = [line.split("|")[-1].strip() for line in result.stderr.splitlines()]
    assert "tensorboard.backend.event_processing.plugin_event_accumulator" in imported
    assert not [name for name in imported if name.split(".")[0] in ("tensorflow", "keras")]
    assert [line for line in result.stderr.splitlines() if not line.startswith("import time")] == []
    names = [line.split()[0] for line in result.stdout.splitlines()[2:]]
    jobs = sorted(p.name for p in small_sweep.iterdir() if p.is_dir())
    assert names == [f"{job}/{writer}" for job in jobs for writer in ("test", "train")]


@pytest.mark.slow
def test_report_into_a_closed_pipe_ends_quietly(small_sweep, tmp_path):
    reader_gone = subprocess.Popen(
        [TBPIPE, "report", str(small_sweep), "--histograms"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    reader_gone.stdout.close()  # like `| head` that has read what it wanted
    assert reader_gone.wait(timeout=120) == 141  # 128 + SIGPIPE, as the shell counts it
    assert reader_gone.stderr.read() == b""


@pytest.mark.slow
def test_a_job_logs_what_it_did(small_sweep):
    for job in (p for p in small_sweep.iterdir() if p.is_dir()):
        lines = (job / "tbpipe.log").read_text().splitlines()
        assert len(lines) == 3, lines
        assert "started: tbpipe data.noise_std=" in lines[0]
        assert "ended: completed after 50 of 50 steps" in lines[1]
        assert "][tbpipe][INFO] - k = " in lines[2] and f"logs: sweep/{job.name} |" in lines[2]


@pytest.mark.slow
def test_an_interrupted_run_says_how_long_it_trained(tmp_path):
    import signal
    import time

    run = subprocess.Popen(
        [TBPIPE, "trainer.steps=100000000", "trainer.chunk=200", "sinks=[scalars]",
         "trainer.progress=false", "hydra.run.dir=run"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        events = tmp_path / "run" / "train"
        deadline = time.monotonic() + 180
        while not list(events.glob("*tfevents*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # training for a while
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
    finally:  # a run of 10^8 steps is never left behind, whatever failed above
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 130 and len(err.splitlines()) == 1, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["steps"] > 0
    assert 1.0 < metrics["train_seconds"] <= metrics["seconds"]
    log = (tmp_path / "run" / "tbpipe.log").read_text()
    assert "ended: interrupted after" in log


def test_the_extending_commands_run_from_the_users_folder_without_an_error_line(
    quadratic_commands,
):
    commands = extending_commands()
    assert len(commands) == 5 and all(c[0] == "tbpipe" for c in commands)
    _, ran = quadratic_commands
    assert [c["words"] for c in ran] == commands
    for command in ran:
        assert command["stderr"] == "", (command["words"], command["stderr"])
        assert (
            Path(command["dir"]) / ("multirun.yaml" if "-m" in command["words"] else "metrics.json")
        ).exists()


def test_the_c_crc_agrees_with_tensorboards_own():
    """compat.masked_crc32c stands in for the stub's Python CRC: same answer on any bytes."""
    import numpy as np
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import crc32c, u32

    from pipeline.compat import masked_crc32c

    for size in (0, 1, 8, 1000, 65537):
        data = np.random.default_rng(size).bytes(size)
        x = u32(crc32c(data))
        assert masked_crc32c(data) == u32(((x >> 15) | u32(x << 17)) + 0xA282EAD8)

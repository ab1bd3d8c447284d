"""The user's side: `api.read_run` quiet and without TensorFlow, `tbpipe --help` listing
each group's keys, its page kept until a config file changes. (A rerun's folder name and
its warning of other versions, and the printed TensorBoard command, are tested with the
other reruns and runs of tests/test_front_door.py.)
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys

import pytest

from tests.conftest import TBPIPE, run_tbpipe


@pytest.mark.slow
def test_read_run_is_quiet_and_loads_no_tensorflow(default_run):
    script = (
        "import sys, json\n"
        "from pipeline import api\n"
        f"run = api.read_run({str(default_run)!r})\n"
        "print(json.dumps({'tf': 'tensorflow' in sys.modules, 'scalars': run['scalars']}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)  # fmt: skip
    assert result.stderr == ""
    read = json.loads(result.stdout)
    assert read["tf"] is False
    from pipeline.readback.runs import find_runs, load_run  # TensorBoard's own reader

    for name, folder in find_runs(default_run):
        run = load_run(folder)
        for tag in run.tags("scalars"):
            key = tag if name == "." else f"{name}/{tag}"
            assert [tuple(point) for point in read["scalars"][key]] == run.scalars(tag), key


@pytest.mark.slow
def test_help_lists_each_groups_main_keys(tmp_path):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    page = subprocess.run([TBPIPE, "--help", "model=mlp"], capture_output=True, text=True,
                          cwd=tmp_path, check=True)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    assert page.stderr == "" and list(tmp_path.iterdir()) == []
    keys = {
        line.split()[0]: line.split(maxsplit=1)[1]
        for line in page.stdout.split("Main keys")[1].split("Examples")[0].splitlines()[1:]
        if line.startswith("  ") and not line.startswith("   ")
    }
    assert keys["KEY"] == "seed, name, objective"
    assert "noise_std" in keys["data.KEY"] and "learning_rate" in keys["optimizer.KEY"]
    assert keys["model.KEY"].startswith("hidden")  # model=mlp's keys, not linear's
    assert (
        keys["trainer.KEY"].startswith("steps, batch_size") and "every" in keys["sinks.scalars.KEY"]
    )
    assert cpu < 2.5  # Hydra's own help took 6.6 s (docs/PERFORMANCE.md)


def _help(*args: str, cwd, cache) -> tuple[str, set[str]]:
    """`tbpipe <args>` (python -m pipeline) with its help cache in `cache`: the page, and
    the modules the command imported (from -X importtime)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipeline", *args],
        capture_output=True, text=True, cwd=cwd, check=True,
        env={**os.environ, "TBPIPE_CACHE_DIR": str(cache)},
    )  # fmt: skip
    rows = result.stderr.splitlines()
    assert all(row.startswith("import time:") for row in rows), result.stderr  # no warning
    return result.stdout, {row.split("|")[-1].strip() for row in rows}


HELP_YAML = """# a page of the user's own, made of tbpipe's parts
template: |-
  ${tbpipe.version:}
  page one
  ${tbpipe.choices:}
"""


@pytest.mark.slow
def test_help_is_shown_again_without_hydra_until_a_conf_file_changes(tmp_path):
    (tmp_path / "work").mkdir()
    conf = tmp_path / "work" / "conf" / "hydra" / "help"
    conf.mkdir(parents=True)
    (conf / "mine.yaml").write_text(HELP_YAML)
    args = ("--help", "--config-dir", "conf", "hydra/help=mine")
    cache = tmp_path / "cache"
    made, imported = _help(*args, cwd=tmp_path / "work", cache=cache)
    assert "hydra" in imported and "page one" in made
    kept, imported = _help(*args, cwd=tmp_path / "work", cache=cache)
    assert kept == made and "hydra" not in imported and "omegaconf" not in imported
    (entry,) = (cache / "help").glob("*.json")
    # the help key edited in place, the file's size unchanged: the page is made again
    (conf / "mine.yaml").write_text(HELP_YAML.replace("page one", "page two"))
    again, imported = _help(*args, cwd=tmp_path / "work", cache=cache)
    assert again == made.replace("page one", "page two") and "hydra" in imported
    # a group's option added: listed at once
    (tmp_path / "work" / "conf" / "model").mkdir()
    (tmp_path / "work" / "conf" / "model" / "tiny.yaml").write_text("k_init: 0.0  # start\n")
    listed, _ = _help(*args, cwd=tmp_path / "work", cache=cache)
    assert "keras_mlp, linear (default), mlp, tiny" in listed
    # a page edited in the cache file is not shown, but made again
    _help(*args, cwd=tmp_path / "work", cache=cache)
    text = entry.read_text()
    assert "page two" in text
    entry.write_text(text.replace("page two", "page six"))
    shown, imported = _help(*args, cwd=tmp_path / "work", cache=cache)
    assert shown == listed and "hydra" in imported


@pytest.mark.slow
def test_a_help_page_that_reads_the_environment_is_made_each_time(tmp_path):
    conf = tmp_path / "conf" / "hydra" / "help"
    conf.mkdir(parents=True)
    (conf / "env.yaml").write_text("template: ${oc.env:TBPIPE_WORD}  # the user's own\n")
    args = ("--help", "--config-dir", "conf", "hydra/help=env")
    for word in ("one", "two"):
        page = run_tbpipe(*args, cwd=tmp_path, env={"TBPIPE_WORD": word})
        assert page.stdout == f"{word}\n" and page.stderr == ""
    # a cache that cannot be written: the page all the same, nothing said
    (tmp_path / "blocker").write_text("")
    env = {"TBPIPE_CACHE_DIR": str(tmp_path / "blocker")}
    for _ in range(2):
        page = run_tbpipe("--help", "model=mlp", cwd=tmp_path, env=env)
        assert "Main keys" in page.stdout and page.stderr == ""


def test_the_help_cache_sees_a_change_behind_a_link_and_survives_a_loop(tmp_path):
    from pipeline.check.help_cache import fingerprint

    (tmp_path / "shared" / "model").mkdir(parents=True)
    (tmp_path / "shared" / "model" / "tiny.yaml").write_text("k_init: 0.0\n")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "model").symlink_to(tmp_path / "shared" / "model")
    (tmp_path / "conf" / "loop").symlink_to(tmp_path / "conf")  # walked once
    before, _ = fingerprint([str(tmp_path / "conf")])
    (tmp_path / "shared" / "model" / "tiny.yaml").write_text("k_init: 1.25\n")  # size too
    after, _ = fingerprint([str(tmp_path / "conf")])
    assert before is not None and after is not None and before != after


@pytest.mark.slow
def test_help_piped_into_head_ends_quietly(tmp_path):
    for _ in range(2):  # the page made, then the page kept
        command = f"{shlex.quote(str(TBPIPE))} --help model=mlp | head -1"
        shown = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=tmp_path)
        assert shown.stdout.startswith("tbpipe ") and shown.stderr == ""

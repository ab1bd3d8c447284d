"""What a tbpipe process loads before it does its job: only what that command needs.

Every command is a new process: a bad input, `--help`, `tbpipe status` and `tbpipe report`
load no TensorFlow, Keras or matplotlib; status and report load no Hydra either (they read
files a run left); a run's summaries load TensorBoard's stub without its S3 client. The
modules are read through `python -X importtime`, as a user's shell would start the command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: what a command that trains nothing must not load (top-level package names)
TRAINING_ONLY = {"tensorflow", "keras", "matplotlib"}


def _started(*args: str, cwd: Path, env: dict | None = None) -> tuple[int, list[str], set[str]]:
    """`python -m pipeline <args>`: exit code, what it said (stdout and stderr), the modules it
    loaded (`importlib.import_module` loads are not listed: a subcommand's own module)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pipeline", *args],
        capture_output=True, text=True, cwd=cwd, env={**os.environ, **(env or {})},
    )  # fmt: skip
    rows = result.stderr.splitlines()
    said = [row for row in rows if not row.startswith("import time:")]
    said = [*result.stdout.splitlines(), *said]
    loaded = {row.split("|")[-1].strip() for row in rows if row.startswith("import time:")}
    return result.returncode, said, loaded


def _packages(loaded: set[str]) -> set[str]:
    return {name.split(".")[0] for name in loaded}


@pytest.mark.slow  # starts new processes: in `make test`, not `make test-fast`
def test_a_bad_input_and_help_load_nothing_that_trains(tmp_path):
    code, said, loaded = _started("trainer.steps=-1", cwd=tmp_path)
    assert code == 2 and said == ["tbpipe: bad value trainer.steps=-1: must be an integer >= 1"]
    assert "hydra" in loaded and not TRAINING_ONLY & _packages(loaded)  # rows read right
    assert list(tmp_path.iterdir()) == []
    # made (nothing kept yet), then shown again from the cache
    cache = {"TBPIPE_CACHE_DIR": str(tmp_path / "cache")}
    for _ in range(2):
        code, said, loaded = _started("--help", cwd=tmp_path, env=cache)
        assert code == 0 and said[0].startswith("tbpipe") and "trainer.steps" in "".join(said)
        assert not TRAINING_ONLY & _packages(loaded)


@pytest.mark.slow
def test_status_and_report_of_a_run_load_no_hydra_nor_tensorflow(default_run, tmp_path):
    """They go to their module before the run's machinery (Hydra, the checks) is loaded."""
    code, said, loaded = _started("status", str(default_run), cwd=tmp_path)
    assert code == 0 and said[-1] == "1 job: 1 completed" and "yaml" in loaded
    assert not ({"hydra"} | TRAINING_ONLY) & _packages(loaded)
    code, said, loaded = _started("report", str(default_run), cwd=tmp_path)
    assert code == 0 and [row.split()[:2] for row in said[2:]] == [
        ["test", "completed"],
        ["train", "completed"],
    ]
    assert "tensorboard.compat.tensorflow_stub.io.gfile" in loaded  # the rows are read right
    assert not ({"hydra"} | TRAINING_ONLY) & _packages(loaded)


@pytest.mark.slow
def test_summaries_load_tensorboards_stub_without_s3_which_still_imports_afterwards():
    """compat.summaries_without_s3 (a console-script run calls it before its first job):
    TensorBoard's summary helpers then load no boto3/botocore; both still import for whoever
    asks. Fails when TensorBoard's stub stops treating a missing botocore as no S3."""
    script = (
        "import sys\n"
        "from pipeline.compat import summaries_without_s3\n"
        "summaries_without_s3()\n"
        "from tensorboard.plugins.histogram import summary\n"
        "from tensorboard.util import tensor_util\n"
        "from tensorboard.compat.tensorflow_stub.io import gfile\n"
        "assert not gfile.S3_ENABLED and not {'boto3', 'botocore'} & set(sys.modules)\n"
        "import boto3\n"
        "print(boto3.__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout == "boto3\n", result.stderr

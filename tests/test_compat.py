"""Every private API tbpipe touches (pipeline/compat.py) still exists in the installed versions.

When an upgrade removes one, the failing test names the package, its version and the
function in pipeline/compat.py to mend, instead of a deep failure somewhere in a run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from enum import Enum
from importlib.metadata import version
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
from omegaconf import MISSING

from pipeline import compat


def broke(package: str, what: str) -> str:
    return f"{package} {version(package)} changed {what}: mend pipeline/compat.py"


def test_hydra_argument_parser_reads_flags_and_overrides():
    try:
        args = compat.hydra_args_parser().parse_args(["-m", "--config-dir", "d", "a=1"])
    except Exception as error:  # noqa: BLE001  any failure here is the upgrade's
        pytest.fail(f"{broke('hydra-core', 'hydra._internal.utils.get_args_parser')}: {error}")
    assert (args.multirun, args.config_dir, args.overrides) == (True, "d", ["a=1"]), broke(
        "hydra-core", "the parser's flags"
    )


def test_basic_sweeper_splits_a_sweep_into_jobs():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(["a=1,2", "b=x"])
    try:
        batches = compat.split_sweep(parsed)
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"{broke('hydra-core', 'BasicSweeper.split_arguments')}: {error}")
    jobs = [sorted(job) for batch in batches for job in batch]
    assert jobs == [["a=1", "b=x"], ["a=2", "b=x"]], broke("hydra-core", "BasicSweeper jobs")
    batches = compat.split_sweep(OverridesParser.create().parse_overrides(["a=1,2,3"]), 2)
    assert [len(batch) for batch in batches] == [2, 1], broke("hydra-core", "max_batch_size")
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    name = f"{BasicSweeper.__module__}.{BasicSweeper.__name__}"
    assert name == compat.BASIC_SWEEPER, broke("hydra-core", "the basic sweeper's path")
    name = f"{BasicLauncher.__module__}.{BasicLauncher.__name__}"
    assert name == compat.BASIC_LAUNCHER, broke("hydra-core", "the basic launcher's path")


def test_override_dirname_is_what_hydra_names_a_job_with():
    from hydra.types import RunMode

    from pipeline.check.compose import tbpipe_configs

    overrides = ["seed=1", "data.noise_std=0.5", "trainer.progress=false", "hydra.verbose=true"]
    try:
        with tbpipe_configs():
            cfg = compat.compose_with_hydra("config", overrides, RunMode.RUN)
        ours = compat.overrides_dirname(overrides, cfg)
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"{broke('hydra-core', 'config_loader_impl.get_overrides_dirname')}: {error}")
    # Hydra's own, set while composing: the preflight must see the same job dir names
    assert ours == cfg.hydra.job.override_dirname == "data.noise_std=0.5,seed=1", broke(
        "hydra-core", "override_dirname"
    )


def test_compose_with_the_hydra_node_and_the_config_loader():
    from hydra.types import RunMode

    from pipeline.check.compose import tbpipe_configs

    try:
        with tbpipe_configs():
            cfg = compat.compose_with_hydra("config", ["seed=3"], RunMode.MULTIRUN)
            options = compat.hydra_config_loader().get_group_options("model")
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"{broke('hydra-core', 'Hydra.compose_config / config_loader')}: {error}")
    assert cfg.seed == 3 and "dir" in cfg.hydra.sweep, broke("hydra-core", "compose_config")
    assert {"linear", "mlp"} <= set(options), broke("hydra-core", "get_group_options")


def test_a_summary_writer_has_a_resource_handle_a_loop_writer_can_write_to(tmp_path):
    from pipeline.tensorflow_quiet import import_tensorflow

    tf = import_tensorflow()
    writer = tf.summary.create_file_writer(str(tmp_path))
    try:
        handle = compat.writer_handle(writer)
    except AttributeError as error:
        pytest.fail(f"{broke('tensorflow', 'SummaryWriter._resource')}: {error}")
    with compat.writer_from_handle(handle).as_default(step=1):
        assert tf.summary.scalar("x", 1.0), broke("tensorflow", "writing through _resource")
    writer.close()
    from pipeline.readback.runs import load_run

    assert load_run(tmp_path).scalars("x") == [(1, 1.0)], broke("tensorflow", "_resource")


def test_tensorboards_histogram_buckets_are_still_there():
    from pipeline.tensorflow_quiet import import_tensorflow

    tf = import_tensorflow()
    try:
        buckets = compat.tensorboard_histogram_buckets(tf.constant([0.0, 1.0]), 2).numpy()
    except (ImportError, AttributeError) as error:
        pytest.fail(f"{broke('tensorboard', 'histogram.summary_v2._buckets')}: {error}")
    np.testing.assert_array_equal(buckets[:, 2], [1.0, 1.0])


#: one fresh process loads TensorFlow (with one inter-op thread), then Keras, then
#: scikit-learn and pyplot, and says at each point what was loaded (a JSON line): the
#: checks below read it
FRESH_IMPORTS = """
import json, os, sys
from pipeline.tensorflow_quiet import import_tensorflow
seen = {}
tf = import_tensorflow(inter_op_threads=1)
seen["after tensorflow"] = ["keras" in sys.modules, "keras.src.optimizers" in sys.modules]
seen["inter-op threads"] = [
    tf.config.threading.get_inter_op_parallelism_threads(),
    os.environ.get("TF_NUM_INTEROP_THREADS"),
]
import keras
from keras.src.wrappers import fixes, sklearn_wrapper, utils
from keras.src.visualization import plot_bounding_box_gallery, plot_image_gallery
seen["after keras"] = {
    "sklearn loaded": "sklearn" in sys.modules,
    "wrappers' sklearn": [m.sklearn is None for m in (fixes, utils, sklearn_wrapper)],
    "pyplot loaded": "matplotlib.pyplot" in sys.modules,
    "visualization's plt, patches": [
        plot_image_gallery.plt is None, plot_bounding_box_gallery.patches is None
    ],
}
import sklearn.base
import matplotlib.pyplot
seen["then imported"] = [sklearn.__version__, matplotlib.__version__]
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def fresh_imports() -> dict:
    """What a new Python process loads with tbpipe's TensorFlow, then Keras (FRESH_IMPORTS)."""
    result = subprocess.run([sys.executable, "-c", FRESH_IMPORTS], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.slow  # starts a new process: in `make test`, not `make test-fast`
def test_tensorflow_imports_without_its_eager_keras_load(fresh_imports):
    assert fresh_imports["after tensorflow"] == [False, False], broke(
        "tensorflow", "what `import tensorflow` loads (keras.src.optimizers, pipeline/compat.py)"
    )


@pytest.mark.slow  # starts a new process: in `make test`, not `make test-fast`
def test_inter_op_threads_apply_without_a_variable_for_the_processes_it_starts(fresh_imports):
    """Set through tf.config: TF_NUM_INTEROP_THREADS in os.environ would reach every process
    a user's session starts later, where it reads as a launcher's setting."""
    assert fresh_imports["inter-op threads"] == [1, None]


@pytest.mark.slow  # starts a new process: in `make test`, not `make test-fast`
def test_exit_without_teardown_runs_atexit_handlers_and_flushes():
    code = (
        "import atexit, sys\n"
        "from pipeline.compat import exit_without_teardown\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "sys.stdout.write('buffered ')\n"
        "exit_without_teardown(7)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (out.returncode, out.stdout) == (7, "buffered atexit ran\n"), broke(
        "python", f"atexit._run_exitfuncs ({sys.version.split()[0]})"
    )


def test_a_config_stored_in_the_block_reads_as_one_stored_at_once():
    from dataclasses import dataclass, field

    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    @dataclass
    class Cluster:
        name: str = "c"
        workers: int = 2
        tags: list = field(default_factory=lambda: ["a", "b"])

    store, original = ConfigStore.instance(), ConfigStore.store
    try:
        store.store(name="now", node=Cluster(workers=3), group="tbpipe_compat_test/launcher")
        with compat.structured_configs_made_when_read():
            store.store(name="later", node=Cluster(workers=3), group="tbpipe_compat_test/launcher")
            listed = store.list("tbpipe_compat_test/launcher")
        now = store.load("tbpipe_compat_test/launcher/now.yaml")
        later = store.load("tbpipe_compat_test/launcher/later.yaml")
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"{broke('hydra-core', 'ConfigStore.store / ConfigNode')}: {error}")
    finally:
        store.repo.pop("tbpipe_compat_test", None)
    assert ConfigStore.store is original, "the block leaves ConfigStore.store as it found it"
    assert listed == ["later.yaml", "now.yaml"], broke("hydra-core", "ConfigStore.list")
    assert (later.name, later.group, later.package) == (now.name.replace("now", "later"),
                                                        now.group, now.package)  # fmt: skip
    assert OmegaConf.to_yaml(later.node) == OmegaConf.to_yaml(now.node)
    assert OmegaConf.get_type(later.node) is OmegaConf.get_type(now.node) is Cluster


def test_the_fast_yaml_loader_reads_saved_configs_as_omegaconf_does(tmp_path):
    import yaml
    from omegaconf import OmegaConf

    text = "lr: 1e-3\nsteps: 10\nname: 2026-11-30\nkeep: ${seed}\nitems: [a, 1.5]\n"
    (tmp_path / "c.yaml").write_text(text)
    try:
        fast = yaml.load(text, Loader=compat.fast_yaml_loader())  # noqa: S506
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"{broke('omegaconf', 'omegaconf._utils.get_yaml_loader')}: {error}")
    slow = OmegaConf.to_container(OmegaConf.load(tmp_path / "c.yaml"))
    assert fast == slow, broke("omegaconf", "how its YAML loader reads scalars")


def test_a_hydra_override_added_to_a_sweeps_master_config_reaches_its_jobs():
    """pipeline.sweeps.naming keeps a sweep's constants out of job names this way."""
    from hydra.types import RunMode

    from pipeline.check.compose import tbpipe_configs

    override = "hydra.job.config.override_dirname.exclude_keys=['seed']"
    try:
        with tbpipe_configs():
            master = compat.compose_with_hydra("config", ["seed=0,1"], RunMode.MULTIRUN)
            compat.add_sweep_hydra_override(master, override)
            job = compat.hydra_config_loader().load_sweep_config(master, ["seed=1"])
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"{broke('hydra-core', 'hydra.overrides.hydra / load_sweep_config')}: {error}")
    assert list(job.hydra.job.config.override_dirname.exclude_keys) == ["seed"], broke(
        "hydra-core", "how a sweep job's config is composed from the master config"
    )


def test_the_global_seed_is_set_without_emptying_tensorflows_kernel_caches():
    import tensorflow as tf
    from tensorflow.python.eager import context

    try:
        compat.set_global_seed_keeping_kernels(987_654)
        assert context.global_seed() == 987_654, broke("tensorflow", "the eager context's _seed")
        drawn = tf.random.normal([3]).numpy().tolist()
        tf.random.set_seed(987_654)
        assert drawn == tf.random.normal([3]).numpy().tolist(), broke(
            "tensorflow", "how op seeds are drawn from the eager context's _rng"
        )
    finally:
        tf.random.set_seed(0)


def test_tensorboards_event_writer_takes_the_c_crc_and_writes_the_same_bytes(tmp_path):
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow
    from tensorboard.summary.writer import record_writer
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    from pipeline.readback.runs import check_event_file

    assert hasattr(record_writer, "masked_crc32c"), broke(
        "tensorboard", "record_writer.masked_crc32c (write_events_with_c_crc)"
    )
    for data in (b"", b"x", bytes(range(256)) * 9):
        assert compat.masked_crc32c(data) == pywrap_tensorflow.masked_crc32c(data)
    compat.write_events_with_c_crc()
    assert record_writer.masked_crc32c is compat.masked_crc32c
    writer = EventFileWriter(str(tmp_path))
    writer.add_event(event_pb2.Event(step=3, file_version="brain.Event:2"))
    writer.close()
    (written,) = tmp_path.glob("*tfevents*")
    assert check_event_file(written) is None


def test_config_yaml_is_omegaconfs_text():
    """compat.config_yaml (the TEXT tab's config) writes what OmegaConf.to_yaml writes."""
    import enum

    import yaml
    from hydra import compose
    from omegaconf import OmegaConf

    from pipeline.check.compose import tbpipe_configs

    class Colour(enum.Enum):
        RED = 1

    tricky = {
        "looks_like": ["true", "null", "1e-3", "0x1F", "~", "", "2026-11-30", "yes", "1_000"],
        "text": "line one\nline two: with a colon", "unicode": "k ≈ 2 · µ",
        "numbers": [1, 1.5, -0.0, float("inf"), 1e-300], "empty": {}, "none": None,
        "nested": {"deep": [{"a": [1, {"b": "c"}]}]}, "key with spaces": 1, "true": "yes",
    }  # fmt: skip
    with tbpipe_configs():
        configs = [compose(config_name="config", overrides=o) for o in ([], ["model=mlp"])]
    for container in [OmegaConf.to_container(c, resolve=True) for c in configs] + [tricky]:
        yaml.dump(container, Dumper=compat._fast_yaml_dumper())  # the fast way takes it
        assert compat.config_yaml(container) == OmegaConf.to_yaml(container), broke(
            "omegaconf", "omegaconf._utils.get_omega_conf_dumper"
        )
    with_enum = {"colour": Colour.RED}  # PyYAML cannot write it: OmegaConf's path does
    assert compat.config_yaml(with_enum) == OmegaConf.to_yaml(with_enum) == "colour: RED\n"


def test_the_data_server_takes_the_flags_tbpipe_gives_it(tmp_path):
    from pipeline.readback.data_server import KEEP, installed_server

    binary = installed_server()
    assert binary is not None, broke("tensorboard-data-server", "server_binary()")
    shown = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    command = compat.data_server_command(binary, tmp_path, tmp_path / "port", KEEP)
    for flag in [word for word in command if word.startswith("--")]:
        assert flag in shown, broke("tensorboard-data-server", f"the flag {flag}")


def test_tensorboards_data_server_client_lists_runs_and_last_scalars():
    import grpc

    try:
        with grpc.insecure_channel("127.0.0.1:1") as channel:
            client = compat.data_server_client("127.0.0.1:1", channel)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"{broke('tensorboard', 'tensorboard.data.grpc_provider')}: {error}")
    for method in ("list_runs", "read_last_scalars"):
        assert callable(getattr(client, method, None)), broke("tensorboard", f"{method}")


def _private_touches(path) -> list[str]:
    """`from pkg._private import x`, `from pkg import _x`, `module._x` of an imported module,
    and a class of another package reached by its private path, in one file of tbpipe's."""
    import ast

    tree = ast.parse(path.read_text())
    modules, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.split(".")[0] in ("pipeline", "hydra_plugins", "conf", "__future__"):
                continue
            if any(part.startswith("_") for part in node.module.split(".")):
                found.append(f"{path}:{node.lineno} from {node.module}")
            modules |= {alias.asname or alias.name for alias in node.names}
            found += [
                f"{path}:{node.lineno} {alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    for node in ast.walk(tree):
        private = isinstance(node, ast.Attribute) and node.attr.startswith("_")
        name = getattr(getattr(node, "value", None), "id", None)
        if private and name in modules and not node.attr.endswith("_"):
            found.append(f"{path}:{node.lineno} {ast.unparse(node)}")
        text = node.value if isinstance(node, ast.Constant) else None
        if isinstance(text, str) and "._internal" in text:
            found.append(f"{path}:{node.lineno} {text!r}")
    return found


def test_group_options_name_the_folders_they_are_read_from(tmp_path):
    """What `tbpipe --help` keeps its page by (pipeline/check/help_cache.py)."""
    from pathlib import Path

    import hydra

    from pipeline.check.compose import searchpath_override, tbpipe_configs

    (tmp_path / "model").mkdir()
    try:
        with tbpipe_configs():
            groups = compat.GroupOptions(
                compat.hydra_config_loader(), [searchpath_override(tmp_path)]
            )
            folders = {Path(folder).resolve() for folder in groups.folders()}
    except Exception as error:  # noqa: BLE001
        pytest.fail(f"{broke('hydra-core', 'ConfigRepository.get_sources')}: {error}")
    root = Path(__file__).resolve().parents[1]
    hydra_conf = Path(hydra.__file__).parent / "conf"
    assert {root / "conf", hydra_conf, tmp_path.resolve()} <= folders, broke(
        "hydra-core", "ConfigSource.scheme / path"
    )


def test_no_private_name_of_another_package_is_touched_outside_compat():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = [
        *root.joinpath("pipeline").rglob("*.py"),
        *root.joinpath("hydra_plugins").rglob("*.py"),
    ]
    touches = [t for f in files if f.name != "compat.py" for t in _private_touches(f)]
    assert touches == [], "move these into pipeline/compat.py, with a test here"
    assert _private_touches(root / "pipeline" / "compat.py")  # the check sees a touch


@pytest.mark.slow
def test_keras_loads_without_scikit_learn_which_still_imports_afterwards(fresh_imports):
    """compat.keras_without_scikit_learn: Keras's scikit-learn wrappers (keras.src.wrappers)
    find no scikit-learn as Keras loads, so a Keras run does not pay for importing it and
    SciPy; every other import of scikit-learn works. Fails when Keras moves those modules."""
    keras = fresh_imports["after keras"]
    assert keras["sklearn loaded"] is False
    assert keras["wrappers' sklearn"] == [True, True, True]  # fixes, utils, sklearn_wrapper
    assert fresh_imports["then imported"][0]  # sklearn.base imports afterwards


@pytest.mark.slow
def test_keras_loads_without_pyplot_which_still_imports_afterwards(fresh_imports):
    """compat.keras_without_scikit_learn: Keras's plotting helpers (keras.src.visualization)
    find no matplotlib as Keras loads, so a Keras run does not pay for pyplot (tbpipe's own
    pictures import matplotlib without it, beside the loop); any other import of matplotlib
    works. Fails when Keras moves those modules."""
    keras = fresh_imports["after keras"]
    assert keras["pyplot loaded"] is False
    assert keras["visualization's plt, patches"] == [True, True]
    assert fresh_imports["then imported"][1]  # matplotlib.pyplot imports afterwards


class Colour(Enum):
    RED = 1


@dataclass
class Structured:
    colour: Colour = Colour.RED
    path: Path = Path("/tmp/somewhere")
    missing: int = MISSING
    nothing: Optional[int] = None  # noqa: UP045 (OmegaConf reads `Optional`)


def test_a_configs_container_is_read_from_its_nodes_as_omegaconf_makes_it():
    """compat.config_container: enums (keys and values) as names, paths, bytes, None,
    `???` and interpolations as stored, in nodes and as whole nodes."""
    from omegaconf import DictConfig, OmegaConf

    odd = OmegaConf.create(
        {
            "structured": Structured,
            "by_enum": {Colour.RED: [1, "${structured.colour}", None, "???"]},
            "none_node": OmegaConf.create(None),
            "missing_node": OmegaConf.create({"a": DictConfig("???")}),
            "interpolated_node": DictConfig("${structured}"),
            "list_of_lists": [[1.5, True], [], {"k": b"bytes"}],
            "empty": {},
        }
    )
    want = OmegaConf.to_container(odd, resolve=False, enum_to_str=True)
    got = compat.config_container(odd)
    assert repr(got) == repr(want), broke("omegaconf", "its nodes' stored values (_content, _val)")

"""Every place tbpipe relies on a private API of TensorFlow, TensorBoard, Hydra or Python.

Each touch is one small function here, and tests/test_compat.py checks each against the
installed versions, failing with a message that names the package and version that
broke it. Nothing else in tbpipe reaches into a `_private` name. This module imports no
TensorFlow at import time (the preflight uses its Hydra touches before TF loads).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

# -- Hydra ------------------------------------------------------------------------------
#: `_target_` of Hydra's basic sweeper and launcher, as the composed config names them
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


def hydra_args_parser():
    """Hydra's own command-line parser (flags, overrides), so tbpipe reads argv as Hydra will."""
    from hydra._internal.utils import get_args_parser

    return get_args_parser()


def split_sweep(parsed_overrides: list, batch_size: int | None = None) -> list[list[list[str]]]:
    """The jobs a basic sweep runs for these parsed overrides, in batches, as Hydra makes them
    (the preflight, `tbpipe status` and tbpipe's own sweeper all see the same jobs)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    return BasicSweeper.split_arguments(parsed_overrides, batch_size)


def compose_with_hydra(config_name: str, overrides: Sequence[str], run_mode: Any):
    """Compose `config_name` with its `hydra` node, inside an `initialize_*` block.

    Hydra's public `compose` resolves the hydra node for RUN mode only; the sweep dir,
    launcher and sweeper of a MULTIRUN come from its config loader, which is private.
    """
    from hydra.core.global_hydra import GlobalHydra

    return GlobalHydra.instance().hydra.compose_config(
        config_name, list(overrides), run_mode=run_mode, with_log_configuration=False
    )


#: the one composition of a run that Hydra's own two are served from (`compose_run_once`)
_composed_run: dict[str, Any] = {}


def compose_run_once(overrides: Sequence[str], cfg: Any) -> None:
    """Let Hydra's start of a run (`@hydra.main` with these exact `overrides`, tbpipe's own
    config) take `cfg`, the preflight's composition of the same command, instead of
    composing the same files twice more.

    Hydra composes a run twice: once in MULTIRUN mode to read `hydra.mode`, once in RUN
    mode with `hydra.mode=RUN` appended to the overrides. Each is served once from a copy
    of `cfg`, the second with exactly what that override changes (`hydra.mode` and the
    overrides Hydra records); any other call, or a second one, composes as Hydra would.
    """
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    _composed_run.update(overrides=list(overrides), cfg=cfg, served=set())
    if getattr(ConfigLoaderImpl.load_configuration, "tbpipe_reuse", False):
        return
    compose = ConfigLoaderImpl.load_configuration

    def load_configuration(self, config_name, overrides, run_mode, *args, **kwargs):
        reused = _served_composition(config_name, list(overrides), run_mode, *args, **kwargs)
        if reused is not None:
            return reused
        return compose(self, config_name, overrides, run_mode, *args, **kwargs)

    load_configuration.tbpipe_reuse = True
    ConfigLoaderImpl.load_configuration = load_configuration


def _served_composition(
    config_name: Any, overrides: list[str], run_mode: Any, from_shell: bool = True,
    validate_sweep_overrides: bool = True,
) -> Any:  # fmt: skip
    """The stored composition for one of Hydra's two calls of a run, or None."""
    import copy

    from hydra.types import RunMode
    from omegaconf import open_dict, read_write

    kept = _composed_run
    if not kept or config_name != "config" or not from_shell:
        return None
    if run_mode == RunMode.MULTIRUN and not validate_sweep_overrides:
        which, expected = "mode", kept["overrides"]
    elif run_mode == RunMode.RUN and validate_sweep_overrides:
        which, expected = "run", [*kept["overrides"], "hydra.mode=RUN"]
    else:
        return None
    if overrides != expected or which in kept["served"]:
        return None
    kept["served"].add(which)
    cfg = copy.deepcopy(kept["cfg"])
    if which == "run":
        with read_write(cfg.hydra), open_dict(cfg.hydra):
            cfg.hydra.mode = RunMode.RUN
            cfg.hydra.overrides.hydra.append("hydra.mode=RUN")
    if kept["served"] == {"mode", "run"}:
        _composed_run.clear()
    return cfg


#: distinct override lines kept parsed (a sweep's values; least recently used dropped)
OVERRIDES_PARSED = 10_000


@functools.lru_cache(maxsize=OVERRIDES_PARSED)
def parsed_override(line: str) -> Any:
    """One override parsed by Hydra's grammar (`OverridesParser.parse_overrides([line])`),
    once a process: a sweep's jobs repeat its lines (a noise level is in hundreds of jobs),
    and each job's dir name and `override_dirname` read them again. Shared: never change it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_overrides([line])[0]


def overrides_dirname(overrides: Sequence[str], cfg: Any) -> str:
    """`hydra.job.override_dirname` of a job with these overrides, as Hydra's loader sets it
    (the preflight needs it to see where each sweep job will write)."""
    from hydra._internal.config_loader_impl import get_overrides_dirname

    settings = cfg.hydra.job.config.override_dirname
    parsed = [parsed_override(line) for line in overrides]
    return get_overrides_dirname(
        overrides=[o for o in parsed if not o.is_hydra_override()],
        exclude_keys=list(settings.exclude_keys),
        item_sep=settings.item_sep,
        kv_sep=settings.kv_sep,
    )


def add_sweep_hydra_override(master_config: Any, override: str) -> None:
    """Append a Hydra override to a sweep's master config, so every job is composed with it.

    Hydra composes each job's config afresh from the master config's
    `hydra.overrides.hydra` plus the job's own overrides (`load_sweep_config`), and hands
    `Callback.on_multirun_start` the very master config object its sweeper and launcher
    go on to use (also pickled to joblib/submitit/Ray workers). Neither is documented.
    """
    from omegaconf import open_dict, read_write

    overrides = master_config.hydra.overrides
    with read_write(overrides), open_dict(overrides):
        overrides.hydra.append(override)


def hydra_config_loader() -> Any:
    """The config loader of the initialized Hydra (lists the options of a group)."""
    from hydra.core.global_hydra import GlobalHydra

    return GlobalHydra.instance().hydra.config_loader


@contextlib.contextmanager
def structured_configs_made_when_read() -> Iterator[None]:
    """Inside the block, `ConfigStore.store` keeps the node it is given and makes the
    config of it (`OmegaConf.structured`) when a composition first reads it.

    Hydra's plugin scan imports every plugin, and each stores its configs (the Ray
    launcher's AWS cluster settings among them), each made into a config at once and then
    deep-copied with Hydra's whole repository for each composition: most of the scan's
    time, for configs that `tbpipe --help` only lists by name. A config read is the one
    `OmegaConf.structured` would have made when stored.
    """
    from hydra.core.config_store import ConfigNode, ConfigStore
    from omegaconf import OmegaConf

    class ConfigMadeWhenRead(ConfigNode):
        def __init__(self, stored: ConfigNode, source: Any):
            self.name, self.group = stored.name, stored.group
            self.package, self.provider = stored.package, stored.provider
            self.source = source

        @property
        def node(self) -> Any:
            if "made" not in self.__dict__:
                self.made = OmegaConf.structured(self.source)
            return self.made

        @node.setter
        def node(self, value: Any) -> None:
            self.made = value

    store = ConfigStore.store

    def store_unmade(self, name, node, group=None, package=None, provider=None) -> None:
        store(self, name, {}, group, package, provider)
        folder = self._open(group) if group is not None else self.repo  # noqa: SLF001
        key = name if name.endswith(".yaml") else f"{name}.yaml"
        folder[key] = ConfigMadeWhenRead(folder[key], node)

    ConfigStore.store = store_unmade
    try:
        yield
    finally:
        ConfigStore.store = store


# -- OmegaConf ----------------------------------------------------------------------------
@functools.cache
def fast_yaml_loader() -> type:
    """PyYAML's C loader reading YAML as OmegaConf does (its float and timestamp rules).

    `OmegaConf.load` parses with PyYAML's pure-Python loader, many times slower than the
    C one on a large sweep's saved configs. The rules for which
    scalars are floats (`1e-3` is one for OmegaConf, a string for YAML 1.1) come from
    OmegaConf's own loader, so both read a file alike.
    """
    import yaml
    from omegaconf._utils import get_yaml_loader

    class FastOmegaConfLoader(yaml.CSafeLoader):
        yaml_implicit_resolvers = dict(get_yaml_loader().yaml_implicit_resolvers)

    return FastOmegaConfLoader


def config_yaml(container: Any) -> str:
    """`OmegaConf.to_yaml` of a plain (resolved) container, faster: PyYAML's C emitter
    with OmegaConf's own representers (strings that would read back as another type are
    quoted), so the text is the same. OmegaConf's path first builds a config from the dict
    and emits in pure Python, for every sweep job. A value PyYAML cannot represent (an Enum,
    a Path) takes OmegaConf's path, which turns it into text."""
    import yaml
    from omegaconf import OmegaConf

    try:
        return yaml.dump(
            container, default_flow_style=False, allow_unicode=True, sort_keys=False,
            Dumper=_fast_yaml_dumper(),
        )  # fmt: skip
    except yaml.YAMLError:
        return OmegaConf.to_yaml(container)


@functools.cache
def _fast_yaml_dumper() -> type:
    import yaml
    from omegaconf._utils import get_omega_conf_dumper

    class FastOmegaConfDumper(yaml.CSafeDumper):
        pass  # PyYAML's safe types, with OmegaConf's rule for strings

    FastOmegaConfDumper.add_representer(str, get_omega_conf_dumper().yaml_representers[str])
    return FastOmegaConfDumper


# -- TensorBoard ----------------------------------------------------------------------------
#: the module whose presence makes TensorBoard choose its TensorFlow-free stub
TENSORBOARD_NO_TENSORFLOW = "tensorboard.compat.notf"


def read_events_without_tensorflow() -> bool:
    """Make TensorBoard's reader use its TensorFlow-free stub in this process.

    TensorBoard resolves `tensorboard.compat.tf` once per process, to TensorFlow when it is
    installed, unless `tensorboard.compat.notf` imports (the marker of its no-TF build).
    Importing TensorFlow costs seconds and ~0.5 GB, more than reading a 100-job sweep.
    Only for a process that trains nothing afterwards: TensorBoard's hparams summaries need
    the real TensorFlow. Does nothing once TensorFlow is loaded; returns whether the stub
    is in use.
    """
    import types

    if "tensorflow" in sys.modules:
        return False
    name = TENSORBOARD_NO_TENSORFLOW
    sys.modules.setdefault(name, types.ModuleType(name))
    with _without_botocore():  # a report reads local folders only
        from tensorboard.compat import tf

        if tf.__version__ != "stub":
            return False
    # The stub checks each record's CRC-32C in Python (once half a report's time);
    # the same check in C (google-crc32c) gives the same answers.
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow

    pywrap_tensorflow.masked_crc32c = masked_crc32c
    return True


def summaries_without_s3() -> None:
    """Import TensorBoard's TensorFlow stub now, without its S3 support.

    A run's first summary op makes TensorFlow import `tensorboard.summary`, whose helpers
    import the stub, and with it botocore (`_without_botocore`): a slow import in every run,
    for s3:// paths a run never reads through it. Does nothing once the stub is loaded.
    """
    if "tensorboard.compat.tensorflow_stub" in sys.modules or "botocore" in sys.modules:
        return
    with _without_botocore():
        import tensorboard.compat.tensorflow_stub  # noqa: F401


@contextlib.contextmanager
def _without_botocore() -> Iterator[None]:
    """Inside the block, importing botocore fails as if it were absent (a None entry in
    sys.modules), unless it is loaded already: TensorBoard's stub gfile imports botocore
    and boto3 when installed (hydra-ray-launcher brings them), for s3:// paths, a slow
    import tbpipe's reading and writing never needs. Afterwards anyone else gets it."""
    left_out = "botocore" not in sys.modules
    if left_out:
        sys.modules["botocore"] = None
    try:
        yield
    finally:
        if left_out and sys.modules.get("botocore", 0) is None:
            del sys.modules["botocore"]


#: the data server's log line once it has read the whole logdir (with `-v`)
DATA_SERVER_LOADED = "Finished load cycle"


def data_server_command(binary: str, logdir: Any, port_file: Any, keep: str) -> list[str]:
    """TensorBoard's data server (rustboard) reading `logdir` once, every record's CRCs
    checked, keeping `keep` (`--samples-per-plugin`), on a free port of 127.0.0.1 written
    to `port_file`, ending when its stdin closes. These flags are the ones TensorBoard
    passes to it, not a documented interface."""
    return [
        binary, "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0",
        "--port-file", str(port_file), "--reload", "once", "--checksum",
        "--samples-per-plugin", keep, "--die-after-stdin", "-v",
    ]  # fmt: skip


def data_server_client(address: str, channel: Any) -> Any:
    """TensorBoard's own gRPC client of the data server (`list_runs`, `read_last_scalars`),
    a module of TensorBoard's, not a documented API."""
    from tensorboard.data import grpc_provider

    return grpc_provider.GrpcDataProvider(address, grpc_provider.make_stub(channel))


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C a TFRecord stores after a record's length and its data."""
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def masked_crc32c_function() -> Callable[[bytes], int]:
    """`masked_crc32c` as one closure over google-crc32c's C function (a hot loop's call)."""
    from google_crc32c import value

    def masked(data: bytes) -> int:
        crc = value(data)
        return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF

    return masked


def write_events_with_c_crc() -> None:
    """TensorBoard's own event writer (`EventFileWriter`) with its record CRCs in C.

    Its RecordWriter takes the TensorFlow stub's CRC-32C, in Python, even when TensorFlow is
    loaded: the sweep summary's mean runs spent most of their writing time in it. Same
    checksums (tests/test_compat.py), computed by google-crc32c.
    """
    from tensorboard.summary.writer import record_writer

    record_writer.masked_crc32c = masked_crc32c


def _crc32c(data: bytes) -> int:
    """google-crc32c's C CRC-32C (imported on first use; then it replaces this function)."""
    global _crc32c
    import google_crc32c

    _crc32c = google_crc32c.value
    return _crc32c(data)


# -- TensorFlow ---------------------------------------------------------------------------
def writer_handle(writer: Any) -> Any:
    """The resource handle behind a `tf.summary` file writer, to pass into a tf.function.

    TensorFlow's own summary ops write to the default writer's `_resource`.
    """
    return writer._resource  # noqa: SLF001


def set_global_seed_keeping_kernels(seed: int) -> None:
    """`tf.random.set_seed(seed)` without emptying TensorFlow's kernel caches.

    Emptying them restarts the counters of cached random kernels, and also throws away every
    prepared function: a sweep's reused loop would be prepared again each job. tbpipe uses
    this only when no piece of the run draws from the global random state
    (pipeline.app.seed_everything), so no kernel of its own has a counter.
    """
    import random

    from tensorflow.python.eager import context

    ctx = context.context()
    ctx._seed = seed  # noqa: SLF001  what context._set_global_seed sets before clearing
    ctx._rng = random.Random(seed)  # noqa: SLF001  op seeds are drawn from it


def writer_from_handle(handle: Any) -> Any:
    """A `tf.summary.SummaryWriter` that writes to `handle` and never flushes or closes.

    Inside the compiled loop: the handle is the loop's argument (one trace serves every
    job's files), and TF's writers would add a flush each time `as_default()` is left
    inside a function (several per step). The file writer that owns the handle still
    flushes every `max_queue` events or `flush_millis`, and on close.
    """
    return _loop_writer_class()(handle)


@functools.cache
def _loop_writer_class() -> type:
    import tensorflow as tf

    class LoopWriter(tf.summary.SummaryWriter):
        """A writer made from a handle the compiled loop was given (see writer_from_handle)."""

        def __init__(self, handle: Any):
            self._resource = handle  # what TF's summary ops read from the default writer

        def init(self) -> None:
            """Opened by the writer the handle came from."""

        def flush(self) -> None:
            """No flush per step."""

        def close(self) -> None:
            """Closed by the writer the handle came from."""

    return LoopWriter


def tensorboard_histogram_buckets(data: Any, bucket_count: int) -> Any:
    """TensorBoard's own histogram bucketing (private), the reference ours must equal."""
    from tensorboard.plugins.histogram.summary_v2 import _buckets

    return _buckets(data, bucket_count)


#: what `import tensorflow` imports last, eagerly, only to register Keras optimizers
KERAS_EAGER_LOAD = "keras.src.optimizers"


@contextlib.contextmanager
def without_keras_eager_load() -> Iterator[None]:
    """Make `import keras.src.optimizers` fail inside the block, unless Keras is loaded.

    TensorFlow skips that step (a quarter of its import time) when the import fails; a
    `None` entry in sys.modules makes `import` raise ImportError. The block is forgotten
    afterwards, so a user's Keras model still imports Keras normally.
    """
    if KERAS_EAGER_LOAD in sys.modules:
        yield
        return
    sys.modules[KERAS_EAGER_LOAD] = None
    try:
        yield
    finally:
        if sys.modules.get(KERAS_EAGER_LOAD, 0) is None:
            del sys.modules[KERAS_EAGER_LOAD]


#: the Keras package whose modules `import sklearn` for Keras's scikit-learn wrappers only
KERAS_WRAPPERS = "keras.src.wrappers"
#: the Keras package whose modules `import matplotlib.pyplot` for its plotting helpers only
KERAS_VISUALIZATION = "keras.src.visualization"
#: what Keras's optional modules import, and which Keras package imports it
KERAS_OPTIONAL_IMPORTS = {"sklearn": KERAS_WRAPPERS, "matplotlib": KERAS_VISUALIZATION}


class _KerasWithoutScikitLearn:
    """An import finder that makes scikit-learn and matplotlib look absent to Keras's
    scikit-learn wrappers and plotting helpers only.

    Keras 3 imports scikit-learn (and with it SciPy) whenever it is installed, for its
    scikit-learn wrappers, and matplotlib's pyplot, for `keras.visualization`; no run uses
    either, and together they are a noticeable part of every Keras run's start
    (docs/PERFORMANCE.md). Those modules handle a missing package (`sklearn = None`,
    `plt = None`, and a wrapper or plot says the package is needed when one is made);
    any other import of scikit-learn or matplotlib is untouched (tbpipe's own plots
    import matplotlib without pyplot, beside the training loop).
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        top = name.partition(".")[0]
        importer = KERAS_OPTIONAL_IMPORTS.get(top)
        if importer is None or name in sys.modules:
            return None
        frame = sys._getframe(1)  # noqa: SLF001  who is importing: only those Keras modules
        while frame is not None:
            if str(frame.f_globals.get("__name__")).startswith(importer):
                raise ModuleNotFoundError(f"{top} is not loaded for {importer}")
            frame = frame.f_back
        return None


def keras_without_scikit_learn() -> None:
    """Install the finder above once (before Keras is first imported)."""
    if not any(isinstance(finder, _KerasWithoutScikitLearn) for finder in sys.meta_path):
        sys.meta_path.insert(0, _KerasWithoutScikitLearn())


# -- Python ---------------------------------------------------------------------------------
def exit_without_teardown(code: int) -> NoReturn:
    """Run the atexit handlers, flush stdout/stderr and end the process without freeing
    every module (with TensorFlow loaded, Python's teardown is slow: docs/PERFORMANCE.md)."""
    atexit._run_exitfuncs()  # noqa: SLF001  what sys.exit runs before the teardown
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class GroupOptions:
    """The config groups and options a config loader sees, asked of one copy of its
    repository. Hydra's loader copies its whole repository (every structured config its
    plugins stored) for each question, and `tbpipe --help` asks dozens of them
    (docs/PERFORMANCE.md has the time it saves)."""

    def __init__(self, loader: Any, overrides: Sequence[str] = ()):
        _, self.repository = loader._parse_overrides_and_create_caching_repo(None, list(overrides))

    def list_groups(self, parent: str) -> list[str]:
        from hydra.core.object_type import ObjectType

        return self.repository.get_group_options(parent, ObjectType.GROUP)

    def get_group_options(self, group: str, results_filter: Any = None) -> list[str]:
        from hydra.core.object_type import ObjectType

        return self.repository.get_group_options(group, results_filter or ObjectType.CONFIG)

    def folders(self, searchpath: Sequence[str] = ()) -> list[str]:
        """The folders these options are read from (the search path's `pkg://` and `file://`
        entries, and `searchpath`, a primary config's `hydra.searchpath`), where they exist."""
        import importlib.util

        found = []
        entries = [f"{source.scheme()}://{source.path}" for source in self.repository.get_sources()]
        for entry in [*entries, *searchpath]:
            scheme, _, path = str(entry).partition("://")
            if scheme == "file":
                found.append(path)
            elif scheme == "pkg":
                try:
                    spec = importlib.util.find_spec(path.replace("/", "."))
                except (ImportError, ValueError):
                    continue
                found.extend(spec.submodule_search_locations or () if spec else ())
        return [folder for folder in found if os.path.isdir(folder)]


#: interpolations' parse trees kept by `cache_interpolation_parses` (a sweep's configs hold a
#: few dozen distinct `${...}` texts; every job reads the same ones)
PARSES_KEPT = 4096


def cache_interpolation_parses() -> None:
    """Each `${...}` text parsed by OmegaConf's grammar once, not on every read.

    OmegaConf (`omegaconf.base.parse`) runs its ANTLR parser each time an interpolated value
    is read: the stacked launcher reads the same texts (a job's dir name, its task's
    `${seed}`) in every job of a sweep. The trees are only visited, never changed, so one
    tree serves every read; resolvers still run on each read, and a text that does not
    parse raises each time, as before (failures are not kept)."""
    import omegaconf.base

    parse = omegaconf.base.parse
    if not hasattr(parse, "cache_info"):
        omegaconf.base.parse = functools.lru_cache(maxsize=PARSES_KEPT)(parse)


@contextlib.contextmanager
def interpolation_parses_kept() -> Iterator[None]:
    """`cache_interpolation_parses` while the block runs (the preflight's check of every job
    of a sweep, each reading the same `${...}` texts), OmegaConf's own parse after it, as
    it was before: a launcher other than the stacked one runs as it always did."""
    import omegaconf.base

    parse = omegaconf.base.parse
    cache_interpolation_parses()
    try:
        yield
    finally:
        omegaconf.base.parse = parse


def yaml_of(container: Any) -> str:
    """`OmegaConf.to_yaml` of a config already made a container (`OmegaConf.to_container`,
    resolve=False, enum_to_str=True): the same text with OmegaConf's own YAML dumper, so a
    job's `.hydra/` files come from one conversion of its config, not one per file."""
    import yaml
    from omegaconf._utils import get_omega_conf_dumper

    return yaml.dump(
        container,
        default_flow_style=False,
        allow_unicode=True,
        sort_keys=False,
        Dumper=get_omega_conf_dumper(),
    )


def resolved_further(value: Any) -> bool:
    """Whether OmegaConf reads `value`, as `config_container` gives it, as something else
    than itself: a text holding an interpolation (`${...}`) or the missing value `???`."""
    return isinstance(value, str) and ("${" in value or value == "???")


def config_container(config: Any) -> Any:
    """`OmegaConf.to_container(config, resolve=False, enum_to_str=True)` read straight
    from the nodes' stored values (OmegaConf's `_content` and `_val`): the same dicts,
    lists and values, without OmegaConf's per-node lookups, for the stacked launcher's
    jobs (each job's whole config, Hydra's node included, converted once)."""
    from enum import Enum

    from omegaconf import Container, DictConfig

    def value(node: Any) -> Any:
        if isinstance(node, Container):
            return container(node)
        stored = node._val
        return stored.name if isinstance(stored, Enum) else stored

    def container(node: Any) -> Any:
        content = node._content
        if content is None or isinstance(content, str):  # None, "???" or "${...}"
            return content
        if isinstance(node, DictConfig):
            return {
                (key.name if isinstance(key, Enum) else key): value(child)
                for key, child in content.items()
            }
        return [value(child) for child in content]

    return container(config)

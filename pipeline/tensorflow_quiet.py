"""Import TensorFlow quickly and without its C++ start-up chatter.

Chatter: TF 2.21 logs through absl before absl is initialised, so TF_CPP_MIN_LOG_LEVEL
does not silence the first lines (oneDNN notice, missing CUDA drivers, CPU features). We
hide stderr at the file-descriptor level for the import and the first device query only,
and replay what was hidden if the import fails. Set TBPIPE_TF_LOGS=1 to see everything.

Speed: `import tensorflow` ends by eagerly importing `keras.src.optimizers` (and with it
all of Keras 3), about a quarter of the import's time, only to register Keras optimizers
for SavedModel loading; TensorFlow skips that step when the import fails. tbpipe needs no
Keras, so we make that one import fail and then forget the block: a user's Keras model
still imports Keras normally, later, when its config asks for it.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from types import ModuleType

from pipeline.compat import keras_without_scikit_learn, without_keras_eager_load


def import_tensorflow(inter_op_threads: int | None = None) -> ModuleType:
    """Return the `tensorflow` module, imported quietly unless TBPIPE_TF_LOGS is set.

    `inter_op_threads` (0 or None: TensorFlow's default, one per core) applies only to the
    first import, and gives way to TF_NUM_INTEROP_THREADS when that is set (a launcher
    sharing the cores between jobs sets it).
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    keras_without_scikit_learn()  # a Keras model later imports Keras without scikit-learn
    with without_keras_eager_load():
        if os.environ.get("TBPIPE_TF_LOGS"):
            import tensorflow

            _first_threads(tensorflow, inter_op_threads)
            return tensorflow
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with tempfile.TemporaryFile() as hidden:
            sys.stderr.flush()
            saved = os.dup(2)
            os.dup2(hidden.fileno(), 2)
            try:
                import tensorflow

                _first_threads(tensorflow, inter_op_threads)
                # the first device query logs CUDA probing errors on machines without a GPU
                tensorflow.config.list_logical_devices()
            except KeyboardInterrupt:
                raise  # Ctrl-C or SIGTERM while importing: nothing went wrong to show
            except BaseException:
                os.dup2(saved, 2)
                hidden.seek(0)
                sys.stderr.write(hidden.read().decode(errors="replace"))
                raise
            finally:
                os.dup2(saved, 2)
                os.close(saved)
    tensorflow.get_logger().addFilter(_drop_retracing_warning)
    return tensorflow


def _first_threads(tf: ModuleType, threads: int | None) -> None:
    """Give TensorFlow `threads` inter-op threads before it runs its first op, unless
    TF_NUM_INTEROP_THREADS is set (a launcher sharing the cores sets it, and it wins).

    Through `tf.config`, not the variable: a process that sets the variable passes it on to
    every process it starts (a user's notebook, a test), which would read it as a launcher's.
    """
    if threads and "TF_NUM_INTEROP_THREADS" not in os.environ:
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))


def apply_inter_op_threads(threads: int | None) -> str | None:
    """Use `threads` inter-op threads (0 or None: TensorFlow's default); return why not.

    TensorFlow fixes its thread pools when it first runs an op: afterwards (every sweep
    job after the first in one process, a notebook) a different number cannot apply.
    TF_NUM_INTEROP_THREADS, set by a launcher sharing the cores, wins over the config.
    """
    if not threads:
        return None
    tf = import_tensorflow(threads)  # the first import applies it (when no launcher did)
    if os.environ.get("TF_NUM_INTEROP_THREADS") is not None:
        return None  # a launcher shares the cores between its jobs
    current = tf.config.threading.get_inter_op_parallelism_threads()
    if current == threads:
        return None
    try:
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    except RuntimeError:
        now = f"{current} inter-op thread{'s' * (current != 1)}" if current else "its default"
        return (
            f"trainer.inter_op_threads={threads} not applied: TensorFlow already runs in this "
            f"process with {now} (fixed when it ran its first op, e.g. an earlier job of a "
            "sweep or a notebook cell); it applies in a new process"
        )
    return None


def _drop_retracing_warning(record: logging.LogRecord) -> bool:
    """Each job of a sweep traces its own loop once, by design: TF's retracing warning
    ("5 out of the last 9 calls ... triggered tf.function retracing") would only alarm."""
    return "triggered tf.function retracing" not in record.getMessage()

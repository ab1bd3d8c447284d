"""Import TensorFlow without its C++ start-up chatter.

TF 2.21 logs through absl before absl is initialised, so TF_CPP_MIN_LOG_LEVEL does not
silence the first lines (oneDNN notice, missing CUDA drivers, CPU features). We hide
stderr at the file-descriptor level for the import and the first device query only, and
replay what was hidden if the import fails. Set TBPIPE_TF_LOGS=1 to see everything.
"""

from __future__ import annotations

import os
import sys
import tempfile
from types import ModuleType


def import_tensorflow() -> ModuleType:
    """Return the `tensorflow` module, imported quietly unless TBPIPE_TF_LOGS is set."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    if os.environ.get("TBPIPE_TF_LOGS"):
        import tensorflow

        return tensorflow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryFile() as hidden:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(hidden.fileno(), 2)
        try:
            import tensorflow

            # the first device query logs CUDA probing errors on machines without a GPU
            tensorflow.config.list_logical_devices()
        except BaseException:
            os.dup2(saved, 2)
            hidden.seek(0)
            sys.stderr.write(hidden.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tensorflow

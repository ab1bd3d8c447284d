"""Sweep job directories: `<num>_<setting>`, one per job, never nested, never too long.

Importing this module registers the `tbpipe.job_dir` resolver that conf/config.yaml uses
for `hydra.sweep.subdir`; it stays light (no TensorFlow).
"""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf

#: Longest job directory name we write; file systems stop at 255 bytes.
MAX_NAME_BYTES = 200


def job_dir_name(num: int | str, override_dirname: str) -> str:
    """`<num>_<overrides>`, or `<num>` when nothing is left to name; never a nested path.

    The job number keeps names unique (seed sweeps, excluded keys, no overrides at all);
    a `/` in a value becomes `∕` (U+2215) so it cannot open a subdirectory, and very long
    names are cut and given a hash of the full text so they stay unique.
    """
    name = f"{num}_{override_dirname}" if override_dirname else str(num)
    name = name.replace("/", "\u2215").replace("\0", "")
    if len(name.encode()) > MAX_NAME_BYTES:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = name.encode()[: MAX_NAME_BYTES - 11].decode(errors="ignore") + "~" + digest
    return name


if not OmegaConf.has_resolver("tbpipe.job_dir"):
    OmegaConf.register_new_resolver("tbpipe.job_dir", job_dir_name)

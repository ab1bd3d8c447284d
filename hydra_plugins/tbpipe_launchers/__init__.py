"""tbpipe's launchers where Hydra looks for them: Hydra instantiates a launcher only from a
class defined under the `hydra_plugins` namespace package, and imports every module here
when it starts. The work is in pipeline/sweeps/slurm.py and pipeline/sweeps/stacked.py;
these stay names for it.

`hydra/launcher=slurm` (conf/hydra/launcher/slurm.yaml) names
`hydra_plugins.tbpipe_launchers.SlurmLauncher`, `hydra/launcher=stacked`
(conf/hydra/launcher/stacked.yaml) `hydra_plugins.tbpipe_launchers.StackedLauncher`.
"""

from pipeline.sweeps import stacked

try:
    from pipeline.sweeps import slurm
except ImportError:  # hydra-submitit-launcher is not installed (`pip install tbpipe[slurm]`)
    slurm = None

if slurm is not None:

    class SlurmLauncher(slurm.SlurmLauncher):
        """submitit's Slurm launcher, waiting on squeue (pipeline/sweeps/slurm.py)."""


class StackedLauncher(stacked.StackedLauncher):
    """Same-shape jobs of a sweep trained as one (pipeline/sweeps/stacked.py)."""

"""Stage 4: sweeps. Job dir names, the summary at the end, launchers, Optuna searches.

Importing the package registers the `tbpipe.job_dir` resolver (conf/config.yaml names job
dirs with it) and the sweep checks the preflight runs; it stays light (no TensorFlow).
"""

# resolver and checks register on import
from pipeline.sweeps import launchers, naming, search  # noqa: F401

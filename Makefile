# tbpipe: two commands on a fresh machine (Python 3.11 + make):
#   make run    set up .venv if needed, then run the default experiment
#   make test   set up .venv if needed, then run the whole test suite
#   make test-fast   the in-process and unit tests only (no subprocess runs; README has its time)
# Pass overrides with ARGS, e.g. `make run ARGS="data.noise_std=0.5"`.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# setuptools prints an "Editable installation" note (a warning about folders named like
# the package) for every editable install, whatever the project's configuration; it is
# the only thing it prints for ours (tests/test_installed.py reads the build log).
EDITABLE_NOTE_OFF := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: setup run test test-fast lint format lock clean slurm slurm-stop

setup: $(STAMP)

# Reinstall when the dependency list or the pinned versions change.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(EDITABLE_NOTE_OFF) $(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $@

run: setup
	$(BIN)/tbpipe $(ARGS)

# Both tiers run on every core: one pytest-xdist worker a core, each test file on one
# worker (--dist loadfile: the runs a file's tests share are made once, its tests run in
# order). PYTEST_WORKERS=0 runs everything in this process; PYTEST_ARGS adds to the command.
PYTEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: setup
	$(PYTEST) $(PYTEST_ARGS)

# In-process and unit tests only (no subprocess runs, sweeps or servers): about a minute
# on 2 quiet cores (README has the measured times).
test-fast: setup
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

# A single-node Slurm on this machine (as root; installs Debian's slurm-wlm and munge when
# missing): tests/test_slurm.py and `tbpipe -m hydra/launcher=slurm ...` run through it.
slurm:
	scripts/slurm-local.sh start

slurm-stop:
	scripts/slurm-local.sh stop

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Regenerate the exact pins from the current environment (after changing pyproject.toml).
lock: setup
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^tbpipe' > requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

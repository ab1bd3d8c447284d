"""tbpipe's Hydra configs, importable as `pipeline.conf` so they ship inside the package."""

from pipeline.check import schema  # noqa: F401  registers the structured configs named in the YAML

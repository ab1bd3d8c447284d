"""tbpipe's Hydra configs, importable as `pipeline.conf` so they ship inside the package."""

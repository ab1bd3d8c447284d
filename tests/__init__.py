"""tbpipe tests: they read what a user would see (event files, console output)."""

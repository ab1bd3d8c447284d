"""How tbpipe ends when something is wrong: one line on stderr and an exit code.

The exit codes are documented in docs/ERRORS.md (tests check that table row by row):
a script or a scheduler can tell a typo from a diverged run from a Ctrl-C.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
from collections.abc import Sequence
from typing import Any

EXIT_FAILED = 1  # an unexpected error inside the run (metrics.json: status failed)
EXIT_BAD_INPUT = 2  # a bad override or output directory: nothing was run, nothing written
EXIT_DIVERGED = 3  # the loss became NaN or Inf (metrics.json: status diverged)


def exit_code_for_signal(signum: int) -> int:
    """The shell's convention: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


#: the most characters of one value a message repeats (a 100 KB value is not echoed)
VALUE_LIMIT = 120
#: the most characters of a whole one-line message
MESSAGE_LIMIT = 2000


def shorten(value: Any, limit: int = VALUE_LIMIT) -> str:
    """`value` as text, cut to `limit` characters with how much was left out."""
    text = str(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}... ({len(text)} characters)"


class BadInput(Exception):
    """A config or command-line value tbpipe cannot run with; the message is one line."""

    def __init__(self, message: str):
        super().__init__(shorten(" ".join(str(message).split()), MESSAGE_LIMIT))


class BadValue(BadInput):
    """`key=value` is outside what `key` allows."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"bad value {key}={shorten(as_typed(value))}: must be {allowed}")


def as_typed(value: Any) -> str:
    """A value as the user would type it in an override (nan, inf, true, abc)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # nan, inf, -inf: what Hydra's override grammar accepts
    if value is None:
        return "null"
    return str(value)


class OneLineParser(argparse.ArgumentParser):
    """A subcommand's parser: bad arguments give one line naming what was wrong, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def full_error_requested() -> bool:
    """HYDRA_FULL_ERROR=1 asks for the traceback instead of the one line."""
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def report(message: str) -> None:
    """Write the one line to stderr, prefixed with the program name; a value read from the
    environment that the message (or the command line) names is not shown."""
    sys.stderr.write(f"tbpipe: {without_environment_values(message, sys.argv)}\n")
    sys.stderr.flush()


#: `${oc.env:NAME}` or `${oc.env:NAME,default}`: the variable an interpolation reads
ENVIRONMENT_READ = re.compile(r"oc\.env:\s*([A-Za-z_][A-Za-z0-9_]*)")
#: what stands in for such a value in a message
NOT_SHOWN = "<value from the environment, not shown>"


def without_environment_values(message: str, argv: Sequence[str] = ()) -> str:
    """`message` without the values of the environment variables that it or `argv` reads
    with `${oc.env:NAME}` (often a secret): a refusal names the key, not the value. A
    value quoted in the message goes whatever its length, a bare one from 3 characters."""
    names = set(ENVIRONMENT_READ.findall(" ".join([message, *map(str, argv)])))
    for value in sorted({os.environ.get(name) or "" for name in names}, key=len, reverse=True):
        if value:
            message = message.replace(f"'{value}'", NOT_SHOWN)
            message = message.replace(value, NOT_SHOWN) if len(value) >= 3 else message
    return message


def one_line(error: BaseException, limit: int = 300) -> str:
    """`Type: message` on one line. TensorFlow's errors embed a stack of `File ...` lines:
    keep their first line and the line after the stack, which says what went wrong."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    frames = [i for i, line in enumerate(lines) if line.startswith("File ")]
    if frames:
        after = [line for line in lines[frames[-1] + 1 :] if not line.startswith(("[[", "[Op:"))]
        lines = lines[:1] + after[:1]
    text = " ".join(" ".join(lines).split())
    text = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."

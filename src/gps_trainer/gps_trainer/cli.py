"""Command-line entry points: a problem with the user's input ends the program with one line.

A missing or malformed config or conditions file, a bad config value, or a run folder that
does not fit the command (`--resume` without a run, a new run in a folder that holds one), and
whatever else a tool names (evaluation: a policy file that is not one) is reported the way
argparse reports a bad argument: the usage, `prog: error: message`, exit status 2. Every other
exception keeps its traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from gps_controller.typed_config import ConfigError

INPUT_ERRORS = (ConfigError, FileNotFoundError, FileExistsError)


@contextmanager
def input_errors_reported(parser: argparse.ArgumentParser,
                          *more: type[Exception]) -> Iterator[None]:
    """Inside this block, INPUT_ERRORS and the exception types `more` end the program through
    parser.error."""
    try:
        yield
    except INPUT_ERRORS + more as exc:
        parser.error(str(exc))

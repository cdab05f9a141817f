"""Command-line entry points: a problem with the user's input ends the program with one line.

A missing or malformed config, conditions or policy file, a bad config value, or a run folder
that does not fit the command (`--resume` without a run, a new run in a folder that holds one)
is reported the way argparse reports a bad argument: the usage, `prog: error: message`, exit
status 2. Every other exception keeps its traceback.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from gps_controller.policies.gaussian_policy import PolicyFileError
from gps_controller.typed_config import ConfigError

INPUT_ERRORS = (ConfigError, PolicyFileError, FileNotFoundError, FileExistsError)


@contextmanager
def input_errors_reported(parser: argparse.ArgumentParser) -> Iterator[None]:
    """Inside this block, INPUT_ERRORS end the program through parser.error."""
    try:
        yield
    except INPUT_ERRORS as exc:
        parser.error(str(exc))

"""Adding a named condition to a conditions YAML file (the format of gps_sim.conditions), as the
trainer, the evaluator and the sim read it.

The new condition is appended to its set as one flow-style line, so the file's comments and
layout stay as they were; a set that is not a block list (e.g. written inline as `[...]`) makes
the whole file be dumped anew, without its comments. The result is read back with
gps_sim.conditions before it replaces the file atomically (temporary file in the same folder,
then rename): a reader sees the old file or the new one, never half of one, and a refused or
failed save leaves the file untouched.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from gps_controller.typed_config import ConfigError, read_yaml_mapping
from gps_sim.conditions import condition_sets, load_conditions, load_task_config
from gps_trainer.gui.target_limits import TargetLimits

TASK_SECTION = "task"
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
"""A condition name: a letter, then letters, digits or underscores; 64 characters at most."""
DECIMALS = 4
"""Stored precision: 0.1 mm and 0.1 mrad."""


class ConditionFileError(ValueError):
    """A condition that cannot be saved, with the reason in words."""


@dataclass(frozen=True)
class NewCondition:
    """A condition to save: rack bar centre (robot frame, m), yaw (rad) and the grasp index."""

    name: str
    rack_position: tuple[float, float, float]
    rack_yaw: float
    grasp: int


def append_condition(path: str | Path, set_name: str, condition: NewCondition) -> NewCondition:
    """Validate `condition` against the file and append it to `set_name`; return what was
    stored (rounded to DECIMALS). Raises ConditionFileError saying what is wrong."""
    path = Path(path)
    data = _read_mapping(path)
    text = path.read_text()
    if set_name == TASK_SECTION or set_name not in data:
        raise ConditionFileError(f"unknown condition set {set_name!r}; sets in {path.name}: "
                                 f"{condition_sets(path)}")
    if data[set_name] is not None and not isinstance(data[set_name], list):
        raise ConditionFileError(f"{path.name}: {set_name} is not a list of conditions")
    stored = _checked(condition, data, _task_of(path))
    entry = {"name": stored.name, "rack_position": list(stored.rack_position),
             "rack_yaw": stored.rack_yaw, "grasp": stored.grasp}
    expected = {**data, set_name: [*(data[set_name] or []), entry]}
    new_text = _appended_line(text, set_name, _flow_line(stored))
    if new_text is None or yaml.safe_load(new_text) != expected:
        new_text = yaml.safe_dump(expected, sort_keys=False, default_flow_style=None)
    _replace_checked(path, new_text, set_name)
    return stored


def _read_mapping(path: Path) -> dict:
    try:
        return read_yaml_mapping(path, "conditions file")
    except ConfigError as exc:
        raise ConditionFileError(str(exc)) from None


def _task_of(path: Path):
    try:
        return load_task_config(path)
    except ConfigError as exc:
        raise ConditionFileError(str(exc)) from None


def _checked(condition: NewCondition, data: dict, task) -> NewCondition:
    name = condition.name
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ConditionFileError(f"condition name {name!r} is malformed: use a letter, then "
                                 f"letters, digits or underscores (64 characters at most)")
    if yaml.safe_load(name) != name:
        raise ConditionFileError(f"condition name {name!r} would read back from YAML as "
                                 f"{yaml.safe_load(name)!r}; choose another")
    for set_name, conditions in data.items():
        if set_name != TASK_SECTION and isinstance(conditions, list) and any(
                isinstance(c, dict) and c.get("name") == name for c in conditions):
            raise ConditionFileError(f"a condition named {name!r} already exists in set "
                                     f"{set_name!r}")
    values = [*condition.rack_position, condition.rack_yaw]
    if len(values) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                   and math.isfinite(v) for v in values):
        raise ConditionFileError(f"rack_position must be 3 finite numbers and rack_yaw a finite "
                                 f"number, got {list(condition.rack_position)}, "
                                 f"{condition.rack_yaw!r}")
    try:
        TargetLimits.from_task(task).check(condition.rack_position, condition.rack_yaw)
    except ValueError as exc:
        raise ConditionFileError(str(exc)) from None
    grasps = len(task.initial_right_arm_q)
    if isinstance(condition.grasp, bool) or not isinstance(condition.grasp, int) or not (
            0 <= condition.grasp < grasps):
        raise ConditionFileError(f"grasp must be an integer in [0, {grasps - 1}], "
                                 f"got {condition.grasp!r}")
    position = tuple(_rounded(v) for v in condition.rack_position)
    return NewCondition(name, position, _rounded(condition.rack_yaw), condition.grasp)


def _rounded(value: float) -> float:
    return round(float(value), DECIMALS) or 0.0         # no "-0.0" in the file


def _flow_line(c: NewCondition) -> str:
    x, y, z = (f"{v:.{DECIMALS}f}" for v in c.rack_position)
    return (f"{{name: {c.name}, rack_position: [{x}, {y}, {z}], "
            f"rack_yaw: {c.rack_yaw:.{DECIMALS}f}, grasp: {c.grasp}}}")


def _appended_line(text: str, set_name: str, line: str) -> str | None:
    """`text` with `- line` after the last item of the block list `set_name`, indented like
    its items; None when `set_name:` is not a key on a line of its own."""
    lines = text.splitlines(keepends=True)
    key = re.compile(rf"{re.escape(set_name)}\s*:\s*(#.*)?")
    starts = [i for i, ln in enumerate(lines) if key.fullmatch(ln.rstrip("\r\n"))]
    if len(starts) != 1:
        return None
    last, indent = starts[0], "  "
    for i in range(starts[0] + 1, len(lines)):
        content = lines[i].strip()
        if not content or content.startswith("#"):
            continue
        if lines[i][0] not in " \t-":
            break                                   # the next top-level key
        if last == starts[0]:
            indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
        last = i
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    lines.insert(last + 1, f"{indent}- {line}\n")
    return "".join(lines)


def _replace_checked(path: Path, text: str, set_name: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        try:
            load_conditions(tmp, set_name)
            load_task_config(tmp)
        except ConfigError as exc:
            raise ConditionFileError(f"the new file would not load: {exc}") from None
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)

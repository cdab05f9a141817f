"""Evaluates a ROS 2 Python launch file where `launch` and `launch_ros` are not installed (the
PyPI wheels ship neither), so that one launch file describes the graph everywhere.

It provides the part of the launch API this project's launch files use: LaunchDescription,
DeclareLaunchArgument (default_value, choices), Shutdown, LaunchConfigurationEquals,
LaunchConfiguration and launch_ros's Node (package, executable, name, output, parameters as
files and dicts, condition, on_exit=Shutdown()). The file is executed with these stand-ins
importable under the real module names, only for the duration of the call; anything else it
uses fails with an ImportError or TypeError that names it. The result is a list of ProcessSpecs:
what `ros2 launch` would start, with the same executables and parameter files.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path


class LaunchFileError(ValueError):
    """The launch file or its arguments are outside what this evaluator supports, or wrong."""


class LaunchConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name


class LaunchConfigurationEquals:
    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value


class Shutdown:
    """on_exit=Shutdown(): the whole launch stops when this process exits."""


class DeclareLaunchArgument:
    def __init__(self, name: str, default_value: str | None = None,
                 choices: list[str] | None = None, description: str = "") -> None:
        self.name, self.default_value = name, default_value
        self.choices, self.description = choices, description


class Node:
    def __init__(self, *, package: str, executable: str, name: str | None = None,
                 output: str = "log", parameters: list | None = None, condition=None,
                 on_exit=None) -> None:
        self.package, self.executable, self.name = package, executable, name or executable
        self.output, self.parameters = output, list(parameters or [])
        self.condition, self.on_exit = condition, on_exit


class LaunchDescription:
    def __init__(self, entities: list) -> None:
        self.entities = list(entities)


@dataclass(frozen=True)
class ProcessSpec:
    """One node as `ros2 launch` would start it."""

    package: str
    executable: str
    name: str
    params_files: tuple[str, ...]
    params: dict = field(default_factory=dict)
    shutdown_on_exit: bool = False


def _modules() -> dict[str, types.ModuleType]:
    def module(name: str, **members) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.__dict__.update(members)
        return mod
    return {
        "launch": module("launch", LaunchDescription=LaunchDescription),
        "launch.actions": module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument,
                                 Shutdown=Shutdown),
        "launch.conditions": module("launch.conditions",
                                    LaunchConfigurationEquals=LaunchConfigurationEquals),
        "launch.substitutions": module("launch.substitutions",
                                       LaunchConfiguration=LaunchConfiguration),
        "launch_ros": module("launch_ros"),
        "launch_ros.actions": module("launch_ros.actions", Node=Node),
    }


def load_description(path: str | Path) -> LaunchDescription:
    """Run the launch file's generate_launch_description() with the stand-ins."""
    path = Path(path)
    if not path.is_file():
        raise LaunchFileError(f"launch file {str(path)!r} does not exist")
    stand_ins = _modules()
    saved = {name: sys.modules.get(name) for name in stand_ins}
    sys.modules.update(stand_ins)
    try:
        spec = importlib.util.spec_from_file_location(f"_launch_{path.stem.replace('.', '_')}",
                                                      path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.generate_launch_description()
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous


def resolve(description: LaunchDescription, arguments: dict[str, str]) -> list[ProcessSpec]:
    """The processes the description starts for `arguments` (name -> value)."""
    declared = {e.name: e for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    unknown = sorted(set(arguments) - set(declared))
    if unknown:
        raise LaunchFileError(f"unknown launch arguments {unknown}; declared: {sorted(declared)}")
    values = {}
    for name, argument in declared.items():
        value = arguments.get(name, argument.default_value)
        if value is None:
            raise LaunchFileError(f"launch argument {name!r} has no default: give {name}:=...")
        if argument.choices and value not in argument.choices:
            raise LaunchFileError(f"launch argument {name}:={value} is not one of "
                                  f"{argument.choices}")
        values[name] = value

    def substitute(value):
        if isinstance(value, LaunchConfiguration):
            return values[value.name]
        if isinstance(value, (list, tuple)):
            return [substitute(v) for v in value]
        return value

    processes = []
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            continue
        if not isinstance(entity, Node):
            raise LaunchFileError(f"launch entity {type(entity).__name__} is not supported here")
        condition = entity.condition
        if condition is not None and values[condition.name] != condition.value:
            continue
        files = tuple(str(p) for p in entity.parameters if isinstance(p, (str, Path)))
        params = {}
        for item in entity.parameters:
            if isinstance(item, dict):
                params.update({key: substitute(value) for key, value in item.items()})
        processes.append(ProcessSpec(entity.package, entity.executable, entity.name, files,
                                     params, isinstance(entity.on_exit, Shutdown)))
    return processes

"""Typed config sections: defaults, coercion, and errors that name the key path."""

from dataclasses import dataclass, field

import pytest

from gps_controller.typed_config import (ConfigError, from_mapping, load_yaml, read_yaml_mapping,
                                         to_mapping)


@dataclass(frozen=True)
class Inner:
    gain: float = 1.0
    names: tuple[str, ...] = ("a",)


@dataclass(frozen=True)
class Outer:
    inner: Inner = field(default_factory=Inner)
    steps: int = 100
    label: str | None = None


def test_defaults_and_coercion():
    cfg = from_mapping(Outer, {"inner": {"gain": 2, "names": ["x", "y"]}})
    assert cfg == Outer(Inner(2.0, ("x", "y")), 100, None)
    assert to_mapping(cfg) == {"inner": {"gain": 2.0, "names": ["x", "y"]}, "steps": 100,
                               "label": None}


@pytest.mark.parametrize("data,message", [
    ({"stpes": 3}, "unknown key(s) ['stpes']"),
    ({"steps": 2.5}, "steps: expected an integer"),
    ({"steps": True}, "steps: expected an integer"),
    ({"inner": {"gain": "fast"}}, "inner.gain: expected a number"),
    ({"inner": {"gain": float("nan")}}, "inner.gain: expected a finite number, got nan"),
    ({"inner": {"gain": float("-inf")}}, "inner.gain: expected a finite number, got -inf"),
    ({"inner": {"names": "abc"}}, "inner.names: expected a list"),
    ({"inner": 3}, "inner: expected a mapping"),
])
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        from_mapping(Outer, data)
    assert message in str(err.value)


def test_load_yaml_section_and_missing_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("outer:\n  steps: 7\n")
    assert load_yaml(Outer, path, "outer").steps == 7
    with pytest.raises(ConfigError, match="no section 'sim'"):
        load_yaml(Outer, path, "sim")
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml(Outer, tmp_path / "none.yaml")


@pytest.mark.parametrize("text,message", [
    ("steps: [1, 2\n", r"(?s)c.yaml: malformed YAML: .*line 2, column 1"),
    ("steps: 1\n  gain: 2\n", r"(?s)c.yaml: malformed YAML: .*line 2, column 7"),
    ("- steps\n- gain\n", "c.yaml: expected a mapping at the top level, got list"),
    ("42\n", "c.yaml: expected a mapping at the top level, got int"),
])
def test_unreadable_yaml_names_the_file_and_where(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_yaml_mapping(path)
    with pytest.raises(ConfigError, match=message):
        load_yaml(Outer, path)


def test_an_empty_yaml_file_is_an_empty_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# nothing set\n")
    assert read_yaml_mapping(path) == {}
    assert load_yaml(Outer, path) == Outer()
    with pytest.raises(ConfigError, match="conditions file not found: .*none.yaml"):
        read_yaml_mapping(tmp_path / "none.yaml", "conditions file")

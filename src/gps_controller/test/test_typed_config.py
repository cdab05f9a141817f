"""Typed config sections: defaults, coercion, and errors that name the key path."""

from dataclasses import dataclass, field

import pytest

from gps_controller.typed_config import ConfigError, from_mapping, load_yaml, to_mapping


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

"""Each default is written in up to three places (the class, its schema, the YAML): they agree.

The YAML is what a user reads and what runs; the schema types it; the class is what a user
of the Python API gets without a config. A default changed in one place only would make
`tbpipe` and `LinearData()` disagree silently.
"""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
from hydra.utils import get_class
from omegaconf import OmegaConf

from pipeline.check.schema import GROUP_SCHEMAS, TrainerSchema

CONF = Path(__file__).resolve().parents[1] / "conf"


def yaml_values(path: Path, package: str | None = None) -> dict:
    """The literal values a YAML file sets (interpolations such as ${seed} left out; a
    value the user must give, `???`, kept as written)."""
    node = OmegaConf.load(path)
    if package:
        node = node[package]
    raw = OmegaConf.to_container(node, resolve=False)
    return {
        key: raw[key]
        for key in node
        if key not in ("defaults", "_target_") and not OmegaConf.is_interpolation(node, key)
    }


def schema_defaults(schema: type) -> dict:
    return {f.name: f.default for f in dataclasses.fields(schema) if f.name != "_target_"}


def class_defaults(target: str) -> dict:
    signature = inspect.signature(get_class(target).__init__)
    return {
        name: p.default
        for name, p in signature.parameters.items()
        if p.default is not inspect.Parameter.empty
    }


@pytest.mark.parametrize("option", sorted(GROUP_SCHEMAS))
def test_yaml_schema_and_class_agree(option):
    schema = GROUP_SCHEMAS[option]
    in_yaml = yaml_values(CONF / f"{option}.yaml")
    in_schema = schema_defaults(schema)
    assert set(in_yaml) <= set(in_schema), f"{option}.yaml sets keys the schema lacks"
    for key, value in in_yaml.items():
        assert value == in_schema[key], (
            f"{option}: {key} is {value} in YAML, {in_schema[key]} in schema"
        )
    target = getattr(schema, "_target_", None)
    if target is None:
        return
    assert OmegaConf.load(CONF / f"{option}.yaml")._target_ == target
    for key, value in class_defaults(target).items():
        if key in in_schema:
            assert value == in_schema[key], (
                f"{target}({key}={value}) but schema says {in_schema[key]}"
            )


def test_trainer_defaults_agree_with_config_yaml():
    in_yaml = yaml_values(CONF / "config.yaml", "trainer")
    assert in_yaml == schema_defaults(TrainerSchema)


@pytest.mark.parametrize("sink", sorted(p.stem for p in (CONF / "sinks").glob("*.yaml")))
def test_sink_yaml_agrees_with_its_class(sink):
    node = OmegaConf.load(CONF / "sinks" / f"{sink}.yaml")[sink]
    for key, value in class_defaults(node._target_).items():
        if key in node:
            assert node[key] == value, f"sinks/{sink}.yaml {key}={node[key]}, class says {value}"

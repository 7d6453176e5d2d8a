"""Fuzzing the settings: any environment or settings file gives Settings or a SettingsError naming the setting."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from streamal.service.errors import SettingsError
from streamal.service.settings import ENV_PREFIX, Settings, env_name, load_settings

from .payloads import fuzz

FIELDS = sorted(Settings.model_fields)

#: Text an environment variable can hold (no NUL, no lone surrogate).
env_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
hostile_text = st.sampled_from([
    "", " ", "\t", "NaN", "nan", "inf", "-inf", "Infinity", "1e308", "1e400", "-1e400", "-0", "0", "1", "-1", "0.5",
    "1.0", "true", "false", "yes", "off", "null", "None", "[]", "{}", '["a"]', '{"a": 1}', "a,,b", "a,a", ",", " , ",
    "x" * 300, "9" * 400, "0x10", "1_000", "\ufeff1", "\u0661", "pool ", "POOL", "stream\n", "a:b", "localhost:0",
    "localhost:99999", "h:1,,h:2", "sasl_ssl", "PLAIN", "..", ".", "streamal.instances", "/nonexistent/file",
    "margin", "logistic_regression", "module:factory", "é",
])
env_values = hostile_text | env_text


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Exactly ``values`` as the STREAMAL_* environment (the developer's own is set aside)."""
    saved = {k: v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}
    for k in saved:
        del os.environ[k]
    try:
        os.environ.update(values)
        yield
    finally:
        for k in values:
            os.environ.pop(k, None)
        os.environ.update(saved)


def check(load: Any, named: set[str]) -> Settings | SettingsError:
    """``load()`` gives Settings that hold their bounds, or a SettingsError naming a setting in ``named``."""
    try:
        settings = load()
    except SettingsError as exc:
        assert type(exc) is SettingsError
        message = str(exc)
        assert any(name in message for name in named), (message, named)
        return exc
    assert isinstance(settings, Settings)
    assert 0.0 < settings.budget <= 1.0
    assert settings.max_message_bytes > 0 and settings.dead_letter_max_bytes >= 0
    assert 0 <= settings.metrics_port <= 65535 and settings.partitions >= 1 and settings.pool_size >= 1
    for value in (settings.pool_seconds, settings.pending_max_age_s, settings.labels_per_hour or 1.0):
        assert math.isfinite(value) and value > 0
    assert settings.mode in ("stream", "pool") and settings.task in ("classification", "regression")
    for names in (settings.classes or ("x",), settings.text_features):
        assert all(n and n == n.strip() for n in names) and len(set(names)) == len(names)
    return settings


# ---------------------------------------------------------------------- environment


@example({"STREAMAL_BUDGET": "NaN"})
@example({"STREAMAL_MAX_MESSAGE_BYTES": "1e400"})
@example({"STREAMAL_CLASSES": "a,,b"})
@example({"STREAMAL_METRICS_PORT": "\u0661"})  # an Arabic-Indic digit one
@fuzz()
@example({"STREAMAL_CONFIG_FILE": "/"})
@given(st.dictionaries(st.sampled_from(FIELDS).map(env_name) | st.just("STREAMAL_CONFIG_FILE"), env_values, max_size=4))
def test_any_environment_gives_settings_or_an_error_naming_the_setting(env: dict[str, str]) -> None:
    with environment(env):
        check(load_settings, set(env) | {"STREAMAL_"})


# ---------------------------------------------------------------------- settings files

scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | env_values
)
file_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=4), inner, max_size=2), max_leaves=5)
file_keys = st.sampled_from(FIELDS) | st.sampled_from(FIELDS).map(env_name) | st.sampled_from(FIELDS).map(str.upper) \
    | st.text(max_size=6)


def toml_value(value: Any) -> str:
    """``value`` written as TOML (no null in TOML: written as a bare word, which is a syntax error)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return "{" + ", ".join(f"{orjson.dumps(k).decode()} = {toml_value(v)}" for k, v in value.items()) + "}"


@st.composite
def settings_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """A settings file name and content: settings of any value, as TOML or YAML; or any text or bytes."""
    table = draw(st.dictionaries(file_keys, file_values, max_size=4))
    suffix = draw(st.sampled_from([".toml", ".yaml", ".yml", ".TOML", ".json", ""]))
    kind = draw(st.sampled_from(["table"] * 4 + ["text", "bytes"]))
    if kind == "text":
        content = draw(st.text(max_size=60)).encode("utf-8", "surrogatepass")
    elif kind == "bytes":
        content = draw(st.binary(max_size=60))
    elif suffix.lower() == ".toml":
        content = "\n".join(f"{orjson.dumps(k).decode()} = {toml_value(v)}" for k, v in table.items()).encode()
    else:
        content = yaml.safe_dump(table, allow_unicode=draw(st.booleans())).encode("utf-8", "surrogatepass")
    return "settings" + suffix, content


@example(file=("settings.toml", b"budget = 0.5\nmode = 'pool '\nclasses = ['a', 'b']"), env={})
@example(file=("settings.yaml", b"STREAMAL_BUDGET: .nan\n"), env={})
@example(file=("settings.yaml", b"budget: !!binary aGVsbG8=\n"), env={})
@example(file=("settings.yaml", b"? [a, b]\n: 1\n"), env={})  # an unhashable key
@example(file=("settings.toml", b"group_id = 1979-05-27T07:32:00Z\n"), env={})
@example(file=("settings.toml", b"\xef\xbb\xbfbudget = 0.5\n"), env={})  # a BOM
@example(file=("settings.yml", b"- budget\n"), env={})
@fuzz(2)
@given(settings_files(), st.dictionaries(st.sampled_from(FIELDS).map(env_name), env_values, max_size=2))
def test_any_settings_file_gives_settings_or_an_error_naming_the_setting(file: tuple[str, bytes], env: dict) -> None:
    name, content = file
    with tempfile.TemporaryDirectory() as tmp, environment(env):
        path = Path(tmp) / name
        path.write_bytes(content)
        check(lambda: load_settings(config_file=path), set(env) | {"STREAMAL_"})
        with environment(env | {"STREAMAL_CONFIG_FILE": str(path)}):
            check(load_settings, set(env) | {"STREAMAL_"})


@pytest.mark.parametrize("name, content", [
    ("settings.yaml", "budget: " + "[" * 600 + "]" * 600),
    ("settings.toml", "budget = " + "[" * 600 + "]" * 600),
    ("settings.toml", "budget = " + "{a=" * 600 + "1" + "}" * 600),
])
def test_a_settings_file_nested_too_deep_is_a_settings_error(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with environment({}), pytest.raises(SettingsError, match="STREAMAL_CONFIG_FILE"):
        load_settings(config_file=path)

"""Settings: defaults of DESIGN 5.1, env and file sources, errors naming the setting, secrets masked."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from streamal.service.errors import SettingsError, StreamalError
from streamal.service.settings import Settings, env_name, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No STREAMAL_* variable of the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("STREAMAL_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------- defaults


DEFAULTS = {
    "bootstrap_servers": "localhost:9092",
    "group_id": "streamal",
    "topic_instances": "streamal.instances",
    "topic_label_requests": "streamal.label-requests",
    "topic_labels": "streamal.labels",
    "topic_training": "streamal.training",
    "topic_dead_letter": "streamal.dead-letter",
    "session_timeout_ms": 10_000,
    "max_message_bytes": 1_048_576,
    "dead_letter_max_bytes": 65_536,
    "classes": None,
    "create_topics": True,
    "partitions": 1,
    "mode": "stream",
    "task": "classification",
    "text_features": (),
    "budget": 0.05,
    "labels_per_hour": None,
    "pool_size": 1000,
    "pool_seconds": 60.0,
    "state_dir": Path("./state"),
    "metrics_port": 9400,
    "pending_max": 100_000,
    "pending_max_age_s": 86_400.0,
    "seed": 0,
    "security_protocol": None,
    "sasl_mechanism": None,
    "sasl_plain_password": None,
    "ssl_cafile": None,
}


@pytest.mark.parametrize(("field", "default"), DEFAULTS.items())
def test_defaults_are_those_of_the_design(field: str, default: object) -> None:
    assert getattr(load_settings(), field) == default


def test_model_and_manager_have_registered_names_by_default_and_the_strategy_follows_the_task() -> None:
    settings = load_settings()
    assert isinstance(settings.model, str) and settings.model
    assert settings.strategy is None and settings.budget_manager is None  # unset: the task's default
    from streamal.apps.serve import learner_factory

    assert learner_factory(load_settings(task="regression"))().strategy == "gsx"
    assert learner_factory(settings)().strategy == "margin"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"task": "regression", "model": "naive_bayes"}, "STREAMAL_MODEL: 'naive_bayes' does classification only"),
        ({"task": "regression", "strategy": "margin"}, "STREAMAL_STRATEGY: 'margin' does not support regression"),
        ({"model": "json:dumps"}, "STREAMAL_MODEL: 'json:dumps'() failed"),
        ({"model": "collections:OrderedDict"}, "STREAMAL_MODEL: 'collections:OrderedDict'() returned OrderedDict"),
    ],
)
def test_a_learner_the_settings_cannot_build_names_the_setting(values, message) -> None:
    from streamal.apps.serve import learner_factory

    with pytest.raises(SettingsError, match=re.escape(message)):
        learner_factory(load_settings(**values))


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValidationError):
        settings.budget = 0.5  # type: ignore[misc]


def test_env_names() -> None:
    assert env_name("pending_max_age_s") == "STREAMAL_PENDING_MAX_AGE_S"


# ---------------------------------------------------------------------- environment


def test_environment_variables_set_every_kind_of_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMAL_BOOTSTRAP_SERVERS", "k1:9092, k2:9093")
    monkeypatch.setenv("STREAMAL_BUDGET", "0.2")
    monkeypatch.setenv("STREAMAL_PARTITIONS", "6")
    monkeypatch.setenv("STREAMAL_CREATE_TOPICS", "false")
    monkeypatch.setenv("STREAMAL_MODE", "pool")
    monkeypatch.setenv("STREAMAL_CLASSES", " fraud, ok ,review")
    monkeypatch.setenv("STREAMAL_TEXT_FEATURES", "subject,body")
    monkeypatch.setenv("STREAMAL_STATE_DIR", "/var/lib/streamal")
    settings = load_settings()
    assert settings.bootstrap_list == ["k1:9092", "k2:9093"]
    assert settings.budget == 0.2
    assert settings.partitions == 6
    assert settings.create_topics is False
    assert settings.mode == "pool"
    assert settings.classes == ("fraud", "ok", "review")
    assert settings.text_features == ("subject", "body")
    assert settings.state_dir == Path("/var/lib/streamal")


def test_surrounding_whitespace_is_ignored_but_not_in_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMAL_MODE", " pool ")
    monkeypatch.setenv("STREAMAL_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("STREAMAL_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("STREAMAL_SASL_PLAIN_USERNAME", "svc ")
    monkeypatch.setenv("STREAMAL_SASL_PLAIN_PASSWORD", " pass word ")
    settings = load_settings()
    assert settings.mode == "pool"
    assert settings.sasl_plain_username == "svc"
    assert settings.kafka_security_kwargs()["sasl_plain_password"] == " pass word "


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMAL_CLASSES", "")
    monkeypatch.setenv("STREAMAL_LABELS_PER_HOUR", "")
    settings = load_settings()
    assert settings.classes is None
    assert settings.labels_per_hour is None


def test_overrides_beat_the_environment_and_none_overrides_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMAL_BUDGET", "0.2")
    monkeypatch.setenv("STREAMAL_SEED", "7")
    settings = load_settings(budget=0.3, seed=None)
    assert (settings.budget, settings.seed) == (0.3, 7)


BAD_VALUES = [
    ("STREAMAL_BUDGET", "1.5", "STREAMAL_BUDGET must be in (0, 1], got 1.5"),
    ("STREAMAL_BUDGET", "0", "STREAMAL_BUDGET must be in (0, 1], got 0"),
    ("STREAMAL_BUDGET", "-0.1", "STREAMAL_BUDGET must be in (0, 1]"),
    ("STREAMAL_BUDGET", "nan", "STREAMAL_BUDGET must be in (0, 1]"),
    ("STREAMAL_BUDGET", "lots", "STREAMAL_BUDGET must be a number, got lots"),
    ("STREAMAL_MODE", "batch", "STREAMAL_MODE must be one of 'stream' or 'pool', got batch"),
    ("STREAMAL_TASK", "ranking", "STREAMAL_TASK must be one of 'classification' or 'regression'"),
    ("STREAMAL_PARTITIONS", "0", "STREAMAL_PARTITIONS must be >= 1, got 0"),
    ("STREAMAL_PARTITIONS", "2.5", "STREAMAL_PARTITIONS must be an integer, got 2.5"),
    ("STREAMAL_SESSION_TIMEOUT_MS", "0", "STREAMAL_SESSION_TIMEOUT_MS must be > 0"),
    ("STREAMAL_MAX_MESSAGE_BYTES", "-1", "STREAMAL_MAX_MESSAGE_BYTES must be > 0"),
    ("STREAMAL_DEAD_LETTER_MAX_BYTES", "-1", "STREAMAL_DEAD_LETTER_MAX_BYTES must be >= 0"),
    ("STREAMAL_CREATE_TOPICS", "maybe", "STREAMAL_CREATE_TOPICS must be true or false, got maybe"),
    ("STREAMAL_LABELS_PER_HOUR", "0", "STREAMAL_LABELS_PER_HOUR must be > 0"),
    ("STREAMAL_POOL_SIZE", "0", "STREAMAL_POOL_SIZE must be >= 1"),
    ("STREAMAL_POOL_SECONDS", "inf", "STREAMAL_POOL_SECONDS must be a finite number"),
    ("STREAMAL_METRICS_PORT", "70000", "STREAMAL_METRICS_PORT must be <= 65535"),
    ("STREAMAL_PENDING_MAX", "0", "STREAMAL_PENDING_MAX must be >= 1"),
    ("STREAMAL_PENDING_MAX_AGE_S", "-5", "STREAMAL_PENDING_MAX_AGE_S must be > 0"),
    ("STREAMAL_SEED", "x", "STREAMAL_SEED must be an integer"),
    ("STREAMAL_CLASSES", "a,,b", "STREAMAL_CLASSES must be a comma-separated list without empty items"),
    ("STREAMAL_CLASSES", "a,b,a", "STREAMAL_CLASSES must not repeat a name"),
    ("STREAMAL_TEXT_FEATURES", "body,", "STREAMAL_TEXT_FEATURES must be a comma-separated list"),
    ("STREAMAL_GROUP_ID", " ", "STREAMAL_GROUP_ID must not be empty"),
    ("STREAMAL_MODEL", "", None),  # empty means unset: the default model
    ("STREAMAL_BOOTSTRAP_SERVERS", "k1:9092,,k2", "STREAMAL_BOOTSTRAP_SERVERS must be a comma-separated list"),
    ("STREAMAL_BOOTSTRAP_SERVERS", "k1:port", "STREAMAL_BOOTSTRAP_SERVERS has a bad port in 'k1:port'"),
    ("STREAMAL_TOPIC_LABELS", "my labels", "STREAMAL_TOPIC_LABELS must be a Kafka topic name"),
    ("STREAMAL_TOPIC_INSTANCES", "..", "STREAMAL_TOPIC_INSTANCES must be a Kafka topic name"),
    ("STREAMAL_TOPIC_LABELS", "streamal.instances", "STREAMAL_TOPIC_* settings must name different topics"),
    ("STREAMAL_SECURITY_PROTOCOL", "TLS", "STREAMAL_SECURITY_PROTOCOL must be one of"),
    ("STREAMAL_SECURITY_PROTOCOL", "sasl_ssl", "STREAMAL_SASL_MECHANISM is required with STREAMAL_SECURITY_PROTOCOL=SASL_SSL"),
    ("STREAMAL_SASL_MECHANISM", "PLAIN", "STREAMAL_SASL_MECHANISM needs STREAMAL_SECURITY_PROTOCOL=SASL_PLAINTEXT or SASL_SSL"),
    ("STREAMAL_SSL_CAFILE", "/no/such/ca.pem", "STREAMAL_SSL_CAFILE must name an existing file, got /no/such/ca.pem"),
]


@pytest.mark.parametrize(("variable", "value", "message"), BAD_VALUES)
def test_a_bad_value_fails_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str | None
) -> None:
    monkeypatch.setenv(variable, value)
    if message is None:
        load_settings()  # accepted
        return
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert message in str(caught.value)


def test_every_bad_setting_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMAL_BUDGET", "2")
    monkeypatch.setenv("STREAMAL_MODE", "x")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "STREAMAL_BUDGET" in str(caught.value) and "STREAMAL_MODE" in str(caught.value)


def test_settings_error_belongs_to_the_error_root() -> None:
    assert issubclass(SettingsError, StreamalError)


def test_an_unknown_override_is_refused() -> None:
    with pytest.raises(SettingsError, match="unknown setting 'budgt'"):
        load_settings(budgt=0.1)


# ---------------------------------------------------------------------- files


def test_a_toml_file_sets_values_and_the_environment_overrides_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        "streamal.toml",
        'budget = 0.1\nSTREAMAL_SEED = 3\nclasses = ["a", "b"]\ntext_features = "body"\nmode = "pool"\n',
    )
    monkeypatch.setenv("STREAMAL_MODE", "stream")
    settings = load_settings(path)
    assert settings.budget == 0.1
    assert settings.seed == 3  # the environment spelling works as a key too
    assert settings.classes == ("a", "b")  # a TOML array or a comma-separated string
    assert settings.text_features == ("body",)
    assert settings.mode == "stream"  # environment beats file
    assert load_settings(path, budget=0.4).budget == 0.4  # overrides beat both


def test_streamal_config_file_names_the_file_and_the_argument_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from_env = write(tmp_path, "env.toml", "seed = 1\n")
    from_arg = write(tmp_path, "arg.toml", "seed = 2\n")
    monkeypatch.setenv("STREAMAL_CONFIG_FILE", str(from_env))
    assert load_settings().seed == 1
    assert Settings().seed == 1  # also without load_settings
    assert load_settings(from_arg).seed == 2


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("s.toml", "budgt = 0.1\n", "has an unknown setting 'budgt'"),
        ("s.toml", "budget = \n", "is not valid TOML"),
        ("s.toml", "budget = 1.5\n", "STREAMAL_BUDGET must be in (0, 1], got 1.5"),
        ("s.toml", "partitions = 'many'\n", "STREAMAL_PARTITIONS must be an integer, got many"),
        ("s.ini", "budget = 0.1\n", "must end in .toml, .yaml or .yml"),
    ],
)
def test_a_bad_file_fails_with_a_clear_message(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    assert message in str(caught.value)


def test_a_missing_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="STREAMAL_CONFIG_FILE=.*cannot be read"):
        load_settings(tmp_path / "absent.toml")


@pytest.mark.skipif(importlib.util.find_spec("yaml") is not None, reason="PyYAML is installed")
def test_yaml_without_pyyaml_says_what_to_install(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "budget: 0.1\n")
    with pytest.raises(SettingsError, match=r"needs PyYAML \(pip install pyyaml\)"):
        load_settings(path)


@pytest.mark.skipif(importlib.util.find_spec("yaml") is None, reason="PyYAML is not installed")
def test_a_yaml_file_sets_values(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yml", "budget: 0.1\nclasses: [a, b]\n")
    settings = load_settings(path)
    assert (settings.budget, settings.classes) == (0.1, ("a", "b"))


# ---------------------------------------------------------------------- Kafka security and secrets


def test_no_security_setting_means_no_client_keyword() -> None:
    assert load_settings().kafka_security_kwargs() == {}


def test_sasl_settings_pass_through_and_stay_masked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = write(tmp_path, "ca.pem", "-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("STREAMAL_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STREAMAL_SASL_MECHANISM", "scram-sha-512")
    monkeypatch.setenv("STREAMAL_SASL_PLAIN_USERNAME", "svc-streamal")
    monkeypatch.setenv("STREAMAL_SASL_PLAIN_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("STREAMAL_SSL_CAFILE", str(ca))
    monkeypatch.setenv("STREAMAL_SSL_CHECK_HOSTNAME", "false")
    settings = load_settings()
    assert settings.kafka_security_kwargs() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc-streamal",
        "sasl_plain_password": "hunter2-secret",
        "ssl_cafile": str(ca),
        "ssl_check_hostname": False,
    }
    masked = settings.masked()
    assert masked["sasl_plain_password"] == "**********"
    assert masked["sasl_plain_username"] == "svc-streamal"
    for shown in (str(masked), repr(settings), str(settings)):
        assert "hunter2-secret" not in shown


def test_ssl_key_password_is_masked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    key = write(tmp_path, "client.key", "key")
    monkeypatch.setenv("STREAMAL_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("STREAMAL_SSL_KEYFILE", str(key))
    monkeypatch.setenv("STREAMAL_SSL_PASSWORD", "key-pass-secret")
    settings = load_settings()
    assert settings.kafka_security_kwargs()["ssl_password"] == "key-pass-secret"
    assert "key-pass-secret" not in str(settings.masked())


def test_plain_sasl_needs_a_username_and_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMAL_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("STREAMAL_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("STREAMAL_SASL_PLAIN_USERNAME", "svc")
    with pytest.raises(SettingsError, match="needs STREAMAL_SASL_PLAIN_USERNAME and STREAMAL_SASL_PLAIN_PASSWORD"):
        load_settings()


def test_an_invalid_secret_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "s.toml", "sasl_plain_password = 987654321\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    assert "STREAMAL_SASL_PLAIN_PASSWORD" in str(caught.value)
    assert "987654321" not in str(caught.value)


def test_static_membership_is_opt_in_with_a_valid_id() -> None:
    assert load_settings().group_instance_id is None  # dynamic membership unless a stable id is given
    assert load_settings(group_instance_id="streamal-0").group_instance_id == "streamal-0"
    with pytest.raises(SettingsError, match="STREAMAL_GROUP_INSTANCE_ID"):
        load_settings(group_instance_id="pod 0")

"""The one settings model (DESIGN section 5.1).

Sources, highest priority first: keyword overrides (the CLI), environment
variables ``STREAMAL_<FIELD>``, an optional TOML or YAML file named by
``STREAMAL_CONFIG_FILE`` (or ``--config``), then the defaults below. Invalid
settings fail at start-up with a :class:`SettingsError` that names the setting
as its environment variable:

>>> load_settings(budget=1.5)
Traceback (most recent call last):
...
streamal.service.errors.SettingsError: STREAMAL_BUDGET must be in (0, 1], got 1.5
"""

from __future__ import annotations

import contextvars
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import pydantic_settings
from pydantic import (
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from streamal.core.budget import budget_managers
from streamal.core.learner import DEFAULT_MODEL
from streamal.core.models import models
from streamal.core.strategies import strategies
from streamal.service.errors import SettingsError

__all__ = ["ENV_PREFIX", "CONFIG_FILE_ENV", "Settings", "SettingsError", "env_name", "load_settings"]

ENV_PREFIX: Final = "STREAMAL_"
#: Environment variable naming the optional settings file.
CONFIG_FILE_ENV: Final = "STREAMAL_CONFIG_FILE"

_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "streamal_config_file", default=None
)
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_SECRETS: Final = frozenset({"sasl_plain_password", "ssl_password"})
# Settings passed to kafka-python as they are, when set (kafka-python's own names).
_KAFKA_SECURITY: Final = (
    "security_protocol",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "sasl_kerberos_service_name",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
    "ssl_crlfile",
    "ssl_check_hostname",
)

CommaList = Annotated[tuple[str, ...], NoDecode]


def env_name(field: str) -> str:
    """The environment variable of a settings field: ``budget`` -> ``STREAMAL_BUDGET``."""
    return ENV_PREFIX + field.upper()


class Settings(BaseSettings):
    """Every setting of streamal; frozen once loaded. See DESIGN section 5.1 for each meaning."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        env_ignore_empty=True,  # STREAMAL_CLASSES= means "unset", not "the empty string"
        extra="forbid",
        frozen=True,
    )

    # Kafka
    bootstrap_servers: str = "localhost:9092"
    group_id: Annotated[str, Field(min_length=1)] = "streamal"
    #: Static membership (Kafka's group.instance.id): a stable id per replica (e.g. a StatefulSet's pod
    #: name) lets a restarted replica take its partitions back without a rebalance. Unset: dynamic.
    group_instance_id: Annotated[str, Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")] | None = None
    topic_instances: str = "streamal.instances"
    topic_label_requests: str = "streamal.label-requests"
    topic_labels: str = "streamal.labels"
    topic_training: str = "streamal.training"
    topic_dead_letter: str = "streamal.dead-letter"
    #: Unset (the default): no predictions are published. Set: a prediction for every instance, key = id.
    topic_predictions: str | None = None
    session_timeout_ms: Annotated[int, Field(gt=0)] = 10_000
    create_topics: bool = True
    partitions: Annotated[int, Field(ge=1)] = 1

    # Input limits
    max_message_bytes: Annotated[int, Field(gt=0)] = 1_048_576
    dead_letter_max_bytes: Annotated[int, Field(ge=0)] = 65_536

    # Learning
    mode: Literal["stream", "pool"] = "stream"
    task: Literal["classification", "regression"] = "classification"
    classes: CommaList | None = None
    text_features: CommaList = ()
    model: Annotated[str, Field(min_length=1)] = DEFAULT_MODEL
    #: Unset: the task's default (margin for classification, gsx for regression).
    strategy: Annotated[str, Field(min_length=1)] | None = None
    #: Unset: the task's default (quantile for classification, split for regression).
    budget_manager: Annotated[str, Field(min_length=1)] | None = None
    budget: float = 0.05
    labels_per_hour: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    drift_boost: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] = 0.0
    pool_size: Annotated[int, Field(ge=1)] = 1000
    pool_seconds: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 60.0
    seed: int = 0
    #: Learn a confident unasked instance with the model's own prediction, written to the training topic as
    #: ``"source": "pseudo"`` (CEAL; docs/pseudo_labels.md). Off: measured to barely help (benchmarks/pseudo_labels.py).
    pseudo_labels: bool = False
    #: With pseudo_labels: the lowest top-class probability that makes a pseudo-label.
    pseudo_min_proba: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)] = 0.99
    #: With pseudo_labels: real labels learned before the first pseudo-label.
    pseudo_warmup: Annotated[int, Field(ge=0)] = 20
    #: With pseudo_labels: at most this many pseudo-labels per real label.
    pseudo_per_label: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0

    # State and operations
    state_dir: Path = Path("./state")
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9400
    pending_max: Annotated[int, Field(ge=1)] = 100_000
    pending_max_age_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 86_400.0
    #: Ask once more about a request that expired unanswered, if it is still informative enough then.
    reask_expired: bool = False

    # Kafka security, passed through to the clients when set
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = None
    sasl_mechanism: (
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER"] | None
    ) = None
    sasl_plain_username: str | None = None
    sasl_plain_password: SecretStr | None = None
    sasl_kerberos_service_name: str | None = None
    ssl_cafile: FilePath | None = None
    ssl_certfile: FilePath | None = None
    ssl_keyfile: FilePath | None = None
    ssl_password: SecretStr | None = None
    ssl_crlfile: FilePath | None = None
    ssl_check_hostname: bool | None = None

    # ------------------------------------------------------------------ field checks

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        hosts = [h.strip() for h in value.split(",")]
        if not all(hosts):
            raise ValueError("must be a comma-separated list of host:port")
        for host in hosts:
            _, sep, port = host.rpartition(":")
            if sep and not (port.isdigit() and 0 < int(port) < 65536):
                raise ValueError(f"has a bad port in {host!r}")
        return ",".join(hosts)

    @field_validator(
        "topic_instances", "topic_label_requests", "topic_labels", "topic_training", "topic_dead_letter",
        "topic_predictions",
    )
    @classmethod
    def _check_topic(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not _TOPIC_NAME.match(value) or value in (".", ".."):
            raise ValueError("must be a Kafka topic name: 1-249 characters of [A-Za-z0-9._-]")
        return value

    @field_validator("strategy", "budget_manager")
    @classmethod
    def _check_registered(cls, value: str | None, info: ValidationInfo) -> str | None:
        registry = strategies if info.field_name == "strategy" else budget_managers
        if value is not None and value not in registry:
            raise ValueError(f"must be one of {', '.join(registry.names())}")
        return value

    @field_validator("model")
    @classmethod
    def _check_model(cls, value: str) -> str:
        if ":" not in value and value not in models:
            raise ValueError(f"must be one of {', '.join(models.names())}, or module:factory")
        return value

    @field_validator("budget")
    @classmethod
    def _check_budget(cls, value: float) -> float:
        if not 0.0 < value <= 1.0:  # also false for NaN
            raise ValueError("must be in (0, 1]")
        return value

    @field_validator("classes", "text_features", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if value is None:
            return None
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            return value  # let pydantic report the type
        names = [str(item).strip() for item in items]
        if not all(names):
            raise ValueError("must be a comma-separated list without empty items")
        if len(set(names)) != len(names):
            raise ValueError("must not repeat a name")
        return tuple(names)

    @field_validator("classes")
    @classmethod
    def _classes_not_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return value or None

    @field_validator("*", mode="before")
    @classmethod
    def _strip(cls, value: Any, info: ValidationInfo) -> Any:
        # "pool " from a shell or a file means "pool"; a secret is kept as given.
        if isinstance(value, str) and info.field_name not in _SECRETS:
            return value.strip()
        return value

    @field_validator("security_protocol", "sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_together(self) -> Settings:
        topics = [
            self.topic_instances,
            self.topic_label_requests,
            self.topic_labels,
            self.topic_training,
            self.topic_dead_letter,
        ]
        if self.topic_predictions is not None:
            topics.append(self.topic_predictions)
        if len(set(topics)) != len(topics):
            raise ValueError("the STREAMAL_TOPIC_* settings must name different topics")
        if self.pseudo_labels and self.task != "classification":
            raise ValueError(f"STREAMAL_PSEUDO_LABELS is for classification only (a pseudo-label is a class the "
                             f"model is sure of), not STREAMAL_TASK={self.task}: set it to false")
        if self.pseudo_labels and self.mode != "stream":
            raise ValueError(f"STREAMAL_PSEUDO_LABELS works in stream mode only (where it was measured), not "
                             f"STREAMAL_MODE={self.mode}: set it to false")
        protocol = self.security_protocol or "PLAINTEXT"
        if protocol.startswith("SASL_") and self.sasl_mechanism is None:
            raise ValueError(f"STREAMAL_SASL_MECHANISM is required with STREAMAL_SECURITY_PROTOCOL={protocol}")
        if self.sasl_mechanism is not None and not protocol.startswith("SASL_"):
            raise ValueError(
                "STREAMAL_SASL_MECHANISM needs STREAMAL_SECURITY_PROTOCOL=SASL_PLAINTEXT or SASL_SSL"
            )
        if self.sasl_mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512") and not (
            self.sasl_plain_username and self.sasl_plain_password
        ):
            raise ValueError(
                f"STREAMAL_SASL_MECHANISM={self.sasl_mechanism} needs "
                "STREAMAL_SASL_PLAIN_USERNAME and STREAMAL_SASL_PLAIN_PASSWORD"
            )
        ssl_set = [f for f in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_crlfile") if getattr(self, f)]
        if ssl_set and protocol not in ("SSL", "SASL_SSL"):
            raise ValueError(
                f"{env_name(ssl_set[0])} is set but STREAMAL_SECURITY_PROTOCOL={protocol} does not use SSL"
            )
        return self

    # ------------------------------------------------------------------ sources

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = _config_file.get()
        if path is None and os.environ.get(CONFIG_FILE_ENV):
            path = Path(os.environ[CONFIG_FILE_ENV])
        if path is None:
            return init_settings, env_settings
        return init_settings, env_settings, InitSettingsSource(settings_cls, read_config_file(path))

    # ------------------------------------------------------------------ use

    @property
    def bootstrap_list(self) -> list[str]:
        """``bootstrap_servers`` as a list of ``host:port``."""
        return self.bootstrap_servers.split(",")

    def kafka_security_kwargs(self) -> dict[str, Any]:
        """Security keyword arguments for kafka-python clients; only the settings that are set."""
        kwargs: dict[str, Any] = {}
        for name in _KAFKA_SECURITY:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, Path):
                value = str(value)
            kwargs[name] = value
        return kwargs

    def masked(self) -> dict[str, Any]:
        """Every setting as JSON-ready values for logging, secrets shown as ``**********``."""
        return self.model_dump(mode="json")


# ---------------------------------------------------------------------- loading


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) settings file.

    Keys are the setting names (``budget``), case-insensitive; the environment
    spelling (``STREAMAL_BUDGET``) is accepted too.
    """
    path = Path(path)
    where = f"{CONFIG_FILE_ENV}={path}"
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{where} cannot be read: {exc}") from None
    if suffix == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except (tomllib.TOMLDecodeError, RecursionError) as exc:  # RecursionError: nested hundreds deep
            raise SettingsError(f"{where} is not valid TOML: {exc}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            import yaml  # optional: only YAML files need PyYAML
        except ImportError:
            raise SettingsError(
                f"{where} is YAML, which needs PyYAML (pip install pyyaml); or write it as TOML"
            ) from None
        try:
            data = yaml.safe_load(text)
        except (yaml.YAMLError, RecursionError) as exc:
            raise SettingsError(f"{where} is not valid YAML: {exc}") from None
        data = {} if data is None else data
    else:
        raise SettingsError(f"{where} must end in .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise SettingsError(f"{where} must hold a table of settings, not {type(data).__name__}")
    settings: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).lower().removeprefix(ENV_PREFIX.lower())
        if name not in Settings.model_fields:
            raise SettingsError(f"{where} has an unknown setting {key!r}")
        settings[name] = value
    return settings


def load_settings(config_file: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build the :class:`Settings` from overrides, environment, file and defaults.

    ``config_file`` takes precedence over ``STREAMAL_CONFIG_FILE``. Overrides
    whose value is ``None`` are ignored, so a CLI can pass its options as they are.
    Raises :class:`SettingsError` naming every invalid setting.
    """
    for name in overrides:
        if name not in Settings.model_fields:
            raise SettingsError(f"unknown setting {name!r}")
    given = {name: value for name, value in overrides.items() if value is not None}
    token = _config_file.set(Path(config_file) if config_file is not None else None)
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise SettingsError("; ".join(_describe(err) for err in exc.errors(include_url=False))) from None
    except pydantic_settings.SettingsError as exc:
        raise SettingsError(str(exc)) from None
    finally:
        _config_file.reset(token)


def _describe(err: Any) -> str:
    """One pydantic error as ``STREAMAL_X must ..., got value``."""
    loc = err["loc"]
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if not loc:  # a check across settings: its message already names them
        return err["msg"].removeprefix("Value error, ")
    field = str(loc[0])
    if kind == "extra_forbidden":
        return f"unknown setting {field!r}"
    if kind == "value_error":
        rule = err["msg"].removeprefix("Value error, ")
    elif kind == "literal_error":
        rule = f"must be one of {ctx['expected']}"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        op = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}[kind]
        bound = next(iter(ctx.values()))
        rule = f"must be {op} {bound}"
    elif kind in ("int_parsing", "int_from_float", "int_type"):
        rule = "must be an integer"
    elif kind in ("float_parsing", "float_type"):
        rule = "must be a number"
    elif kind in ("bool_parsing", "bool_type"):
        rule = "must be true or false"
    elif kind == "finite_number":
        rule = "must be a finite number"
    elif kind == "path_not_file":
        rule = "must name an existing file"
    elif kind == "string_too_short":
        rule = "must not be empty"
    else:
        rule = err["msg"][:1].lower() + err["msg"][1:]
    if field in _SECRETS:
        return f"{env_name(field)} {rule}"
    return f"{env_name(field)} {rule}, got {_show(err.get('input'))}"


def _show(value: Any) -> str:
    if isinstance(value, str) and value and value.isprintable() and " " not in value:
        return value
    return repr(value)

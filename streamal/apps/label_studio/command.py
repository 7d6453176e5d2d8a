"""The ``streamal label-studio`` command: its settings and the process (the bridge's loop and its HTTP side).

Only click and pydantic are imported at module level, so that ``streamal
--help`` stays fast; the web server, HTTP client and Kafka come in when the
command runs.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

import click
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Environment variables of this command (the broker, topics, classes and text features come from streamal's own).
ENV_PREFIX = "STREAMAL_LABEL_STUDIO_"
_FLAGS = {"poll_s": "--poll", "timeout_s": "--timeout"}


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/") if value is not None else None


class LabelStudioSettings(BaseSettings):
    """What only ``streamal label-studio`` needs; each is a flag or a ``STREAMAL_LABEL_STUDIO_*`` variable."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, case_sensitive=False, env_ignore_empty=True,
                                      extra="forbid", frozen=True)

    #: Label Studio's address, e.g. http://localhost:8080.
    url: str
    #: A personal access token of the Label Studio user the bridge acts as (Account & Settings).
    token: Annotated[SecretStr, Field(min_length=8)]
    #: An existing project; unset: the project titled ``project_title``, made if there is none.
    project_id: Annotated[int, Field(ge=1)] | None = None
    #: Unset: "streamal <label-requests topic>" (cut to 50 characters).
    project_title: Annotated[str, Field(min_length=3, max_length=50)] | None = None  # Label Studio's bounds
    #: The address Label Studio reaches the bridge's /webhook at; unset: no webhook, polling only.
    webhook_url: str | None = None
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8090
    #: Seconds between polls of the open tasks (the fallback for webhooks) and retries while Label Studio is down.
    poll_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 10.0
    #: Seconds one call to Label Studio may take.
    timeout_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 30.0

    @field_validator("url", "webhook_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        return _http_url(value)


def load_label_studio_settings(**flags: Any) -> LabelStudioSettings:
    """Flags (``None`` = not given) over ``STREAMAL_LABEL_STUDIO_*`` variables; one line per mistake."""
    try:
        return LabelStudioSettings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            field = str(err["loc"][0]) if err["loc"] else "?"
            flag = _FLAGS.get(field, "--" + field.replace("_", "-"))
            message = "is required" if err["type"] == "missing" else err["msg"].removeprefix("Value error, ")
            problems.append(f"{flag} ({ENV_PREFIX}{field.upper()}) {message}")
        raise click.ClickException("; ".join(problems)) from None


@click.command("label-studio")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
              help="TOML/YAML settings file of the service (broker, topics, classes, text features).")
@click.option("--bootstrap-servers", help="Kafka bootstrap servers (STREAMAL_BOOTSTRAP_SERVERS).")
@click.option("--url", help="Label Studio's address, e.g. http://localhost:8080 (STREAMAL_LABEL_STUDIO_URL).")
@click.option("--token", help="A personal access token; better given as STREAMAL_LABEL_STUDIO_TOKEN (a flag shows "
                              "in the process list).")
@click.option("--project-id", type=click.IntRange(1), help="Use this existing project (its labeling config stays "
                                                           "as it is).  [default: the project titled --project-title]")
@click.option("--project-title", help="The bridge's project, made if there is none.  "
                                      "[default: streamal <label-requests topic>]")
@click.option("--webhook-url", metavar="URL",
              help="Where Label Studio reaches this bridge's /webhook, e.g. http://bridge:8090/webhook; "
                   "unset: no webhook, annotations are polled.")
@click.option("--host", help="Address to listen on for the webhook, /status and /healthz.  [default: 127.0.0.1]")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on.  [default: 8090]")
@click.option("--poll", "poll_s", type=click.FloatRange(0, min_open=True),
              help="Seconds between polls of the open tasks (the fallback when a webhook does not come).  "
                   "[default: 10]")
def label_studio(config_file: str | None, bootstrap_servers: str | None, url: str | None, token: str | None,
                 project_id: int | None, project_title: str | None, webhook_url: str | None, host: str | None,
                 port: int | None, poll_s: float | None) -> None:
    """Bridge label requests to Label Studio tasks, and finished annotations back to labels.

    Each label request becomes a task of a Label Studio project (the model's
    class and probability as a pre-annotation, the informativeness score as
    the order of the tab "streamal: most informative first", the instance id as
    the task's key); each finished annotation becomes one label on the labels
    topic, with the annotator's email, exactly once, also across restarts.
    Label Studio calls the bridge's /webhook when an annotation is made
    (--webhook-url); the open tasks are also polled (--poll), which catches
    what a webhook missed.

    The token is a personal access token of the Label Studio user the bridge
    acts as: in Label Studio, Account & Settings -> Personal Access Token ->
    Create; give it as STREAMAL_LABEL_STUDIO_TOKEN. Broker, topics, classes
    and text features come from the same STREAMAL_* settings as `streamal
    serve`.
    """
    from streamal.service.errors import SettingsError
    from streamal.service.settings import load_settings

    options = load_label_studio_settings(url=url, token=token, project_id=project_id, project_title=project_title,
                                         webhook_url=webhook_url, host=host, port=port, poll_s=poll_s)
    try:
        settings = load_settings(config_file, bootstrap_servers=bootstrap_servers)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    run(settings, options)


def build(settings: Any, options: LabelStudioSettings, *, webhook_secret: str | None = None) -> tuple[Any, Any]:
    """The ASGI app on the broker of ``settings`` and Label Studio of ``options``; and its bridge, for tests."""
    from streamal.apps.annotate.classes import ClassBook
    from streamal.apps.annotate.feed import LabelWriter
    from streamal.apps.label_studio.bridge import Bridge
    from streamal.apps.label_studio.client import LabelStudioClient
    from streamal.apps.label_studio.feed import TopicFeed
    from streamal.apps.label_studio.ledger import Ledger
    from streamal.apps.label_studio.web import create_app

    ledger = Ledger(max_age_s=settings.pending_max_age_s, max_pending=settings.pending_max)
    classes = ClassBook(settings.classes, settings.task)
    client = LabelStudioClient(options.url, options.token, timeout_s=options.timeout_s)
    feed = TopicFeed(settings, ledger, classes)
    bridge = Bridge(settings, client, ledger, classes, LabelWriter(settings), feed=feed,
                    project_id=options.project_id,
                    project_title=options.project_title or f"streamal {settings.topic_label_requests}"[:50],
                    webhook_url=options.webhook_url,
                    webhook_secret=webhook_secret or secrets.token_urlsafe(24), poll_s=options.poll_s)
    feed.on_request = bridge.wake.set  # a new request becomes a task at once, not at the next poll
    return create_app(bridge), bridge


def run(settings: Any, options: LabelStudioSettings) -> None:
    """Run the bridge until SIGINT/SIGTERM."""
    import uvicorn

    from streamal.service.logs import configure

    configure(json_lines=False, level="INFO")
    app, _ = build(settings, options)
    where = f"http://{options.host}:{options.port}"
    hook = f"webhook {options.webhook_url}" if options.webhook_url else "no webhook (--webhook-url): polling only"
    click.echo(f"streamal label-studio: {options.url}, {hook}, polling every {options.poll_s:g} s; "
               f"{where}/status", err=True)
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning", access_log=False)

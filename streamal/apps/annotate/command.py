"""The ``streamal annotate`` command: settings, the refusal to run open, and the web server.

Only click is imported at module level, so that ``streamal --help`` stays
fast; the web server and Kafka come in when the command runs.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

import click
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Environment variables of this command (the broker and topics come from streamal's own settings).
ENV_PREFIX = "STREAMAL_ANNOTATE_"


class AnnotateSettings(BaseSettings):
    """What only ``streamal annotate`` needs; each is a flag or a ``STREAMAL_ANNOTATE_*`` variable."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, case_sensitive=False, env_ignore_empty=True,
                                      extra="forbid", frozen=True)

    token: Annotated[SecretStr, Field(min_length=8)] | None = None
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    lease_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 300.0
    service_metrics: str | None = None
    annotator_header: str | None = None

    @field_validator("service_metrics")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


def load_annotate_settings(**flags: Any) -> AnnotateSettings:
    """Flags (``None`` = not given) over ``STREAMAL_ANNOTATE_*`` variables over defaults; one line per mistake."""
    try:
        return AnnotateSettings(**{k: v for k, v in flags.items() if v is not None})
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            field = str(err["loc"][0]) if err["loc"] else "?"
            flag = "--lease" if field == "lease_s" else "--" + field.replace("_", "-")
            problems.append(f"{flag} ({ENV_PREFIX}{field.upper()}): {err['msg']}")
        raise click.ClickException("; ".join(problems)) from None


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
              help="TOML/YAML settings file of the service (broker, topics, classes).")
@click.option("--bootstrap-servers", help="Kafka bootstrap servers (STREAMAL_BOOTSTRAP_SERVERS).")
@click.option("--host", help="Address to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on.  [default: 8080]")
@click.option("--token", help="The shared token every request must carry; better given as STREAMAL_ANNOTATE_TOKEN "
                              "(a flag shows in the process list).")
@click.option("--no-auth", is_flag=True, help="Serve without a token: only behind the team's proxy, which decides "
                                              "who may open the page.")
@click.option("--lease", "lease_s", type=click.FloatRange(0, min_open=True),
              help="Seconds a request stays reserved for one annotator.  [default: 300]")
@click.option("--service-metrics", metavar="URL",
              help="The service's /metrics URL, for its budget and realised label rate on the page.")
@click.option("--annotator-header", metavar="NAME",
              help="A header the proxy sets to the annotator's name (e.g. X-Forwarded-User); else a name chosen on "
                   "the page.")
def annotate(config_file: str | None, bootstrap_servers: str | None, host: str | None, port: int | None,
             token: str | None, no_auth: bool, lease_s: float | None, service_metrics: str | None,
             annotator_header: str | None) -> None:
    """Serve a labeling page for people: the most informative label requests first.

    Reads the label-requests topic (and the labels and training topics, so an
    answered request is never offered), reserves each request for one
    annotator at a time (--lease), and sends every answer to the labels topic
    exactly once. Every request must carry the shared token
    STREAMAL_ANNOTATE_TOKEN: open http://HOST:PORT/?token=... once, a cookie
    keeps you signed in. Without a token it refuses to start unless --no-auth
    is given (behind the team's proxy). Broker and topics come from the same
    STREAMAL_* settings as `streamal serve`.
    """
    from streamal.service.errors import SettingsError
    from streamal.service.settings import load_settings

    options = load_annotate_settings(host=host, port=port, token=token, lease_s=lease_s,
                                     service_metrics=service_metrics, annotator_header=annotator_header)
    if options.token is None and not no_auth:
        raise click.ClickException(
            "no token: set STREAMAL_ANNOTATE_TOKEN (or --token) to a long random string, e.g. from "
            "`python -c 'import secrets; print(secrets.token_urlsafe())'`; or, only behind the team's proxy "
            "that checks who may open the page, start with --no-auth")
    if options.token is not None and no_auth:
        raise click.ClickException("--no-auth and a token (STREAMAL_ANNOTATE_TOKEN or --token) contradict each "
                                   "other: give one of them")
    try:
        settings = load_settings(config_file, bootstrap_servers=bootstrap_servers)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    run(settings, options)


def run(settings: Any, options: AnnotateSettings) -> None:
    """Build the page on the broker of ``settings`` and serve it until SIGINT/SIGTERM."""
    import uvicorn

    from streamal.apps.annotate.web import build
    from streamal.service.logs import configure

    configure(json_lines=False, level="INFO")
    app, _ = build(settings, options)
    where = f"http://{options.host}:{options.port}/"
    if options.token is not None:
        click.echo(f"streamal annotate on {where} — sign in once with {where}?token=$STREAMAL_ANNOTATE_TOKEN", err=True)
    else:
        click.echo(f"streamal annotate on {where} without a token (--no-auth): keep it behind the team's proxy",
                   err=True)
        if not _loopback(options.host):
            click.echo(f"warning: --host {options.host} is reachable from other machines and the page has no token",
                       err=True)
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning", access_log=False)

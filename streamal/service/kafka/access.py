"""Fail fast, and clearly, when the broker refuses this client's TLS or SASL settings.

kafka-python 3.0 retries a refused login or TLS handshake until its bootstrap
timeout and then says only "Unable to bootstrap"; :func:`check_access` opens
one connection first and names the cause.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final

import kafka.errors

from streamal.service.errors import KafkaAccessError

#: How long the access check before a secured client (:func:`check_access`) may take: one
#: connection (TCP, TLS, ApiVersions, SASL) per bootstrap server in turn. It takes well under
#: a second against a local broker on the loaded 2-core machine (TLS + SCRAM-SHA-512
#: included); a broker that does not answer within this time is left to the client's own
#: bootstrap (30 s), as without the check, so a broker that starts late is still waited for.
ACCESS_CHECK_S: Final = 10.0

_SECRET_KEYS: Final = ("sasl_plain_password", "ssl_password")
#: Access checks that passed in this process: (bootstrap servers, security settings).
_passed: set[tuple[Any, ...]] = set()
_KAFKA_NET_LOGGERS: Final = ("kafka.net.manager", "kafka.net.connection", "kafka.net.transport")


def _security(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k.startswith(("security_", "sasl_", "ssl_"))}


def check_access(config: Mapping[str, Any], timeout_s: float = ACCESS_CHECK_S) -> None:
    """Raise :class:`KafkaAccessError` if the broker refuses the SSL or SASL settings in ``config``.

    kafka-python 3.0 treats a failed SASL authentication or TLS handshake like an
    unreachable broker: it retries until its bootstrap timeout (30 s) and then says
    only "Unable to bootstrap", the cause left in its logs. So before a client with
    ``security_protocol`` other than PLAINTEXT is made, one connection is opened to
    the bootstrap servers in turn, within ``timeout_s``, and a refusal is raised at
    once with a message that names the cause and the settings concerned, never a
    secret. Passes once per process and configuration; a broker that does not answer
    is left to the client's own bootstrap, as before.
    """
    security = _security(config)
    if (security.get("security_protocol") or "PLAINTEXT") == "PLAINTEXT":
        return
    key = (tuple(config["bootstrap_servers"]), tuple(sorted((k, repr(v)) for k, v in security.items())))
    if key in _passed:
        return
    where, error = _first_connection({**security, "bootstrap_servers": list(config["bootstrap_servers"]),
                                      "client_id": config.get("client_id", "streamal")}, timeout_s)
    if error is None:
        _passed.add(key)
        return
    refusal = describe_refusal(error, security, where)
    if refusal is not None:
        raise KafkaAccessError(refusal) from None  # the chain would only repeat it, in kafka-python's words


def _first_connection(config: dict[str, Any], timeout_s: float) -> tuple[str, BaseException | None]:
    """``(server, None)`` for the first bootstrap server that accepts a connection, else the last
    server tried and its error (a refusal ends the search: another server would refuse too)."""
    deadline = time.monotonic() + timeout_s
    where, error = ",".join(config["bootstrap_servers"]), None
    for server in config["bootstrap_servers"]:
        for _ in range(_SASL_ATTEMPTS):
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                return where, error or kafka.errors.KafkaTimeoutError(f"no answer within {timeout_s:g} s")
            where, error = server, _connect_once({**config, "bootstrap_servers": [server]}, remaining_s)
            if not isinstance(error, _ClosedDuringSasl):
                break
        if error is None:
            return where, None
        if describe_refusal(error, config, where) is not None:
            break
    return where, error


#: How often a connection that the broker closed during SASL authentication is tried again,
#: hoping to read the broker's own reason (see :class:`_ClosedDuringSasl`).
_SASL_ATTEMPTS: Final = 3


class _ClosedDuringSasl(kafka.errors.KafkaConnectionError):
    """The broker closed the connection during SASL authentication, the reason unread.

    Apache Kafka answers refused credentials with a SaslAuthenticate error, then
    closes the connection after ``connection.failed.authentication.delay.ms``
    (100 ms). kafka-python 3.0.12 drops data that arrives in the same read as the
    end of the stream, so on a busy machine the answer is lost and only the close
    is seen (2 of 3 tries while the tests ran): read as refused credentials.
    """


class _ClosedAtFirstRequest(kafka.errors.KafkaConnectionError):
    """The broker closed a TLS connection without SASL at its first request (a metadata request)
    after the handshake and ApiVersions went through: what a SASL_SSL listener does."""


def _connect_once(config: dict[str, Any], timeout_s: float) -> BaseException | None:
    """Open one connection to the (single) bootstrap server of ``config`` the way a client
    does (TLS context, ApiVersions, SASL exchange) and ask it for metadata; its error,
    ``None`` if it succeeds (or the metadata answer is merely late: the client decides then).

    Drives kafka-python's connection manager on this thread, its error logs dropped
    (the error is returned instead). Reaches into kafka-python: this package is the
    one place that knows it.
    """
    from kafka.net.compat import KafkaNetClient

    deadline = time.monotonic() + timeout_s
    timeout_ms = timeout_s * 1000
    with _quiet_on_this_thread():
        client = KafkaNetClient(**config)
        manager, net = client._manager, client._net
        try:
            broker = manager.cluster.bootstrap_brokers()[0]
            conn = manager.get_connection(broker.node_id, timeout_ms=timeout_ms, refresh_metadata_on_err=False)
            net.poll(timeout_ms=timeout_ms, future=conn.init_future)
            if not conn.init_future.is_done:
                return kafka.errors.KafkaTimeoutError(f"no answer within {timeout_s:.1f} s")
            error = conn.init_future.exception
            if (isinstance(error, kafka.errors.KafkaConnectionError) and conn.sasl_enabled
                    and conn.broker_version_data is not None):  # past ApiVersions: in the SASL exchange
                return _ClosedDuringSasl(str(error))
            if error is not None:
                return error
            remaining_ms = max(1.0, (deadline - time.monotonic()) * 1000)
            answer = conn.send_request(manager.cluster.metadata_request(), request_timeout_ms=remaining_ms)
            net.poll(timeout_ms=remaining_ms, future=answer)
            if answer.failed() and isinstance(answer.exception, kafka.errors.KafkaConnectionError) \
                    and not conn.sasl_enabled:
                return _ClosedAtFirstRequest(str(answer.exception))
            return None
        finally:
            manager.close()
            net.close()


class _ThisThread(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.thread != self.thread


@contextmanager
def _quiet_on_this_thread() -> Iterator[None]:
    """Drop what kafka-python's network layer logs on this thread (other threads' clients log as usual)."""
    quiet = _ThisThread()
    loggers = [logging.getLogger(name) for name in _KAFKA_NET_LOGGERS]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


def describe_refusal(error: BaseException, security: Mapping[str, Any], where: str) -> str | None:
    """One line naming why the broker at ``where`` refused a connection and what to check,
    or ``None`` when ``error`` is no refusal (unreachable, timed out: worth retrying)."""
    protocol = security.get("security_protocol") or "PLAINTEXT"
    mechanism = security.get("sasl_mechanism")
    user = security.get("sasl_plain_username")
    who = f"user {user!r} with {mechanism}" if user else f"{mechanism}"
    if isinstance(error, kafka.errors.SaslAuthenticationFailedError):
        message = (f"Kafka authentication failed at {where}: the broker refused {who} ({_broker_says(error)}); "
                   "check STREAMAL_SASL_PLAIN_USERNAME and STREAMAL_SASL_PLAIN_PASSWORD")
    elif isinstance(error, _ClosedDuringSasl):
        message = (f"Kafka authentication failed at {where}: the broker closed the connection while "
                   f"authenticating {who}, as it does when it refuses the credentials; "
                   "check STREAMAL_SASL_PLAIN_USERNAME and STREAMAL_SASL_PLAIN_PASSWORD")
    elif isinstance(error, _ClosedAtFirstRequest):
        message = (f"Kafka at {where} closed the connection at the first request after the {protocol} "
                   "handshake, as a listener that wants SASL authentication does; check "
                   f"STREAMAL_SECURITY_PROTOCOL={protocol} (SASL_SSL?) and STREAMAL_SASL_*")
    elif isinstance(error, kafka.errors.UnsupportedSaslMechanismError):
        message = (f"Kafka authentication failed at {where}: the broker does not offer SASL mechanism "
                   f"{mechanism} ({_broker_says(error)}); check STREAMAL_SASL_MECHANISM")
    elif isinstance(tls := _ssl_cause(error), ssl.SSLCertVerificationError):
        reason = getattr(tls, "verify_message", None) or tls.reason or str(tls)
        if getattr(tls, "verify_code", None) == 62 or "hostname" in reason.lower():  # X509_V_ERR_HOSTNAME_MISMATCH
            message = (f"TLS: the certificate of the broker at {where} is not valid for that name ({reason}); "
                       "use a host name the certificate holds in STREAMAL_BOOTSTRAP_SERVERS "
                       "(or STREAMAL_SSL_CHECK_HOSTNAME=false)")
        else:
            cafile = security.get("ssl_cafile")
            trusted = f"STREAMAL_SSL_CAFILE={cafile}" if cafile else "the system's CAs (STREAMAL_SSL_CAFILE is unset)"
            message = (f"TLS: the certificate of the broker at {where} is not trusted ({reason}); "
                       f"{trusted} must hold the CA that signed it")
    elif isinstance(tls, ssl.SSLError):
        message = (f"TLS with the broker at {where} failed ({tls.reason or tls}); check that it is a "
                   f"{protocol} listener (STREAMAL_SECURITY_PROTOCOL) and the STREAMAL_SSL_* files")
    else:
        return None
    return _scrub(message, security)


def _broker_says(error: BaseException) -> str:
    """kafka-python's ``[Error 58] SaslAuthenticationFailedError: <the broker's message>``: the message."""
    return str(error).rsplit(": ", 1)[-1] or type(error).__name__


def _ssl_cause(error: BaseException) -> ssl.SSLError | None:
    """The :class:`ssl.SSLError` behind ``error`` (kafka-python wraps it as ``Handshake failed: …``)."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None or isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _scrub(message: str, security: Mapping[str, Any]) -> str:
    """``message`` with any secret of ``security`` masked, should a library ever echo one."""
    for key in _SECRET_KEYS:
        secret = security.get(key)
        if secret:
            message = message.replace(str(secret), "**********")
    return message

"""The web side of ``streamal annotate``: a Starlette app, one page and a small JSON API.

Every request carries the shared token (see :class:`TokenGate`), unless the
operator started it with ``--no-auth`` behind the team's proxy.

==========================  =====================================================
``GET /``                   the page (``/?token=…`` once: sets the cookie, then redirects)
``GET /api/next``           the annotator's lease: a request to label, or why there is none
``POST /api/answer``        ``{"lease", "label"}``: the label, sent exactly once per lease
``POST /api/skip``          ``{"lease"}``: back to the queue; ``/api/dont-know``, ``/api/release`` alike
``GET /api/stats``          queue size, labels per hour, the service's budget and rate
``POST /api/name``          ``{"name"}``: the annotator's name, kept in a cookie
==========================  =====================================================

Outcomes of an answer: 200 ``saved`` (also for a repeated submit of the same
lease, ``duplicate: true``, nothing sent again), 409 ``already_answered``,
410 ``unknown_lease`` (too old to tell: the page moves on), 422 a label the
service would refuse, 503 ``not_saved`` (the broker did not take it; the page
retries with the same lease key).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import time
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import orjson
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from streamal.apps.annotate.classes import ClassBook
from streamal.apps.annotate.command import AnnotateSettings
from streamal.apps.annotate.feed import Feed, LabelWriter, ServiceFigures
from streamal.apps.annotate.queue import AnnotationQueue
from streamal.apps.annotate.view import present
from streamal.service.errors import DeliveryError, InvalidMessage
from streamal.service.messages import parse_label_request
from streamal.service.settings import Settings

TOKEN_COOKIE = "streamal_token"
NAME_COOKIE = "streamal_annotator"
MAX_NAME_CHARS = 64
_NO_STORE = {"Cache-Control": "no-store"}
# Offline page, inline script and style only; never framed (labels are clicks: no clickjacking);
# no Referer (the login address carries the token).
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _digest(token: str) -> str:
    """What the cookie holds: a digest of the token, not the token."""
    return hmac.new(token.encode(), b"streamal-annotate-cookie", hashlib.sha256).hexdigest()


class TokenGate:
    """ASGI middleware: the shared token, from ``Authorization: Bearer``, ``X-Streamal-Token`` or the cookie.

    ``?token=`` on any GET sets the cookie (HttpOnly, SameSite=Strict) and
    redirects to the same URL without it. No token given: 401; a wrong one: 403.
    """

    def __init__(self, app: ASGIApp, token: SecretStr | None) -> None:
        self.app = app
        self.token = token.get_secret_value() if token is not None else None
        self.cookie = _digest(self.token) if self.token is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        login = request.query_params.get("token")
        if login is not None and request.method == "GET":
            response = self._login(request, login)
        else:
            header = request.headers.get("authorization", "")
            given = header[7:] if header.lower().startswith("bearer ") else request.headers.get("x-streamal-token")
            if given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
                await self.app(scope, receive, send)
                return
            cookie = request.cookies.get(TOKEN_COOKIE)
            if cookie is not None and hmac.compare_digest(cookie.encode(), self.cookie.encode()):  # type: ignore[union-attr]
                await self.app(scope, receive, send)
                return
            if given is None and cookie is None:
                response = PlainTextResponse(
                    "401: this page needs the team's token. Open the login link you were given "
                    "(this address with ?token=...) once; a cookie keeps you signed in.\n", 401)
            else:
                response = PlainTextResponse("403: wrong token.\n", 403)
        await response(scope, receive, send)

    def _login(self, request: Request, given: str) -> Response:
        if not hmac.compare_digest(given.encode(), self.token.encode()):  # type: ignore[union-attr]
            return PlainTextResponse("403: wrong token.\n", 403)
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        target = request.url.path + (f"?{urllib.parse.urlencode(rest)}" if rest else "")
        response = RedirectResponse(target, 303, headers=_PAGE_HEADERS)
        response.set_cookie(TOKEN_COOKIE, self.cookie or "", max_age=30 * 86400, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response


class Annotate:
    """The running labeling page: the queue, what is known about classes, the broker sides."""

    def __init__(self, settings: Settings, queue: AnnotationQueue, classes: ClassBook, writer: LabelWriter,
                 figures: ServiceFigures, feed: Feed | None = None, annotator_header: str | None = None) -> None:
        self.settings = settings
        self.queue = queue
        self.classes = classes
        self.writer = writer
        self.figures = figures
        self.feed = feed
        self.annotator_header = annotator_header
        self.by_annotator: Counter[str] = Counter()
        self._answering: asyncio.Lock | None = None  # answer -> send -> confirm/undo, one at a time

    # ------------------------------------------------------------------ who is asking

    def annotator(self, request: Request) -> tuple[str | None, bool]:
        """The annotator's name and whether the proxy set it (then the page cannot change it)."""
        if self.annotator_header:
            name = _clean_name(request.headers.get(self.annotator_header, ""))
            if name:
                return name, True
        return _clean_name(urllib.parse.unquote(request.cookies.get(NAME_COOKIE, ""))), False

    @property
    def caught_up(self) -> bool:
        return self.feed is None or self.feed.caught_up.is_set()

    # ------------------------------------------------------------------ endpoints

    async def page(self, request: Request) -> Response:
        return HTMLResponse(_page_html(), headers={**_NO_STORE, **_PAGE_HEADERS})

    async def next(self, request: Request) -> Response:
        name, _ = self.annotator(request)
        if not name:
            return JSONResponse({"status": "need_name"}, 409, headers=_NO_STORE)
        if not self.caught_up:
            return JSONResponse({"status": "catching_up", "message": self.feed.status if self.feed else ""},
                                headers=_NO_STORE)
        lease = self.queue.lease(name)
        if lease is None:
            return JSONResponse({"status": "empty"}, headers=_NO_STORE)
        offered = self.classes.offered()
        item = self._present(lease.item.raw, lease.id)
        return JSONResponse({
            "status": "ok", "lease": lease.key, "expires_in": max(0.0, lease.expires_at - self.queue.clock()),
            "item": item, "classes": offered, "task": self.settings.task,
            "preselect": item.get("prediction") if item.get("prediction") in offered else None,
            "free_entry": self.classes.free_entry_note(),
        }, headers=_NO_STORE)

    def _present(self, raw: bytes, ident: str) -> dict[str, Any]:
        try:
            return present(parse_label_request(raw, self.settings.max_message_bytes),
                           self.settings.text_features, time.time())
        except (InvalidMessage, ValueError, TypeError) as exc:  # read fine once; never let one request break the page
            return {"id": ident, "texts": [{"name": "(not shown)", "text": f"this request cannot be shown: {exc}",
                                            "cut": False}], "table": [], "hidden_features": 0, "prediction": None,
                    "proba": [], "proba_rest": 0.0, "score": None, "age_s": None}

    async def answer(self, request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        key, label = body.get("lease"), body.get("label")
        if not isinstance(key, str) or not isinstance(label, (str, int, float)) or isinstance(label, bool):
            return JSONResponse({"status": "bad_request", "error": "send {\"lease\": str, \"label\": str}"}, 400)
        try:
            value = self.classes.parse(str(label))
        except ValueError as exc:
            return JSONResponse({"status": "refused", "error": str(exc)}, 422)
        if self._answering is None:
            self._answering = asyncio.Lock()
        async with self._answering:
            outcome = self.queue.answer(key, value)
            if outcome.status == "send":
                assert outcome.id is not None and outcome.label is not None
                try:
                    await run_in_threadpool(self.writer.send, outcome.id, outcome.label, outcome.annotator)
                except Exception as exc:  # not stored (DeliveryError), or never handed over: a retry sends it
                    self.queue.undo(key)
                    why = str(exc) if isinstance(exc, DeliveryError) else type(exc).__name__
                    return JSONResponse({"status": "not_saved", "error": f"the broker did not store it: {why}"}, 503)
                self.queue.confirm(key)
                self.by_annotator[outcome.annotator or ""] += 1
                return JSONResponse({"status": "saved", "id": outcome.id, "label": outcome.label, "duplicate": False})
        if outcome.status == "saved":
            return JSONResponse({"status": "saved", "id": outcome.id, "label": outcome.label, "duplicate": True})
        code = 409 if outcome.status == "already_answered" else 410
        return JSONResponse({"status": outcome.status, "id": outcome.id}, code)

    async def put_back(self, request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        key = body.get("lease")
        if not isinstance(key, str):
            return JSONResponse({"status": "bad_request", "error": "send {\"lease\": str}"}, 400)
        action = request.url.path.rsplit("/", 1)[-1]
        done = {"skip": self.queue.skip, "dont-know": self.queue.dont_know, "release": self.queue.release}[action](key)
        return JSONResponse({"status": "ok" if done else "no_lease"})

    async def stats(self, request: Request) -> Response:
        name, fixed = self.annotator(request)
        service = await run_in_threadpool(self.figures.read)
        counts = self.queue.counts
        malformed = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("malformed_requests:")}
        return JSONResponse({
            "annotator": name, "name_fixed": fixed, "status": self.feed.status if self.feed else "live",
            "caught_up": self.caught_up, "queue": self.queue.size(), "leased": self.queue.leased(),
            "labels_per_hour": round(self.queue.labels_per_hour(), 1), "answered_here": counts["answered_here"],
            "answered_by_you": self.by_annotator[name or ""], "malformed_requests": sum(malformed.values()),
            "malformed_by_reason": malformed, "too_old": counts["requests_too_old"],
            "leases_expired": counts["leases_expired"], "lease_s": self.queue.lease_s, "service": service,
            "capacity_per_hour": self.settings.labels_per_hour,
        }, headers=_NO_STORE)

    async def set_name(self, request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Response):
            return body
        name = _clean_name(body.get("name"))
        if not name:
            return JSONResponse({"status": "refused", "error": f"a name of 1 to {MAX_NAME_CHARS} printable "
                                                               "characters, please"}, 422)
        response = JSONResponse({"status": "ok", "name": name})
        response.set_cookie(NAME_COOKIE, urllib.parse.quote(name), max_age=365 * 86400, samesite="strict",
                            secure=request.url.scheme == "https")
        return response


@functools.cache
def _page_html() -> str:
    return resources.files("streamal.apps.annotate").joinpath("page.html").read_text(encoding="utf-8")


def _clean_name(value: object) -> str | None:
    """A usable annotator name, or ``None``: printable, at most :data:`MAX_NAME_CHARS` characters."""
    if not isinstance(value, str):
        return None
    name = " ".join(value.split())
    return name if 0 < len(name) <= MAX_NAME_CHARS and name.isprintable() else None


async def _body(request: Request) -> dict[str, Any] | Response:
    """A small JSON object, or the error response. JSON only: a cross-site form cannot send it."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return JSONResponse({"status": "bad_request", "error": "send application/json"}, 415)
    raw = await request.body()
    if len(raw) > 10_000:
        return JSONResponse({"status": "bad_request", "error": "too large"}, 413)
    try:
        data = orjson.loads(raw)
    except ValueError:
        return JSONResponse({"status": "bad_request", "error": "malformed JSON"}, 400)
    if not isinstance(data, dict):
        return JSONResponse({"status": "bad_request", "error": "send a JSON object"}, 400)
    return data


def create_app(annotate: Annotate, token: SecretStr | None) -> ASGIApp:
    """The ASGI app; ``token=None`` only with ``--no-auth`` (the command refuses it otherwise)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if annotate.feed is not None:
            annotate.feed.start()
        try:
            yield
        finally:
            if annotate.feed is not None:
                annotate.feed.close()
            await run_in_threadpool(annotate.writer.close)

    routes = [
        Route("/", annotate.page),
        Route("/api/next", annotate.next),
        Route("/api/answer", annotate.answer, methods=["POST"]),
        Route("/api/skip", annotate.put_back, methods=["POST"]),
        Route("/api/dont-know", annotate.put_back, methods=["POST"]),
        Route("/api/release", annotate.put_back, methods=["POST"]),
        Route("/api/stats", annotate.stats),
        Route("/api/name", annotate.set_name, methods=["POST"]),
    ]
    return TokenGate(Starlette(routes=routes, lifespan=lifespan), token)


def build(settings: Settings, options: AnnotateSettings) -> tuple[ASGIApp, Annotate]:
    """The app on the broker and topics of ``settings``; the :class:`Annotate` behind it, for tests."""
    queue = AnnotationQueue(lease_s=options.lease_s, max_age_s=settings.pending_max_age_s,
                            max_pending=settings.pending_max)
    classes = ClassBook(settings.classes, settings.task)
    annotate = Annotate(settings, queue, classes, LabelWriter(settings), ServiceFigures(options.service_metrics),
                        Feed(settings, queue, classes), options.annotator_header)
    return create_app(annotate, options.token), annotate

"""The bridge's small HTTP side: Label Studio's webhook, and the bridge's state for people and probes.

==========================  =====================================================
``POST /webhook``           Label Studio's ANNOTATION_CREATED / ANNOTATIONS_CREATED /
                            ANNOTATION_UPDATED: the tasks it names are read at once
``GET /healthz``            200 while the bridge's loop runs
``GET /status``             JSON: the project, the webhook, requests waiting, open tasks, outcome counts
==========================  =====================================================

A webhook must carry the header ``X-Streamal-Webhook`` with the secret the
bridge registered with it at start-up (403 otherwise). It answers at once
(Label Studio waits one second by default, WEBHOOK_TIMEOUT); the tasks are
read on the bridge's thread, from the API: a webhook's own content is never
sent as a label, so a repeated delivery is harmless (counted ``duplicate``).
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from streamal.apps.label_studio.bridge import Bridge, webhook_task_ids
from streamal.apps.label_studio.project import WEBHOOK_ACTIONS, WEBHOOK_HEADER

#: The largest webhook body read (Label Studio sends the task's data with it).
MAX_WEBHOOK_BYTES = 16 * 1024 * 1024


class BridgeWeb:
    """The endpoints over one :class:`Bridge`."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge

    async def webhook(self, request: Request) -> Response:
        secret = self.bridge.webhook_secret
        if secret is None or self.bridge.webhook_url is None:
            return JSONResponse({"status": "no_webhook", "error": "no webhook is configured "
                                 "(STREAMAL_LABEL_STUDIO_WEBHOOK_URL)"}, 404)
        given = request.headers.get(WEBHOOK_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            self.bridge.ledger.count("webhooks_refused")
            return JSONResponse({"status": "forbidden", "error": f"wrong or missing {WEBHOOK_HEADER}"}, 403)
        raw = await request.body()
        if len(raw) > MAX_WEBHOOK_BYTES:
            return JSONResponse({"status": "bad_request", "error": "too large"}, 413)
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return JSONResponse({"status": "bad_request", "error": "malformed JSON"}, 400)
        if not isinstance(payload, dict):
            return JSONResponse({"status": "bad_request", "error": "send a JSON object"}, 400)
        if payload.get("action") not in WEBHOOK_ACTIONS:
            self.bridge.ledger.count("webhooks_ignored")
            return JSONResponse({"status": "ignored", "action": payload.get("action")})
        tasks = webhook_task_ids(payload)
        self.bridge.ledger.count("webhooks_received")
        self.bridge.hook(tasks)
        return JSONResponse({"status": "queued", "tasks": tasks})

    async def healthz(self, request: Request) -> Response:
        alive = self.bridge.alive
        return JSONResponse({"alive": alive}, 200 if alive else 503)

    async def status(self, request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(self.snapshot))

    def snapshot(self) -> dict[str, Any]:
        bridge, ledger = self.bridge, self.bridge.ledger
        project = bridge.project or {}
        return {
            "status": bridge.status,
            "label_studio": bridge.client.url,
            "project": {"id": project.get("id"), "title": project.get("title"),
                        "config": "the bridge's" if bridge.config and bridge.config.managed else "its own"}
            if project else None,
            "webhook": {"url": bridge.webhook_url, "registered": bridge.site.webhook_registered},
            "poll_s": bridge.poll_s,
            "requests_waiting": ledger.pending_count(),
            "open_tasks": len(ledger.open_tasks()),
            "answered_ids": ledger.answered_count(),
            "counts": dict(sorted(ledger.counts.items())),
        }


def create_app(bridge: Bridge) -> Starlette:
    """The ASGI app; its lifespan starts the topic feed and the bridge's loop, and stops them."""
    web = BridgeWeb(bridge)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if bridge.feed is not None:
            bridge.feed.start()
        bridge.start()
        try:
            yield
        finally:
            await run_in_threadpool(bridge.close)
            if bridge.feed is not None:
                await run_in_threadpool(bridge.feed.close)
            await run_in_threadpool(bridge.writer.close)

    return Starlette(routes=[
        Route("/webhook", web.webhook, methods=["POST"]),
        Route("/healthz", web.healthz),
        Route("/status", web.status),
    ], lifespan=lifespan)

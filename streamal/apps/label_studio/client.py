"""Label Studio's REST API over plain HTTP (the standard library's urllib: no SDK, no new dependency).

Authentication: a personal access token (PAT, Label Studio ≥ 1.18; the only
kind a new organization allows in 1.23). A person makes one in Label Studio:
the user menu (top right) -> Account & Settings -> Personal Access Token ->
Create, and copies it at once (it is shown once); the bridge acts as that
user, who must be a member of the project's organization. It is signed with
Label Studio's ``SECRET_KEY`` (from its environment, else kept in its data
directory's ``.env``): a new key makes every token invalid. A PAT is a
long-lived JWT *refresh* token:
``POST /api/token/refresh/`` with ``{"refresh": PAT}`` gives an access token
valid for about five minutes, sent as ``Authorization: Bearer``. The client
gets one before the first call, again shortly before it runs out (its ``exp``
claim) and once more on a 401. A legacy token (40 hex characters, only where
an organization turned legacy tokens back on) is sent as ``Authorization:
Token`` as it is.

Errors: :class:`LabelStudioUnavailable` when Label Studio cannot be reached or
answers 5xx/429 (try again later: nothing was decided), :class:`LabelStudioRefused`
for any other error answer (4xx: the call itself is wrong).
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final

from pydantic import SecretStr

from streamal.service.errors import StreamalError

#: Seconds before an access token's expiry when a new one is fetched.
REFRESH_MARGIN_S: Final = 30.0
#: Error bodies are cut to this many characters in messages.
MAX_ERROR_CHARS: Final = 400
#: Largest page of tasks asked for (Label Studio caps pages too).
PAGE_SIZE: Final = 500


class LabelStudioError(StreamalError):
    """A call to Label Studio failed; ``status`` is the HTTP status (``None``: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LabelStudioUnavailable(LabelStudioError):
    """Label Studio did not answer, or answered 5xx/429: the call may be tried again later."""


class LabelStudioRefused(LabelStudioError):
    """Label Studio refused the call (4xx): trying it again as it is will not help."""


def is_legacy_token(token: str) -> bool:
    """A legacy token is not a JWT (which has three dot-separated parts).

    >>> is_legacy_token("0123456789abcdef0123456789abcdef01234567"), is_legacy_token("a.b.c")
    (True, False)
    """
    return token.count(".") != 2


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim (seconds since the epoch) of a JWT, read without checking its signature."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, (int, float)) else None
    except (IndexError, ValueError, AttributeError):
        return None


def _message(raw: bytes) -> str:
    """The useful part of an error body: Label Studio's ``detail`` and ``validation_errors``, else the text."""
    text = raw.decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:MAX_ERROR_CHARS]
    if isinstance(data, dict):
        parts = [str(data[k]) for k in ("detail", "validation_errors") if data.get(k)]
        if parts:
            return "; ".join(parts)[:MAX_ERROR_CHARS]
    return json.dumps(data)[:MAX_ERROR_CHARS]


class LabelStudioClient:
    """One Label Studio server, reached at ``url`` with ``token`` (see the module docstring)."""

    def __init__(self, url: str, token: SecretStr, *, timeout_s: float = 30.0,
                 clock: Callable[[], float] = time.time,
                 opener: Callable[..., Any] = urllib.request.urlopen) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s
        self.clock = clock
        self._open = opener
        self._access: str | None = None
        self._access_until = 0.0

    # ------------------------------------------------------------------ plumbing

    def _authorization(self, renew: bool = False) -> str:
        token = self._token.get_secret_value()
        if is_legacy_token(token):
            return f"Token {token}"
        if renew or self._access is None or self.clock() >= self._access_until - REFRESH_MARGIN_S:
            answer = self._call("POST", "/api/token/refresh/", None, {"refresh": token}, None)
            access = answer.get("access") if isinstance(answer, dict) else None
            if not isinstance(access, str):
                raise LabelStudioRefused("POST /api/token/refresh/ gave no access token")
            self._access = access
            self._access_until = jwt_expiry(access) or self.clock() + 240.0
        return f"Bearer {self._access}"

    def _call(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any,
              authorization: str | None) -> Any:
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if authorization is not None:
            headers["Authorization"] = authorization
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        where = f"{method} {path}"
        try:
            with self._open(request, timeout=self.timeout_s) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            text = _message(exc.read() or b"")
            kind = LabelStudioUnavailable if exc.code >= 500 or exc.code == 429 else LabelStudioRefused
            raise kind(f"{where}: {exc.code} {text}", exc.code) from None
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, timed out, DNS, a cut answer
            reason = getattr(exc, "reason", None) or exc
            raise LabelStudioUnavailable(f"{where}: {self.url} did not answer ({reason})") from None
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise LabelStudioUnavailable(f"{where}: the answer is not JSON (is {self.url} Label Studio?)") from None

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        """A JSON call with the token; a 401 refreshes the access token and tries once more."""
        try:
            return self._call(method, path, params, body, self._authorization())
        except LabelStudioRefused as exc:
            if exc.status != 401 or is_legacy_token(self._token.get_secret_value()):
                raise
        return self._call(method, path, params, body, self._authorization(renew=True))

    # ------------------------------------------------------------------ the calls the bridge makes

    def whoami(self) -> dict[str, Any]:
        return self.request("GET", "/api/current-user/whoami")  # type: ignore[no-any-return]

    def projects_titled(self, title: str) -> list[dict[str, Any]]:
        """Projects with exactly this title, the oldest first."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self.request("GET", "/api/projects/", params={"title": title, "page": page, "page_size": 100})
            results = answer.get("results", []) if isinstance(answer, dict) else answer or []
            found += [p for p in results if p.get("title") == title]
            if not isinstance(answer, dict) or not answer.get("next"):
                return sorted(found, key=lambda p: p["id"])
            page += 1

    def project(self, project_id: int) -> dict[str, Any]:
        return self.request("GET", f"/api/projects/{project_id}/")  # type: ignore[no-any-return]

    def create_project(self, **fields: Any) -> dict[str, Any]:
        return self.request("POST", "/api/projects/", body=fields)  # type: ignore[no-any-return]

    def update_project(self, project_id: int, **fields: Any) -> dict[str, Any]:
        return self.request("PATCH", f"/api/projects/{project_id}/", body=fields)  # type: ignore[no-any-return]

    def import_tasks(self, project_id: int, tasks: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Create tasks; the answer's ``task_ids`` (when Label Studio imports at once) are in order."""
        return self.request("POST", f"/api/projects/{project_id}/import",  # type: ignore[no-any-return]
                            params={"return_task_ids": "true"}, body=list(tasks))

    def iter_tasks(self, project_id: int, *, filters: Sequence[Mapping[str, Any]] = (), include: str | None = None,
                   with_annotations: bool = False, after_id: int = 0,
                   task_ids: Sequence[int] | None = None) -> Iterator[dict[str, Any]]:
        """The project's tasks in id order, page by page (keyed on the id: safe while tasks are added)."""
        last = after_id
        while True:
            items = [*filters, {"filter": "filter:tasks:id", "operator": "greater", "type": "Number", "value": last}]
            query: dict[str, Any] = {"filters": {"conjunction": "and", "items": items}, "ordering": ["tasks:id"]}
            if task_ids is not None:
                query["selectedItems"] = {"all": False, "included": list(task_ids)}
            params = {"project": project_id, "page": 1, "page_size": PAGE_SIZE, "query": json.dumps(query),
                      "include": include, "fields": "all" if with_annotations else None}
            answer = self.request("GET", "/api/tasks/", params=params)
            tasks = answer.get("tasks", []) if isinstance(answer, dict) else []
            yield from tasks
            if len(tasks) < PAGE_SIZE:
                return
            last = max(t["id"] for t in tasks)

    def task(self, task_id: int) -> dict[str, Any]:
        """One task with its annotations."""
        return self.request("GET", f"/api/tasks/{task_id}/")  # type: ignore[no-any-return]

    def annotations(self, task_id: int) -> list[dict[str, Any]]:
        """A task's annotations (skipped ones included: ``was_cancelled``)."""
        return self.request("GET", f"/api/tasks/{task_id}/annotations/") or []

    def user(self, user_id: int) -> dict[str, Any]:
        return self.request("GET", f"/api/users/{user_id}/")  # type: ignore[no-any-return]

    def webhooks(self, project_id: int) -> list[dict[str, Any]]:
        return self.request("GET", "/api/webhooks/", params={"project": project_id}) or []

    def create_webhook(self, **fields: Any) -> dict[str, Any]:
        return self.request("POST", "/api/webhooks/", body=fields)  # type: ignore[no-any-return]

    def update_webhook(self, webhook_id: int, **fields: Any) -> dict[str, Any]:
        return self.request("PATCH", f"/api/webhooks/{webhook_id}/", body=fields)  # type: ignore[no-any-return]

    def views(self, project_id: int) -> list[dict[str, Any]]:
        return self.request("GET", "/api/dm/views/", params={"project": project_id}) or []

    def create_view(self, project_id: int, data: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/api/dm/views/", body={"project": project_id, "data": dict(data)})  # type: ignore[no-any-return]

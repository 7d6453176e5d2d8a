"""``streamal label-studio`` against a real Label Studio and a live ``serve`` on the session's broker.

Label Studio is PyPI's ``label-studio`` (1.23.2), installed in a virtualenv of
its own by ``.ci/fetch-label-studio`` (``.cache/label-studio-venv``: it pins
many packages that could clash with streamal's), started here with
``label-studio start`` on a free port, SQLite and its data in a temporary
folder, offline (no version check, no analytics). Its first user comes from
``LABEL_STUDIO_USERNAME``/``LABEL_STUDIO_PASSWORD``; the test signs in with the
login form, as a browser does, and makes the bridge's personal access token
as a person does on Account & Settings (``POST /api/token/`` in the signed-in
session). Annotations are submitted the way the labeling page submits them
(``POST /api/tasks/<id>/annotations/`` in that session).

Label Studio's webhooks are on: it calls the bridge on 127.0.0.1, which its
SSRF protection forbids unless ``SSRF_PROTECTION_ENABLED=false``.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import pytest
import uvicorn
from helpers import ServiceThread, free_port, read_topic, values, wait_until
from pydantic import SecretStr

from streamal.apps.datasets import Dataset, load
from streamal.apps.label_studio.bridge import Bridge
from streamal.apps.label_studio.client import LabelStudioClient
from streamal.apps.label_studio.command import LabelStudioSettings, build
from streamal.apps.label_studio.config import LabelingConfig
from streamal.apps.label_studio.project import WEBHOOK_HEADER
from streamal.apps.replay import instances, produce
from streamal.service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("STREAMAL_LABEL_STUDIO_VENV", ROOT / ".cache" / "label-studio-venv"))
FETCH_HINT = "run .ci/fetch-label-studio (it installs PyPI's label-studio into .cache/label-studio-venv)"
#: Measured on the 2-core machine: the first start (database migrations) ~50 s, a restart ~25 s.
START_TIMEOUT_S = 240.0
#: How long Label Studio is down in the outage part (the brief's minute, shortened to keep CI fast).
OUTAGE_S = 15.0
EMAIL, PASSWORD = "admin@example.com", "integration-test-password-1"
SECRET = "integration-test-webhook-secret"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class LabelStudioServer:
    """``label-studio start`` on 127.0.0.1:``port`` with its data in ``data_dir``; stopped and started again at will."""

    def __init__(self, data_dir: Path, port: int) -> None:
        binary = VENV / "bin" / "label-studio"
        if not binary.exists():
            pytest.skip(f"Label Studio is not installed at {VENV}: {FETCH_HINT}")
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0
        self.start_times: list[float] = []

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMAL_", "LABEL_STUDIO_", "DJANGO_"))}
        env.update({
            "LABEL_STUDIO_USERNAME": EMAIL, "LABEL_STUDIO_PASSWORD": PASSWORD,
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            # Tokens are JWTs signed with it (without it, Label Studio keeps a random one in its data folder).
            "SECRET_KEY": "streamal-integration-test-secret-key-0123456789",
            "SSRF_PROTECTION_ENABLED": "false",  # webhooks to the bridge on 127.0.0.1
            "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false",  # offline
            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
        })
        return env

    def start(self) -> float:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.runs += 1
        started = time.monotonic()
        with open(self.data_dir.parent / f"label-studio-{self.runs}.log", "wb") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(self.port),
                 "--data-dir", str(self.data_dir)],
                env=self.env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=self.data_dir.parent)
        wait_until(self.healthy, START_TIMEOUT_S, "Label Studio to answer /health", interval_s=0.5,
                   failed=self.failed)
        took = time.monotonic() - started
        self.start_times.append(took)
        return took

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as answer:
                return answer.status == 200
        except (OSError, ValueError):
            return False

    def failed(self) -> str | None:
        if self.process is not None and self.process.poll() is not None:
            return f"label-studio exited with {self.process.returncode}:\n{self.log_tail()}"
        return None

    def log_tail(self, chars: int = 3000) -> str:
        path = self.data_dir.parent / f"label-studio-{self.runs}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM to the process group it was started in (its own), SIGKILL after 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        wait_until(lambda: not self.healthy(), 10, "Label Studio to stop answering")


class Person:
    """A Label Studio user in a browser session: signed in with the login form, CSRF token and all."""

    def __init__(self, url: str, email: str, password: str) -> None:
        self.url = url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  urllib.request.ProxyHandler({}))
        self.opener.open(url + "/user/login/", timeout=30).read()
        form = urllib.parse.urlencode({"email": email, "password": password,
                                       "csrfmiddlewaretoken": self._csrf()}).encode()
        request = urllib.request.Request(url + "/user/login/", data=form, headers={"Referer": url + "/user/login/"})
        self.opener.open(request, timeout=30).read()
        assert self.api("GET", "/api/current-user/whoami")["email"] == email, "signed in"

    def _csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-CSRFToken": self._csrf(), "Referer": self.url + "/"})
        with self.opener.open(request, timeout=30) as answer:
            raw = answer.read()
        return json.loads(raw) if raw.strip() else None

    def create_token(self) -> str:
        """Account & Settings -> Personal Access Token -> Create."""
        return str(self.api("POST", "/api/token/", {})["token"])

    def annotate(self, task: dict[str, Any], result: list[dict[str, Any]]) -> dict[str, Any]:
        """Submit, as the labeling page does."""
        return self.api("POST", f"/api/tasks/{task['id']}/annotations/?project={task['project']}",  # type: ignore[no-any-return]
                        {"result": result, "lead_time": 2.5, "was_cancelled": False})

    def change(self, annotation_id: int, result: list[dict[str, Any]]) -> dict[str, Any]:
        """Update a submitted annotation."""
        return self.api("PATCH", f"/api/annotations/{annotation_id}/", {"result": result})  # type: ignore[no-any-return]


class LabelStudio:
    """The running server, a signed-in person, and the API as the bridge's token sees it."""

    def __init__(self, server: LabelStudioServer) -> None:
        self.server = server
        self.url = server.url
        self.person = Person(server.url, EMAIL, PASSWORD)
        self.token = self.person.create_token()
        self.api = LabelStudioClient(server.url, SecretStr(self.token))


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    folder = tmp_path_factory.mktemp("label-studio")
    (folder / "data").mkdir()
    server = LabelStudioServer(folder / "data", free_port())
    try:
        server.start()
        yield LabelStudio(server)
    finally:
        server.stop()


class BridgeServer:
    """``streamal label-studio``'s app under uvicorn on a thread, on a free port, its webhook registered."""

    def __init__(self, settings: Settings, ls: LabelStudio, poll_s: float = 2.0) -> None:
        self.port = free_port()
        self.webhook_url = f"http://127.0.0.1:{self.port}/webhook"
        options = LabelStudioSettings(url=ls.url, token=SecretStr(ls.token), webhook_url=self.webhook_url,
                                      port=self.port, poll_s=poll_s)
        app, self.bridge = build(settings, options, webhook_secret=SECRET)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="on"))
        self._thread = threading.Thread(target=self.server.run, name="streamal-test-label-studio", daemon=True)

    @property
    def b(self) -> Bridge:
        return self.bridge

    def __enter__(self) -> Self:
        self._thread.start()
        wait_until(lambda: self.server.started, 30, "the bridge to listen")
        wait_until(lambda: self.bridge.status == "live", 120, "the bridge to be live",
                   failed=lambda: None if self.bridge.alive else "the bridge's loop ended")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(60)
        assert not self._thread.is_alive(), "the bridge did not stop"

    def post_webhook(self, payload: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(self.webhook_url, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json", WEBHOOK_HEADER: SECRET})
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=10) as answer:
            return json.loads(answer.read())  # type: ignore[no-any-return]


def part(dataset: Dataset, start: int, stop: int) -> Dataset:
    """Examples ``start:stop`` of ``dataset``, with the ids they have in the whole dataset."""
    return Dataset(dataset.name, dataset.examples[start:stop], dataset.task,
                   [f"{dataset.name}-{i}" for i in range(start, stop)])


@pytest.mark.timeout(600)
def test_requests_become_tasks_and_annotations_labels_exactly_once(
        settings_for: Callable[..., Settings], label_studio: LabelStudio, tmp_path: Path) -> None:
    started = time.monotonic()
    ls = label_studio
    dataset = load("tickets", limit=400)
    truth = {ident: label for ident, _, label in instances(dataset)}
    settings = settings_for(budget=0.1, text_features="body", state_dir=tmp_path / "state",
                            metrics_port=free_port())
    answered: list[str] = []

    def project_id(bridge: BridgeServer) -> int:
        assert bridge.b.project is not None
        return int(bridge.b.project["id"])

    def tasks(pid: int) -> list[dict[str, Any]]:
        return list(ls.api.iter_tasks(pid, include="id,meta,data,project,total_predictions"))

    def by_id(pid: int) -> dict[str, dict[str, Any]]:
        return {t["data"]["streamal_id"]: t for t in tasks(pid)}

    def labels_on_topic(at_least: int) -> list[dict[str, Any]]:
        return values(read_topic(settings, settings.topic_labels, at_least=at_least))

    def label(task: dict[str, Any], config: LabelingConfig, how: str) -> dict[str, Any]:
        """Label a task with its true class: by a choice, else typed as a class not listed."""
        want = str(truth[task["data"]["streamal_id"]])
        if how == "choice" and want in config.choices:
            result = [{"from_name": config.choices_name, "to_name": config.to_name, "type": "choices",
                       "value": {"choices": [want]}, "origin": "manual"}]
        else:
            result = [{"from_name": config.other_name, "to_name": config.to_name, "type": "textarea",
                       "value": {"text": [want]}, "origin": "manual"}]
        annotation = ls.person.annotate(task, result)
        answered.append(task["data"]["streamal_id"])
        return annotation

    def config_of(pid: int) -> LabelingConfig:
        return LabelingConfig.parse(ls.api.project(pid)["label_config"])

    with ServiceThread(settings) as service:
        service.wait_ready()
        assert produce(settings, part(dataset, 0, 20)) == 20
        wait_until(lambda: service.instances >= 20 and service.requests >= 5, 60, "the service to ask for labels",
                   failed=service.failed)

        # polls a minute apart: within the test's waits, labels come by webhook only
        with BridgeServer(settings, ls, poll_s=60.0) as first:
            pid = project_id(first)
            assert first.b.site.webhook_registered, "Label Studio took the webhook"
            views = ls.api.views(pid)
            assert [v["data"]["ordering"] for v in views] == [["-tasks:data.streamal_score"]]

            # ---- the cold model's requests: tasks without a pre-annotation (no class known yet)
            wait_until(lambda: len(tasks(pid)) >= service.requests, 60, "a task per label request")
            cold = by_id(pid)
            requests = {r["id"]: r for r in values(read_topic(settings, settings.topic_label_requests,
                                                              at_least=len(cold)))}
            assert set(cold) == set(requests), "one task per requested id"
            for ident, task in cold.items():
                assert task["data"]["streamal_score"] == pytest.approx(requests[ident]["score"])
                assert task["data"]["text_0"] == requests[ident]["features"]["body"]
                assert task["data"]["features"]["plan"] == requests[ident]["features"]["plan"]
            config = config_of(pid)
            assert config.managed and config.other_name is not None
            for task in sorted(cold.values(), key=lambda t: -t["data"]["streamal_score"]):
                label(task, config, "typed")  # webhook: ANNOTATION_CREATED
            n = len(answered)
            labels = labels_on_topic(n)
            assert Counter(x["id"] for x in labels) == Counter(answered)
            assert all(x["label"] == truth[x["id"]] and x["annotator"] == EMAIL for x in labels), labels
            training = values(read_topic(settings, settings.topic_training, at_least=n))
            assert {t["id"] for t in training} == set(answered) and {t["source"] for t in training} == {"joined"}
            wait_until(lambda: service.value("streamal_model_version") >= n, 30, "the model to learn the labels",
                       failed=service.failed)

            # ---- a warm model: its classes join the choices, its predictions are the pre-annotations
            assert produce(settings, part(dataset, 20, 200)) == 180
            wait_until(lambda: service.instances >= 200, 60, "the second batch decided", failed=service.failed)
            wait_until(lambda: len(tasks(pid)) >= service.requests, 60, "a task per new label request")
            config = config_of(pid)
            assert set(config.choices) == {"billing", "login", "shipping"}, config.choices
            warm = [t for i, t in by_id(pid).items() if i not in cold]
            assert warm, "the warm model asked for labels"
            full = ls.api.task(warm[0]["id"])
            [guess] = full["predictions"]
            assert guess["model_version"] == "streamal" and 0 <= guess["score"] <= 1
            assert guess["result"][0]["value"]["choices"][0] in config.choices
            for task in warm[:3]:
                annotation = label(task, config, "choice")
            wait_until(lambda: len(labels_on_topic(0)) >= len(answered), 30, "the warm labels")
            assert first.b.ledger.counts["webhooks_received"] >= len(answered) == first.b.ledger.counts["labels_sent"]

            # ---- a webhook delivered twice, an annotation changed after its label was sent: nothing sent again
            payload = {"action": "ANNOTATION_CREATED", "annotation": annotation, "task": {"id": annotation["task"]}}
            assert first.post_webhook(payload)["status"] == "queued"
            assert first.post_webhook(payload)["status"] == "queued"
            wait_until(lambda: first.b.ledger.counts["duplicate"] >= 1, 20, "the double delivery to be counted")
            other = next(c for c in config.choices if c != str(truth[warm[2]["data"]["streamal_id"]]))
            ls.person.change(annotation["id"], [{"from_name": config.choices_name, "to_name": config.to_name,
                                                 "type": "choices", "value": {"choices": [other]}}])
            wait_until(lambda: first.b.ledger.counts["updated_after_send"] >= 1, 20,
                       "the change after sending to be counted")
            assert Counter(x["id"] for x in labels_on_topic(len(answered))) == Counter(answered)

        # ---- the bridge is down: an annotation made now (its webhook fails) is found when it is back
        while_down = warm[3]
        label(while_down, config, "choice")
        count_before = len(tasks(pid))
        with BridgeServer(settings, ls, poll_s=2.0) as second:
            assert project_id(second) == pid, "the same project after a restart"
            wait_until(lambda: while_down["data"]["streamal_id"] in {x["id"] for x in labels_on_topic(0)}, 30,
                       "the annotation made while the bridge was down")
            assert len(tasks(pid)) == count_before, "no task made twice after the restart"
            assert second.b.ledger.counts["labels_sent"] == 1

            # ---- Label Studio is down for a while; requests made meanwhile become tasks when it is back
            ls.server.stop()
            down_at = time.monotonic()
            assert produce(settings, part(dataset, 200, 400)) == 200
            wait_until(lambda: service.instances >= 400, 60, "the third batch decided", failed=service.failed)
            wait_until(lambda: "unavailable" in second.b.status, 30, "the bridge to notice the outage")
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
            restart_s = ls.server.start()
            wait_until(lambda: len(tasks(pid)) >= service.requests, 60, "the requests made during the outage")
            later = [t for i, t in by_id(pid).items() if i not in answered and i != while_down["data"]["streamal_id"]
                     and t["id"] > max(x["id"] for x in warm)]
            assert later, "tasks for the requests made while Label Studio was down"
            for task in later[:2]:
                label(task, config_of(pid), "choice")
            wait_until(lambda: len(labels_on_topic(0)) >= len(answered), 30, "the labels made after the outage")
            wait_until(lambda: second.b.status == "live", 30, "the bridge to be live again")

    # ---- every answer is on the labels topic once, joined and learned; every request has one task
    labels = labels_on_topic(len(answered))
    assert Counter(x["id"] for x in labels) == Counter(answered), "one label per answered task"
    assert all(x["annotator"] == EMAIL for x in labels)
    training = values(read_topic(settings, settings.topic_training, at_least=len(answered)))
    assert Counter(t["id"] for t in training) == Counter(answered)
    keys = Counter(t["data"]["streamal_id"] for t in tasks(pid))
    assert max(keys.values()) == 1, "no request became two tasks"
    requested = {r["id"] for r in values(read_topic(settings, settings.topic_label_requests))}
    assert set(keys) == requested
    print(f"\nLabel Studio started in {ls.server.start_times[0]:.1f} s, again after the outage in {restart_s:.1f} s; "
          f"the test took {time.monotonic() - started:.0f} s; {len(answered)} labels, {len(keys)} tasks")

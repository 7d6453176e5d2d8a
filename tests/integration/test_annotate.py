"""``streamal annotate`` in a real browser, against a live ``serve`` on the session's broker.

Debian's chromium, driven by Playwright for Python (never ``playwright install``:
it downloads browsers), labels support tickets the way a person does: with
clicks, number keys and typed classes. The labels reach the labels topic once
each (also after a double click, a replayed submit and a connection lost after
the server acted), the service joins and learns them, and a restarted annotate
offers none of the answered requests again. A screenshot is taken during the
run; with ``STREAMAL_SCREENSHOT=docs/annotate.png`` it becomes the README's.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import pytest
import uvicorn
from helpers import ServiceThread, free_port, read_topic, values, wait_until

from streamal.apps.annotate.command import AnnotateSettings
from streamal.apps.annotate.web import Annotate, build
from streamal.apps.datasets import Dataset, load
from streamal.apps.replay import instances, produce
from streamal.service.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TOKEN = "integration-test-token-0123456789"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class AnnotateServer:
    """The annotate app under uvicorn on a thread, on a free port."""

    def __init__(self, settings: Settings, **options: Any) -> None:
        self.port = free_port()
        self.options = AnnotateSettings(token=TOKEN, port=self.port, **options)
        app, self.annotate = build(settings, self.options)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, lifespan="on"))
        self._thread = threading.Thread(target=self.server.run, name="streamal-test-annotate", daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    @property
    def app(self) -> Annotate:
        return self.annotate

    def __enter__(self) -> Self:
        self._thread.start()
        wait_until(lambda: self.server.started, 30, "annotate to listen")
        assert self.annotate.feed is not None
        wait_until(self.annotate.feed.caught_up.is_set, 60, f"annotate to read the topics ({self.annotate.feed.status})")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(30)
        assert not self._thread.is_alive(), "annotate did not stop"


@contextmanager
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def part(dataset: Dataset, start: int, stop: int) -> Dataset:
    """Examples ``start:stop`` of ``dataset``, with the ids they have in the whole dataset."""
    return Dataset(dataset.name, dataset.examples[start:stop], dataset.task,
                   [f"{dataset.name}-{i}" for i in range(start, stop)])


def card_id(page: Any) -> str | None:
    return page.evaluate("() => { const c = document.getElementById('card');"
                         " return c.classList.contains('hidden') ? null : c.dataset.id; }")


def wait_for_card(page: Any, previous: str | None = None) -> str:
    page.wait_for_function("prev => { const c = document.getElementById('card');"
                           " return !c.classList.contains('hidden') && c.dataset.id !== prev; }",
                           arg=previous, timeout=30_000)
    return card_id(page)  # type: ignore[return-value]


def label_one(page: Any, truth: dict[str, Any], how: str, used: Counter[str], took: list[float] | None = None) -> str:
    """Label the shown request with its true class: a click, a number key, or typed if not offered."""
    started = time.monotonic()
    ident = card_id(page)
    assert ident is not None, "no request shown"
    want = str(truth[ident])
    offered = page.eval_on_selector_all("#classes button", "bs => bs.map(b => b.dataset.label)")
    if want in offered and how == "key" and offered.index(want) < 9:
        page.keyboard.press(str(offered.index(want) + 1))
        used["key"] += 1
    elif want in offered:
        page.click(f'#classes button[data-label="{want}"]')
        used["click"] += 1
    else:
        page.fill("#free-input", want)
        page.press("#free-input", "Enter")
        used["typed"] += 1
    page.wait_for_function("prev => { const c = document.getElementById('card');"
                           " return c.classList.contains('hidden') || c.dataset.id !== prev; }",
                           arg=ident, timeout=30_000)
    if took is not None:
        took.append(time.monotonic() - started)
    return ident


@pytest.mark.timeout(300)
def test_people_label_through_the_page_and_the_service_learns(settings_for: Callable[..., Settings],
                                                              tmp_path: Path) -> None:
    dataset = load("tickets", limit=700)
    truth = {ident: label for ident, _, label in instances(dataset)}
    metrics_port = free_port()
    settings = settings_for(budget=0.1, text_features="body", state_dir=tmp_path / "state",
                            metrics_port=metrics_port)
    answered: list[str] = []
    used: Counter[str] = Counter()
    took: list[float] = []  # seconds from reading a request to the next one shown
    with chromium() as browser, ServiceThread(settings) as service:
        service.wait_ready()
        assert produce(settings, part(dataset, 0, 20)) == 20
        wait_until(lambda: service.instances >= 20 and service.requests >= 8, 60,
                   "the service to ask for labels", failed=service.failed)
        with AnnotateServer(settings, lease_s=120.0,
                            service_metrics=f"http://127.0.0.1:{metrics_port}/metrics") as server:
            q = server.annotate.queue
            wait_until(lambda: q.size() >= service.requests, 30, "annotate to read every request")

            # ---- refused without the token (page and API), with a wrong one too
            stranger = browser.new_context().new_page()
            assert stranger.goto(server.url + "/").status == 401
            assert stranger.request.get(server.url + "/api/next").status == 401
            assert stranger.goto(server.url + "/?token=wrong").status == 403

            # ---- sign in with the login link, choose a name
            page = browser.new_context(viewport={"width": 1280, "height": 560}).new_page()
            started = time.monotonic()
            page.goto(f"{server.url}/?token={TOKEN}")
            assert page.url == server.url + "/", "the token leaves the address bar"
            page.fill("#name-input", "ann")
            page.click("#name-form button")
            first = wait_for_card(page)
            load_s = time.monotonic() - started
            assert q.leased() == 1

            # ---- a second annotator never gets the same request
            bob = browser.new_context().new_page()
            bob.goto(f"{server.url}/?token={TOKEN}")
            bob.fill("#name-input", "bob")
            bob.click("#name-form button")
            assert wait_for_card(bob) != first
            bob.goto("about:blank")  # leaving the page gives bob's request back
            wait_until(lambda: q.leased() == 1, 10, "bob's lease to be released when he left the page")
            bob.context.close()

            # ---- a cold model's requests: the first classes are typed, then offered as buttons
            labelled_at = time.monotonic()
            while card_id(page) is not None and len(answered) < 40:
                answered.append(label_one(page, truth, "key" if len(answered) % 2 else "click", used, took))
            assert card_id(page) is None, "every request of the cold model answered"
            cold = len(answered)
            wait_until(lambda: service.value("streamal_model_version") >= cold, 30, "the service to learn the labels",
                       failed=service.failed)

            # ---- a warm model asks again: its predictions are the pre-selection
            assert produce(settings, part(dataset, 20, 700)) == 680
            wait_until(lambda: service.instances >= 700, 60, "the second batch decided", failed=service.failed)
            wait_until(lambda: q.size() + q.leased() + len(answered) >= service.requests, 30,
                       "annotate to read the new requests")
            wait_for_card(page)  # the page looks again by itself
            shot = False
            for i in range(12):
                if not shot and page.locator("#classes button.pre").count():
                    # the service's figures as they are now (the page reads them every 5 s)
                    page.wait_for_function("cold => { const m = /v(\\d+) model/.exec(document.getElementById('stats')"
                                           ".textContent); return m && +m[1] >= cold; }", arg=cold, timeout=20_000)
                    page.mouse.move(1, 1)  # no button under the pointer (hover)
                    screenshot = Path(os.environ.get("STREAMAL_SCREENSHOT", tmp_path / "annotate.png"))
                    page.screenshot(path=str(screenshot))
                    shot = True
                answered.append(label_one(page, truth, "key" if i % 2 else "click", used, took))
            rate_per_min = len(answered) / ((time.monotonic() - labelled_at) / 60)
            assert shot, "no request with a pre-selected prediction was shown"
            assert used["key"] >= 5 and used["click"] >= 5, used
            stats = page.evaluate("() => document.getElementById('stats').textContent")
            assert "10 % budget" in stats and "unknown" not in stats, stats

            # ---- a double click, a replayed submit and a lost answer: one label each
            ident = card_id(page)
            want = str(truth[ident])
            button = page.locator(f'#classes button[data-label="{want}"]')
            if button.count():
                button.dblclick()
            else:
                page.fill("#free-input", want)
                page.press("#free-input", "Enter")
                page.press("#free-input", "Enter")
            page.wait_for_function("prev => document.getElementById('card').dataset.id !== prev", arg=ident)
            answered.append(ident)

            ident = card_id(page)
            replies = page.evaluate(
                """async ([lease, label]) => {
                    const send = () => fetch('/api/answer', {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                           body: JSON.stringify({lease, label})}).then(r => r.json());
                    return Promise.all([send(), send(), send()]);
                }""", [page.evaluate("() => S.lease"), str(truth[ident])])
            assert [r["status"] for r in replies] == ["saved"] * 3, replies
            assert sorted(r["duplicate"] for r in replies) == [False, True, True], replies
            answered.append(ident)
            reloaded = time.monotonic()
            page.reload()
            ident = wait_for_card(page, ident)
            reload_s = time.monotonic() - reloaded

            lost = {"n": 0}

            def lose_first_answer(route: Any) -> None:  # the server acts, the browser never hears back
                lost["n"] += 1
                if lost["n"] == 1:
                    route.fetch()
                    route.abort("connectionreset")
                else:
                    route.continue_()

            page.route("**/api/answer", lose_first_answer)
            answered.append(label_one(page, truth, "click", used))
            assert lost["n"] == 2, "the page retried the lost answer once"
            page.unroute("**/api/answer")

        # ---- every answer reached the labels topic once, was joined and learned
        n = len(answered)
        assert len(set(answered)) == n
        labels = values(read_topic(settings, settings.topic_labels, at_least=n))
        assert Counter(label["id"] for label in labels) == Counter(answered), "one label per answered request"
        assert all(label["label"] == truth[label["id"]] and label["annotator"] == "ann" for label in labels)
        assert all(isinstance(label["label"], str) for label in labels), "string classes stay strings"
        training = values(read_topic(settings, settings.topic_training, at_least=n))
        assert {t["id"] for t in training} == set(answered) and {t["source"] for t in training} == {"joined"}
        wait_until(lambda: service.value("streamal_model_version") >= n, 30, "the model to learn every label",
                   failed=service.failed)
        assert service.value("streamal_labels_total", outcome="duplicate") == 0

        # ---- a restarted annotate rebuilds what was answered from the topics
        with AnnotateServer(settings) as again:
            assert all(again.annotate.queue.is_answered(i) for i in answered)
            offered = set()
            while (lease := again.annotate.queue.lease(f"reader-{len(offered)}")) is not None:
                offered.add(lease.id)
            assert offered and not offered & set(answered)
    took.sort()
    print(f"\nannotate: sign-in to first request shown {load_s:.2f} s, a reload {reload_s:.2f} s; "
          f"{n} labels through the page, "
          f"{rate_per_min:.0f} labels/min overall ({dict(used)}); one label to the next request shown: "
          f"median {1000 * took[len(took) // 2]:.0f} ms, max {1000 * took[-1]:.0f} ms; "
          f"model version {service.value('streamal_model_version'):.0f}, {service.requests:.0f} label requests")

"""The bridge's Label Studio project: found or made, its labeling config kept current, its tab and its webhook.

- **Which project**: the one given by id (``--project-id``), else the one
  titled ``project_title`` (the oldest, if several), made if there is none.
  A project the bridge makes has its own config (:mod:`.config`), one
  annotation per task, no empty annotation, a skip button, and the
  pre-annotations of :data:`~.tasks.MODEL_VERSION`.
- **Classes**: the bridge's own config gets the classes that appear in the
  requests (adding a choice leaves every annotation valid); an existing
  project's config is never changed.
- **Order**: a Data Manager tab, :data:`VIEW_TITLE`, sorted by the
  informativeness score, highest first; "Label All Tasks" from it follows
  that order (Label Studio's Data Manager queue).
- **Webhook**: ANNOTATION_CREATED, ANNOTATIONS_CREATED and ANNOTATION_UPDATED
  to the bridge's URL, with this run's secret in a header; a webhook of an
  earlier bridge at another address is turned off. Refused (Label Studio's
  SSRF protection refuses private and loopback addresses unless it runs with
  ``SSRF_PROTECTION_ENABLED=false``): said once, and the bridge polls.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from streamal.apps.annotate.classes import ClassBook
from streamal.apps.label_studio.client import LabelStudioClient, LabelStudioRefused
from streamal.apps.label_studio.config import LabelingConfig, build_config
from streamal.apps.label_studio.tasks import MODEL_VERSION, classes_of
from streamal.service.messages import LabelRequest
from streamal.service.settings import Settings

log = logging.getLogger("streamal.label_studio")

#: The Data Manager tab the bridge adds: its order is the order of "Label All Tasks" from it.
VIEW_TITLE: Final = "streamal: most informative first"
VIEW_ORDERING: Final = ("-tasks:data.streamal_score",)
#: The webhook's actions: an annotation made (one, or many at once) or changed.
WEBHOOK_ACTIONS: Final = ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED")
#: The header Label Studio sends with every webhook: the bridge's secret of this run.
WEBHOOK_HEADER: Final = "X-Streamal-Webhook"


class Project:
    """The project of one bridge (see the module docstring); :attr:`data` is ``None`` until :meth:`connect`."""

    def __init__(self, client: LabelStudioClient, settings: Settings, classes: ClassBook, *,
                 project_id: int | None = None, title: str, webhook_url: str | None = None,
                 webhook_secret: str | None = None, poll_s: float = 10.0) -> None:
        self.client = client
        self.settings = settings
        self.classes = classes
        self.project_id = project_id
        self.title = title
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.poll_s = poll_s
        self.data: dict[str, Any] | None = None
        self.config: LabelingConfig | None = None
        self.webhook_registered = False

    @property
    def id(self) -> int:
        assert self.data is not None, "not connected"
        return int(self.data["id"])

    def forget(self) -> None:
        """The project is gone (404): found or made again by the next :meth:`connect`."""
        self.data = None

    def connect(self) -> None:
        me = self.client.whoami()
        if self.project_id is not None:
            project = self.client.project(self.project_id)
        else:
            found = self.client.projects_titled(self.title)
            if len(found) > 1:
                log.warning("label-studio: %d projects are titled %r: using the oldest, %d", len(found),
                            self.title, found[0]["id"])
            project = found[0] if found else self._create()
        config = LabelingConfig.parse(project.get("label_config") or "")
        self._check(project, config)
        self.data, self.config = project, config
        try:
            self._ensure_view()
            self._ensure_webhook()
        except BaseException:
            self.data = None  # connected only once both are in place: the next step does it again
            raise
        log.info("label-studio: project %d %r of %s, as %s (%s config)", project["id"], project.get("title"),
                 self.client.url, me.get("email") or me.get("username") or me.get("id"),
                 "the bridge's" if config.managed else "its own")

    def _create(self) -> dict[str, Any]:
        allowed = self.settings.classes
        classes = list(allowed) if allowed else self.classes.offered()
        xml = build_config(self.settings.text_features, classes, self.settings.task, free_text=not allowed)
        project = self.client.create_project(
            title=self.title, label_config=xml, model_version=MODEL_VERSION,
            description=(f"Label requests of streamal ({self.settings.topic_label_requests}), the most "
                         f"informative first: label them from the tab '{VIEW_TITLE}'."),
            sampling="Sequential sampling", maximum_annotations=1, enable_empty_annotation=False,
            show_skip_button=True)
        log.info("label-studio: created project %d %r", project["id"], self.title)
        return project

    def _check(self, project: dict[str, Any], config: LabelingConfig) -> None:
        regression = self.settings.task == "regression"
        if (config.number_name if regression else config.choices_name) is None and config.other_name is None \
                and not config.managed:
            want = "a Number" if regression else "a Choices"
            raise LabelStudioRefused(f"project {project['id']}'s labeling config has no {want} or TextArea "
                                     "control to read a label from")

    def refresh(self) -> None:
        """Read the project (and its config) again: someone may have changed it."""
        project = self.client.project(self.id)
        self.data, self.config = project, LabelingConfig.parse(project.get("label_config") or "")

    def extend(self, requests: Sequence[LabelRequest]) -> None:
        """Add the requests' new classes to the bridge's own config (see :mod:`.config`)."""
        own = self.config is not None and self.config.managed
        if not own or self.settings.classes or self.settings.task != "classification":
            return
        assert self.config is not None
        new = self.config.missing(classes_of(requests))
        if not new:
            return
        self.refresh()
        extended = self.config.with_classes(new)
        if extended is self.config:
            return
        project = self.client.update_project(self.id, label_config=extended.xml)
        self.data, self.config = project, LabelingConfig.parse(project.get("label_config") or extended.xml)
        log.info("label-studio: classes added to the labeling config: %s", ", ".join(new))

    def _ensure_view(self) -> None:
        if any((v.get("data") or {}).get("title") == VIEW_TITLE for v in self.client.views(self.id)):
            return
        self.client.create_view(self.id, {"title": VIEW_TITLE, "ordering": list(VIEW_ORDERING),
                                          "filters": {"conjunction": "and", "items": []}})

    def _ensure_webhook(self) -> None:
        if self.webhook_url is None:
            return
        fields = {"url": self.webhook_url, "send_payload": True, "send_for_all_actions": False,
                  "headers": {WEBHOOK_HEADER: self.webhook_secret or ""}, "is_active": True,
                  "actions": list(WEBHOOK_ACTIONS)}
        try:
            hooks = self.client.webhooks(self.id)
            mine = [w for w in hooks if w.get("url") == self.webhook_url]
            if mine:
                self.client.update_webhook(mine[0]["id"], **fields)
            else:
                self.client.create_webhook(project=self.id, **fields)
            self.webhook_registered = True
            for old in hooks:  # an earlier bridge's, at another address: Label Studio would call it in vain
                if old.get("is_active") and old.get("url") != self.webhook_url and \
                        WEBHOOK_HEADER in (old.get("headers") or {}):
                    self.client.update_webhook(old["id"], is_active=False)
                    log.info("label-studio: turned off the webhook of an earlier bridge, %s", old.get("url"))
        except LabelStudioRefused as exc:
            self.webhook_registered = False
            log.warning("label-studio: Label Studio refused the webhook %s (%s); annotations are polled every "
                        "%g s instead. (Label Studio does not call private or loopback addresses unless started "
                        "with SSRF_PROTECTION_ENABLED=false.)", self.webhook_url, exc, self.poll_s)

"""What must hold after any fault (DESIGN section 4), read from the topics themselves.

- no label lost: every label on the labels topic whose request exists is on
  the training topic (as :func:`helpers.lost_labels` checks in ``tests/integration/test_faults.py``);
- every label the annotator produced and the broker acknowledged is on the training topic;
- pending requests intact: every request the annotator kept unanswered until
  the end is joined once it is answered (no replica forgot it);
- the group's committed offsets reach the end of the instances and labels topics;
- each replica's realised label rate is within the tolerance of its budget.

:func:`settle` answers the withheld requests, waits (boundedly) for all of that
to become true, and returns what it found; the test asserts on it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from helpers import committed_reach_ends, read_topic, values, wait_until

from streamal.core.budget import BudgetGuard
from streamal.service import kafka
from streamal.service.records import Record
from streamal.service.settings import Settings


def read_to_end(settings: Settings, topic: str, timeout_s: float = 60.0) -> list[Record]:
    """Every record of ``topic`` up to the end offsets it has now: a snapshot of a topic still being
    written to (``read_topic`` reads until a topic goes quiet, which it never does under load)."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    with kafka.reader(settings, [topic]) as source:
        ends = source.end_offsets(source.assignment())
        while any(source.position(t, p) < end for (t, p), end in ends.items()):
            if time.monotonic() > deadline:
                raise AssertionError(f"read {len(records)} records of {topic}, not up to its ends {ends}")
            records += source.poll(0.5)
    return records


def ids(records: Iterable[Record]) -> Counter[str]:
    return Counter(v["id"] for v in values(records))


@dataclass
class Verdict:
    """What :func:`settle` found; ``problems`` is empty when every invariant holds."""

    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


def settle(settings: Settings, partitions: int, annotator: Any, replicas: Iterable[Any], *, timeout_s: float = 90.0,
           failed: Callable[[], str | None] | None = None) -> Verdict:
    """Check the live replicas' pending gauges, release the withheld requests, and wait until every
    invariant of the topics holds (or ``timeout_s``); what was found."""
    verdict = Verdict()
    # Before answering the withheld requests: every live replica keeps the requests of the whole
    # group (streamal/service/pending.py), so once every other answer is joined, its
    # streamal_pending_requests must count every withheld request (and nothing else).
    live = [r for r in replicas if r.running]

    def quiet() -> bool:
        return all(r.scrape().get("pending", -1.0) == len(annotator.held) for r in live)

    wait_until(quiet, 60, "the pending gauges to settle", interval_s=0.5, failed=failed, required=False)
    withheld = annotator.held
    gauges = {r.name: r.now.get("pending", -1.0) for r in live}
    verdict.figures["pending_before_release"] = {"withheld": len(withheld), **{k: int(v) for k, v in gauges.items()}}
    for name, pending in gauges.items():
        verdict.check(pending >= len(withheld), f"replica {name} counts {pending:.0f} pending requests, fewer than "
                                                f"the {len(withheld)} still unanswered: it forgot some")
    annotator.release()
    started = time.monotonic()
    state: dict[str, Any] = {}

    def done() -> bool:
        instances = read_topic(settings, settings.topic_instances, idle_polls=1)
        labels = read_topic(settings, settings.topic_labels, idle_polls=1)
        requests = read_topic(settings, settings.topic_label_requests, idle_polls=1)
        training = read_topic(settings, settings.topic_training, idle_polls=1)
        asked, answered, trained = ids(requests), ids(labels), ids(training)
        state.update(instances=instances, labels=labels, asked=asked, answered=answered, trained=trained,
                     training=training)
        if not set(asked) <= annotator.seen():
            return False  # the annotator has not read every request yet
        if annotator.held or withheld - annotator.acknowledged():
            return False
        if (set(answered) & set(asked)) - set(trained) or annotator.acknowledged() - set(trained):
            return False
        for topic, records in ((settings.topic_instances, instances), (settings.topic_labels, labels)):
            if not committed_reach_ends(settings, topic, records, partitions)[0]:
                return False
        return True

    wait_until(done, timeout_s, "every invariant to hold", interval_s=1.0, failed=failed, required=False)
    verdict.figures["settle_s"] = round(time.monotonic() - started, 1)
    asked, answered, trained = state["asked"], state["answered"], state["trained"]
    acked = annotator.acknowledged()
    lost = (set(answered) & set(asked)) - set(trained)
    sources = Counter(v.get("source") for v in values(state["training"]))
    verdict.figures.update(
        instances=len(ids(state["instances"])),
        ids_asked=len(asked),
        label_requests=sum(asked.values()),
        duplicate_requests=sum(asked.values()) - len(asked),
        labels=sum(answered.values()),
        duplicate_labels=sum(answered.values()) - len(answered),
        trained=len(trained),
        duplicate_training=sum(trained.values()) - len(trained),
        withheld_until_end=len(withheld),
        lost=len(lost),
        group_rate=round(len(asked) / max(1, len(ids(state["instances"]))), 4),
    )
    verdict.check(not lost, f"{len(lost)} labels lost (on the labels topic, request exists, not trained): "
                            f"{sorted(lost)[:10]}")
    verdict.check(acked <= set(trained), f"{len(acked - set(trained))} acknowledged labels never trained: "
                                         f"{sorted(acked - set(trained))[:10]}")
    verdict.check(set(answered) <= set(asked), "labels for ids never asked about")
    not_joined = withheld - set(trained)
    verdict.check(not not_joined, f"{len(not_joined)} of the {len(withheld)} requests pending until the end were "
                                  f"not joined once answered (lost pending requests): {sorted(not_joined)[:10]}")
    verdict.check(sources.get("unsolicited", 0) == 0, f"{sources['unsolicited']} labels trained as unsolicited")
    for topic, records in ((settings.topic_instances, state["instances"]), (settings.topic_labels, state["labels"])):
        ok, got, want = committed_reach_ends(settings, topic, records, partitions)
        verdict.check(ok, f"committed offsets of {topic} {got} do not reach the ends {want}")
    return verdict


def check_rates(replicas: Iterable[Any], budget: float, tolerance: float, min_instances: int,
                verdict: Verdict) -> None:
    """Each replica's realised rate (its requests / its decided instances, over all its processes)
    within ``tolerance`` (relative) of ``budget``, for every replica that decided ``min_instances``.

    Above the budget, each replica may also have taken the budget guard's cold-start advance once
    (its first start, on an empty log: :class:`BudgetGuard`), which a SIGKILL before it was paid
    back leaves unpaid: a run of a few thousand instances sees it, a long-running service does not."""
    judged = 0
    rates = {}
    replicas = list(replicas)
    advance = BudgetGuard(budget).advance
    for replica in replicas:
        asked, decided, rate = replica.realised_rate()
        rates[replica.name] = {"rate": round(rate, 4), "requests": int(asked), "instances": int(decided)}
        if decided >= min_instances:
            judged += 1
            high = (1 + tolerance) * budget + advance / decided
            verdict.check((1 - tolerance) * budget <= rate <= high,
                          f"replica {replica.name}: realised rate {rate:.4f} ({asked:.0f} requests / {decided:.0f} "
                          f"instances) outside {budget} ± {tolerance:.0%} (+ an advance of {advance:g} labels: "
                          f"{high:.4f})")
    verdict.figures["rates"] = rates
    # Decisions beyond one per instance: instances read again (a failed commit, a crash, a rebalance)
    # and decided a second time; each is a second chance to spend budget on the same instance. A
    # SIGKILLed process's counters are its last scrape (every SCRAPE_EVERY_S), so the sum undercounts
    # and this is a lower bound (0 when the undercount outweighs the re-decisions).
    decided = sum(replica.total("instances") for replica in replicas)
    if "instances" in verdict.figures:
        verdict.figures["re_decided_at_least"] = max(0, int(decided - verdict.figures["instances"]))
    verdict.figures["budget"] = budget
    verdict.check(judged > 0, f"no replica decided {min_instances} instances: no rate could be judged")
    group = verdict.figures.get("group_rate")
    if group is not None:
        high = (1 + tolerance) * budget + len(replicas) * advance / max(1, verdict.figures["instances"])
        verdict.check((1 - tolerance) * budget <= group <= high,
                      f"group-wide rate {group} (ids asked / instances) outside {budget} ± {tolerance:.0%} "
                      f"(+ an advance of {advance:g} labels per replica: {high:.4f})")

"""What a request that expires becomes, and the optional predictions topic, on the memory broker."""

from __future__ import annotations

import shutil
from collections import Counter

import orjson
from test_loop import answer, drain, make, produce_instances, value

from streamal import ActiveLearner
from streamal.service.memory import MemoryBroker
from streamal.service.messages import PredictionRecord

PREDICTIONS = "streamal.predictions"


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def requests_by_id(broker):
    return Counter(orjson.loads(r.value)["id"] for r in broker.records("streamal.label-requests"))


# ------------------------------------------------------------------ predictions


def test_no_predictions_topic_by_default(tmp_path):
    broker, service = make(tmp_path)
    produce_instances(broker, 200)
    drain(service)
    assert PREDICTIONS not in broker.topics
    assert value(service.metrics, "streamal_predictions_total") == 0


def test_every_instance_gets_one_prediction_keyed_by_its_id(tmp_path):
    broker = MemoryBroker()
    broker.create(PREDICTIONS, 2)
    broker, service = make(tmp_path, broker=broker, topic_predictions=PREDICTIONS)
    truth = produce_instances(broker, 600)
    drain(service)
    answer(broker, truth)
    drain(service)
    produce_instances(broker, 400, start=600)
    drain(service)
    records = broker.records(PREDICTIONS)
    predictions = [PredictionRecord.model_validate_json(r.value) for r in records]
    assert sorted(p.id for p in predictions) == sorted(f"i{i}" for i in range(1000))
    assert all(r.key == p.id.encode() for r, p in zip(records, predictions))
    requests = {q["id"]: q for q in map(orjson.loads, (r.value for r in broker.records("streamal.label-requests")))}
    assert {p.id for p in predictions if p.asked} == set(requests)
    for p in predictions:  # the same prediction the label request carries
        if p.asked:
            assert p.prediction.model_dump() == requests[p.id]["prediction"]
            assert p.model_version == requests[p.id]["model_version"]
    # After the labels were learned the model predicts: later predictions carry the model version and a class.
    late = [p for p in predictions if int(p.id[1:]) >= 600]
    assert {p.model_version for p in late} == {service.learner.n_learned}
    assert all(p.prediction.label in ("True", "False") for p in late)
    assert value(service.metrics, "streamal_predictions_total") == 1000
    committed = broker.committed["g"]
    assert sum(committed.get(("streamal.instances", p), 0) for p in range(2)) == 1000


def test_pool_mode_publishes_a_prediction_per_instance_and_marks_the_picked(tmp_path):
    broker = MemoryBroker()
    broker.create(PREDICTIONS, 2)
    broker, service = make(tmp_path, broker=broker, topic_predictions=PREDICTIONS, mode="pool", pool_size=200,
                           pool_seconds=3600)
    produce_instances(broker, 1000)
    drain(service)
    predictions = [PredictionRecord.model_validate_json(r.value) for r in broker.records(PREDICTIONS)]
    assert len(predictions) == 1000 and len({p.id for p in predictions}) == 1000
    assert {p.id for p in predictions if p.asked} == set(requests_by_id(broker))


# ------------------------------------------------------------------ expiry


def test_an_expired_request_is_counted_and_by_default_not_asked_again(tmp_path):
    clock = Clock()
    broker, service = make(tmp_path, clock=clock, pending_max_age_s=60.0)
    produce_instances(broker, 500)
    drain(service)
    asked = requests_by_id(broker)
    assert asked and len(service.pending) == len(asked)
    clock.now += 61
    drain(service, 2)
    assert len(service.pending) == 0
    assert value(service.metrics, "streamal_labels_total", outcome="expired") == len(asked)
    assert requests_by_id(broker) == asked
    assert value(service.metrics, "streamal_requests_reasked_total") == 0


def _reasking_service(tmp_path, clock, broker=None):
    return make(tmp_path, broker=broker, clock=clock, pending_max_age_s=60.0, reask_expired=True,
                learner=lambda: ActiveLearner(budget=0.1, seed=0))


def test_an_expired_request_still_informative_is_asked_once_more_and_its_label_joins(tmp_path):
    clock = Clock()
    broker, service = _reasking_service(tmp_path, clock)
    truth = produce_instances(broker, 500)
    drain(service)
    first = requests_by_id(broker)
    decided_before = service.instances_decided
    clock.now += 61
    drain(service, 2)
    again = requests_by_id(broker) - first
    reasked = value(service.metrics, "streamal_requests_reasked_total")
    # Decided under the budget like any instance: some, not all, are asked again, each once.
    assert 0 < reasked < len(first) and len(again) == reasked and set(again.values()) == {1}
    assert set(service.pending.ids()) == set(again)
    assert service.instances_decided == decided_before  # a re-ask is not an instance
    assert value(service.metrics, "streamal_instances_total") == 500
    # The answer to a re-ask joins.
    reask_id = next(iter(again))
    broker.append("streamal.labels", orjson.dumps({"id": reask_id, "label": truth[reask_id]}), reask_id)
    drain(service)
    assert value(service.metrics, "streamal_labels_total", outcome="joined") == 1
    # A second expiry does not ask a third time.
    clock.now += 61
    drain(service, 2)
    assert requests_by_id(broker) == first + again
    assert value(service.metrics, "streamal_labels_total", outcome="expired") == len(first) + reasked - 1


def test_a_rebuilt_replica_knows_which_requests_were_asked_again(tmp_path):
    clock = Clock()
    broker, service = _reasking_service(tmp_path, clock)
    produce_instances(broker, 500)
    drain(service)
    clock.now += 30
    produce_instances(broker, 500, start=500)
    drain(service)
    clock.now += 31  # the first 500's requests expire; some are asked again
    drain(service, 2)
    asked = requests_by_id(broker)
    twice = {i for i, n in asked.items() if n == 2}
    assert twice
    pending = set(service.pending.ids())
    # A new replica without a checkpoint rebuilds the pending requests from the log:
    shutil.rmtree(tmp_path / "state", ignore_errors=True)
    _, rebuilt = _reasking_service(tmp_path, clock, broker)
    drain(rebuilt, 2)
    assert twice <= set(rebuilt.pending.ids()) and pending <= set(rebuilt.pending.ids()) | twice
    clock.now += 61  # everything expires: the re-asked ones are not asked a third time
    drain(rebuilt, 2)
    assert max(requests_by_id(broker).values()) == 2


def test_at_a_full_budget_every_expired_request_is_asked_again_exactly_once(tmp_path):
    clock = Clock()
    broker, service = make(tmp_path, clock=clock, pending_max_age_s=60.0, reask_expired=True,
                           learner=lambda: ActiveLearner(budget=1.0, seed=0))
    produce_instances(broker, 100)
    drain(service)
    assert len(requests_by_id(broker)) == 100
    for _ in range(3):
        clock.now += 61
        drain(service, 2)
    assert set(requests_by_id(broker).values()) == {2}
    assert value(service.metrics, "streamal_requests_reasked_total") == 100
    assert value(service.metrics, "streamal_labels_total", outcome="expired") == 200


def test_with_two_replicas_only_the_owner_of_an_instance_asks_again(tmp_path):
    clock = Clock()
    broker = MemoryBroker()
    replicas = [
        make(tmp_path / f"r{p}", broker=broker, member=[p], clock=clock, pending_max_age_s=60.0,
             reask_expired=True, instance_partitions=2, learner=lambda: ActiveLearner(budget=1.0, seed=0))[1]
        for p in (0, 1)
    ]
    produce_instances(broker, 100)
    for _ in range(3):
        for r in replicas:
            drain(r, 5)
    assert len(requests_by_id(broker)) == 100
    assert all(len(r.pending) == 100 for r in replicas)  # each knows the group's requests
    clock.now += 61
    for _ in range(3):
        for r in replicas:
            drain(r, 2)
    assert set(requests_by_id(broker).values()) == {2}  # asked again once, not once per replica
    assert sum(value(r.metrics, "streamal_requests_reasked_total") for r in replicas) == 100
    assert [value(r.metrics, "streamal_capacity_share_ratio") for r in replicas] == [0.5, 0.5]


def test_requests_dropped_at_the_pending_bound_are_counted(tmp_path):
    broker, service = make(tmp_path, pending_max=10)
    produce_instances(broker, 500)
    drain(service)
    asked = len(requests_by_id(broker))
    assert asked > 10 and len(service.pending) == 10
    assert value(service.metrics, "streamal_pending_evicted_total") == asked - 10


def test_records_read_again_after_a_failed_commit_are_committed_not_decided_again(tmp_path):
    broker, service = make(tmp_path, partitions=1)
    produce_instances(broker, 1000)
    drain(service, 3)
    asked = len(broker.records("streamal.label-requests"))
    service.group.seek("streamal.instances", 0, 0)  # what a rejoin after a failed commit does
    drain(service, 3)
    # The 90 % not asked about would otherwise be decided again, and some of them asked: the budget paid twice.
    assert len(broker.records("streamal.label-requests")) == asked
    assert value(service.metrics, "streamal_instances_skipped_total", reason="already_decided") == 1000
    assert value(service.metrics, "streamal_instances_total") == 1000
    assert broker.committed["g"][("streamal.instances", 0)] == 1000

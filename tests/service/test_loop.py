"""The service loop on the in-memory broker: the contract, without a network."""

from __future__ import annotations

import orjson
import pytest
from river import datasets

from streamal import ActiveLearner
from streamal.service.changelog import epoch
from streamal.service.loop import LoopConfig, Service
from streamal.service.memory import MemoryBroker
from streamal.service.metrics import Metrics

TOPICS = ("streamal.instances", "streamal.label-requests", "streamal.labels", "streamal.training",
          "streamal.dead-letter")


def make(tmp_path, broker=None, partitions=2, learner=None, clock=None, member=None, **config):
    """A started service on ``broker``; ``member`` = the partition numbers of a replica of a larger group."""
    broker = broker or MemoryBroker()
    for t in TOPICS:
        broker.create(t, partitions)
    cfg = LoopConfig(state_dir=tmp_path / "state", **config)
    service = Service(
        cfg,
        learner or (lambda: ActiveLearner(budget=0.1, seed=0)),
        group=broker.source([cfg.topic_instances, cfg.topic_labels], group_id="g", partitions=member),
        log_source=broker.source([cfg.topic_training, cfg.topic_label_requests]),
        sink=broker.sink(),
        metrics=Metrics(),
        **({"clock": clock} if clock else {}),
    )
    service.start()
    return broker, service


def produce_instances(broker, n, start=0):
    truth = {}
    for i, (x, y) in enumerate(list(datasets.Phishing())[start:start + n], start):
        broker.append("streamal.instances", orjson.dumps({"id": f"i{i}", "features": x}), f"i{i}")
        truth[f"i{i}"] = str(y)  # a label is a string or a number, not a bool
    return truth


def answer(broker, truth, already=()):
    answered = set(already)
    for r in broker.records("streamal.label-requests"):
        req = orjson.loads(r.value)
        if req["id"] not in answered:
            broker.append("streamal.labels", orjson.dumps({"id": req["id"], "label": truth[req["id"]]}), req["id"])
            answered.add(req["id"])
    return answered


def drain(service, steps=20):
    for _ in range(steps):
        service.step(0)


def value(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels or None)


def test_stream_loop_asks_at_budget_joins_labels_and_learns(tmp_path):
    broker, service = make(tmp_path)
    truth = produce_instances(broker, 1000)
    drain(service)
    requests = [orjson.loads(r.value) for r in broker.records("streamal.label-requests")]
    assert 0.09 * 1000 <= len(requests) <= 0.105 * 1000 + 5
    req = requests[0]
    assert set(req) >= {"id", "features", "score", "strategy", "threshold", "prediction", "model_version",
                        "mode", "requested_at"}
    assert req["mode"] == "stream" and 0 <= req["score"] <= 1
    # Keys are instance ids: the request lands on the instance's partition number.
    by_id = {r.key: r.partition for r in broker.records("streamal.instances")}
    assert all(by_id[r.key] == r.partition for r in broker.records("streamal.label-requests"))
    answer(broker, truth)
    drain(service)
    training = [orjson.loads(r.value) for r in broker.records("streamal.training")]
    assert len(training) == len(requests) and {t["source"] for t in training} == {"joined"}
    assert service.learner.n_learned == len(requests)
    assert value(service.metrics, "streamal_labels_total", outcome="joined") == len(requests)
    # Every instance and label offset is committed.
    committed = broker.committed["g"]
    for topic in ("streamal.instances", "streamal.labels"):
        for p, part in enumerate(broker.topics[topic]):
            assert committed.get((topic, p), 0) == len(part)


def test_labels_of_every_kind(tmp_path):
    broker, service = make(tmp_path, classes=("True", "False"))
    truth = produce_instances(broker, 300)
    drain(service)
    asked = [orjson.loads(r.value)["id"] for r in broker.records("streamal.label-requests")]
    first, second = asked[0], asked[1]
    for raw, key in [
        (orjson.dumps({"id": first, "label": truth[first]}), first),  # joined
        (orjson.dumps({"id": first, "label": truth[first]}), first),  # duplicate
        (orjson.dumps({"id": "never-asked", "label": "True"}), "never-asked"),  # orphaned
        (orjson.dumps({"id": "u1", "label": "True", "features": {"a": 1.0}}), "u1"),  # unsolicited
        (orjson.dumps({"id": second, "label": "purple"}), second),  # not in STREAMAL_CLASSES
        (orjson.dumps({"id": second, "label": True}), second),  # wrong type: a bool is not a label
        (orjson.dumps({"id": second, "label": truth[second]}), second),  # still joins
    ]:
        broker.append("streamal.labels", raw, key)
    drain(service)
    m = service.metrics
    assert value(m, "streamal_labels_total", outcome="joined") == 2
    assert value(m, "streamal_labels_total", outcome="duplicate") == 1
    assert value(m, "streamal_labels_total", outcome="orphaned") == 1
    assert value(m, "streamal_labels_total", outcome="unsolicited") == 1
    dead = [orjson.loads(r.value)["reason"] for r in broker.records("streamal.dead-letter")]
    assert sorted(dead) == ["bad_label", "unknown_class"]
    assert service.learner.n_learned == 3


BAD_INSTANCES = [
    (b"{not json", "malformed_json"),
    (b"[1, 2]", "not_an_object"),
    (b'{"features": {"a": 1}}', "missing_id"),
    (b'{"id": 7, "features": {"a": 1}}', "bad_id"),
    (b'{"id": "x", "features": [1]}', "bad_features"),
    (b'{"id": "x", "features": {"a": NaN}}', "malformed_json"),
    (b'{"id": "x", "features": {"a": 1e400}}', "non_finite"),
    (b"\xff\xfe", "invalid_utf8"),
    (b"", "empty"),
    (None, "empty"),
    (b'{"id": "x", "features": {"a": "' + b"z" * 3000 + b'"}}', "too_large"),
]


def test_bad_instances_are_dead_lettered_and_good_ones_all_processed(tmp_path):
    broker, service = make(tmp_path, partitions=1, max_message_bytes=2048, dead_letter_max_bytes=100)
    good = 0
    for i, (raw, _) in enumerate(BAD_INSTANCES):
        broker.append("streamal.instances", orjson.dumps({"id": f"g{i}", "features": {"a": float(i)}}), f"g{i}")
        broker.append("streamal.instances", raw, f"b{i}")
        good += 1
    drain(service)
    dead = [orjson.loads(r.value) for r in broker.records("streamal.dead-letter")]
    assert [d["reason"] for d in dead] == [reason for _, reason in BAD_INSTANCES]
    assert all(d["source"]["topic"] == "streamal.instances" and d["raw_size"] >= 0 for d in dead)
    big = dead[-1]
    assert big["truncated"] and big["raw_size"] > 3000
    assert value(service.metrics, "streamal_instances_total") == good
    assert broker.committed["g"][("streamal.instances", 0)] == 2 * len(BAD_INSTANCES)


def test_restart_restores_model_and_pending_requests(tmp_path):
    broker, service = make(tmp_path)
    truth = produce_instances(broker, 600)
    drain(service)
    answered = answer(broker, truth)
    drain(service)
    service.checkpoint()
    learned = service.learner.n_learned
    more = produce_instances(broker, 400, start=600)
    truth |= more
    drain(service)  # new requests after the checkpoint
    outstanding = set(service.pending.ids())
    assert outstanding
    assert service.learner.eager_start  # a first start: the model was cold, the advance sought
    # A new process on the same state directory and broker.
    _, again = make(tmp_path, broker=broker)
    assert again.learner.n_learned >= learned
    assert not again.learner.eager_start  # restored: not cold, the advance not sought again
    assert outstanding <= set(again.pending.ids())  # rebuilt from the label-requests topic
    answer(broker, truth, answered)
    drain(again)
    assert again.learner.n_learned == len(broker.records("streamal.training"))
    assert value(again.metrics, "streamal_labels_total", outcome="orphaned") in (None, 0.0)


def test_pool_mode_requests_ranked_batches(tmp_path):
    broker, service = make(tmp_path, mode="pool", pool_size=200, pool_seconds=3600)
    produce_instances(broker, 1000)
    drain(service)
    requests = [orjson.loads(r.value) for r in broker.records("streamal.label-requests")]
    assert len(requests) == 100  # 10 % of 5 windows of 200
    batches = {}
    for r in requests:
        assert r["mode"] == "pool"
        batches.setdefault(r["batch_id"], []).append(r["rank"])
    assert len(batches) == 5 and all(sorted(v) == list(range(20)) for v in batches.values())


def test_checkpoint_survives_a_torn_write(tmp_path):
    broker, service = make(tmp_path)
    produce_instances(broker, 200)
    drain(service)
    good = service.checkpoint()
    torn = service.checkpoint()
    model_file = tmp_path / "state" / orjson.loads(torn.read_bytes())["model_file"]
    model_file.write_bytes(model_file.read_bytes()[:10])  # a crash mid-write of the newest
    from streamal.service.checkpoint import load_latest

    assert load_latest(tmp_path / "state").seq == orjson.loads(good.read_bytes())["seq"]


def test_a_checkpoint_of_another_state_format_is_skipped_and_the_log_rebuilds_it(tmp_path):
    broker, service = make(tmp_path)
    truth = produce_instances(broker, 600)
    drain(service)
    answer(broker, truth)
    drain(service)
    meta = service.checkpoint()
    outstanding = set(service.pending.ids())
    data = orjson.loads(meta.read_bytes())
    meta.write_bytes(orjson.dumps({**data, "format": 1}))  # as an older streamal wrote it
    from streamal.service.checkpoint import load_latest

    assert load_latest(tmp_path / "state") is None
    _, again = make(tmp_path, broker=broker)
    assert again.learner.n_learned == len(broker.records("streamal.training"))  # replayed from the start
    assert not again.learner.eager_start  # rebuilt from the log: not cold either
    assert outstanding <= set(again.pending.ids())


@pytest.mark.parametrize("n", [1, 7])
def test_decisions_same_one_by_one_and_in_polls(tmp_path, n):
    """Polls of any size give the decisions of one-by-one asking (no labels arrive in between)."""
    broker, service = make(tmp_path, partitions=1, poll_max_records=n)
    produce_instances(broker, 300)
    drain(service, steps=400)
    asked = [orjson.loads(r.value)["id"] for r in broker.records("streamal.label-requests")]
    al = ActiveLearner(budget=0.1, seed=0)
    expected = [f"i{i}" for i, (x, _) in enumerate(list(datasets.Phishing())[:300]) if al.ask(x).query]
    assert asked == expected


def test_budget_follows_annotator_capacity(tmp_path):
    """STREAMAL_LABELS_PER_HOUR: 360 labels/h at 10 instances/s is a 1 % budget, then backlog slows it."""
    now = [0.0]
    broker = MemoryBroker()
    for t in TOPICS:
        broker.create(t, 1)
    cfg = LoopConfig(state_dir=tmp_path / "state", poll_max_records=10, labels_per_hour=360.0)
    service = Service(cfg, lambda: ActiveLearner(budget=0.5, seed=0),
                      group=broker.source([cfg.topic_instances, cfg.topic_labels], group_id="g"),
                      log_source=broker.source([cfg.topic_training, cfg.topic_label_requests]),
                      sink=broker.sink(), metrics=Metrics(), clock=lambda: now[0])
    service.start()
    produce_instances(broker, 1250)
    for _ in range(125):
        service.step(0)
        now[0] += 1.0
    # 0.1 label/s ÷ 10 instances/s, less the share of an hour's work already waiting.
    expected = 0.01 * (1 - len(service.pending) / 360)
    assert service.learner.budget_in_force == pytest.approx(expected, rel=0.05)
    assert value(service.metrics, "streamal_budget_ratio") == pytest.approx(expected, rel=0.05)
    # Unanswered requests pile up: with an hour of annotator work waiting, asking stops.
    for i in range(360):
        service.pending.add(f"waiting{i}", {}, now[0], "t")
    service.step(0)
    assert service.learner.budget_in_force == pytest.approx(1e-6)


def test_consumer_lag_is_measured(tmp_path):
    broker, service = make(tmp_path, partitions=1, poll_max_records=100, lag_every_s=0.0)
    produce_instances(broker, 300)
    service.step(0)
    assert value(service.metrics, "streamal_consumer_lag_records", topic="streamal.instances", partition="0") == 200
    drain(service)
    assert value(service.metrics, "streamal_consumer_lag_records", topic="streamal.instances", partition="0") == 0


def test_a_refused_commit_does_not_stop_the_service(tmp_path):
    """A rebalance can refuse a commit: the records are read again by their new owner."""
    from streamal.service.errors import CommitError

    broker, service = make(tmp_path, partitions=1)
    commit = service.group.commit
    refused = []

    def refuse_once(offsets):
        if not refused:
            refused.append(offsets)
            raise CommitError("rebalanced", topic="streamal.instances", partition=0, offset=1)
        commit(offsets)

    service.group.commit = refuse_once
    produce_instances(broker, 300)
    drain(service)
    assert refused and value(service.metrics, "streamal_commit_failures_total") == 1
    assert value(service.metrics, "streamal_instances_total") == 300
    produce_instances(broker, 10, start=300)
    drain(service)
    assert broker.committed["g"][("streamal.instances", 0)] == 310


def requests_of(broker):
    return [orjson.loads(r.value) for r in broker.records("streamal.label-requests")]


def test_a_restart_with_a_new_budget_applies_it_at_once(tmp_path):
    """STREAMAL_BUDGET 5 % then 2 %: the restored learner follows 2 % and the metric says 2 %."""
    broker, service = make(tmp_path, learner=lambda: ActiveLearner(budget=0.05, seed=0))
    truth = produce_instances(broker, 1000)
    drain(service)
    answer(broker, truth)
    drain(service)
    service.close()
    first = len(requests_of(broker))
    assert 45 <= first <= 55
    _, again = make(tmp_path, broker=broker, learner=lambda: ActiveLearner(budget=0.02, seed=0))
    assert again.learner.n_learned == first  # the checkpoint was loaded (same shape)
    assert again.learner.budget_in_force == 0.02 == value(again.metrics, "streamal_budget_ratio")
    for round_ in range(4):  # phishing again under new ids: 5,000 more instances
        for i, (x, _) in enumerate(datasets.Phishing()):
            broker.append("streamal.instances", orjson.dumps({"id": f"r{round_}-{i}", "features": x}), f"r{round_}-{i}")
    drain(again, steps=40)
    later = len(requests_of(broker)) - first
    assert later / 5000 == pytest.approx(0.02, rel=0.05)
    assert value(again.metrics, "streamal_label_rate_ratio") == pytest.approx(again.learner.label_rate)


def test_a_restart_with_another_strategy_rebuilds_the_learner_from_the_training_topic(tmp_path, caplog):
    broker, service = make(tmp_path)
    truth = produce_instances(broker, 600)
    drain(service)
    answer(broker, truth)
    drain(service)
    service.close()
    learned = len(broker.records("streamal.training"))
    with caplog.at_level("WARNING", logger="streamal.service"):
        _, again = make(tmp_path, broker=broker, learner=lambda: ActiveLearner(strategy="entropy", budget=0.1))
    assert "strategy 'margin' -> 'entropy'" in caplog.text and "rebuilding it from the training topic" in caplog.text
    assert again.learner.strategy == "entropy"
    assert again.learner.n_learned == learned  # every example, learned again from the changelog
    assert again.strategy_name == "entropy"
    # Its checkpoints come after the old ones, so the next start loads the new learner.
    again.close()
    _, third = make(tmp_path, broker=broker, learner=lambda: ActiveLearner(strategy="entropy", budget=0.1))
    assert third.learner.n_learned == learned and "entropy" in repr(third.learner)


def test_a_failed_flush_moves_no_budget_and_leaves_no_checkpoint(tmp_path):
    from streamal.service.errors import DeliveryError

    broker, service = make(tmp_path, partitions=1)
    produce_instances(broker, 300)
    drain(service)
    rate, decided = service.learner.label_rate, service.learner._budget.guard.n
    state = sorted((tmp_path / "state").glob("checkpoint-*.json"))
    sink_flush = service.sink.flush

    def fail(timeout_s=None):
        service.sink._queued.clear()  # the broker never stored them
        raise DeliveryError("broker down", topic="streamal.label-requests")

    service.sink.flush = fail
    produce_instances(broker, 300, start=300)
    with pytest.raises(DeliveryError):
        service.step(0)
    assert service.learner._budget.guard.n == decided and service.learner.label_rate == rate  # nothing counted
    service.sink.flush = sink_flush
    service.close()
    assert sorted((tmp_path / "state").glob("checkpoint-*.json")) == state  # close wrote no checkpoint
    assert broker.committed["g"][("streamal.instances", 0)] == 300  # nor committed


def test_an_instance_already_asked_about_is_not_asked_again(tmp_path):
    broker, service = make(tmp_path, partitions=1)
    truth = produce_instances(broker, 1000)
    drain(service)
    asked = requests_of(broker)
    # Read again (a crash before the commit) or produced twice: the same ids once more.
    produce_instances(broker, 1000)
    drain(service)
    ids = [r["id"] for r in requests_of(broker)]
    assert len(ids) > len(asked) and len(ids) == len(set(ids))  # the others are decided anew, none asked twice
    assert value(service.metrics, "streamal_instances_skipped_total", reason="already_requested") == len(asked)
    answer(broker, truth)
    drain(service)
    produce_instances(broker, 1000)
    drain(service)
    ids = [r["id"] for r in requests_of(broker)]
    assert len(ids) == len(set(ids))  # never the same id twice
    answered = len(broker.records("streamal.training"))
    assert value(service.metrics, "streamal_instances_skipped_total", reason="already_labeled") == answered


def test_labels_per_hour_is_the_whole_groups_capacity(tmp_path):
    """Two replicas, one partition each: together they ask for the capacity, not twice it."""
    now = [0.0]
    broker = MemoryBroker()
    replicas = [
        make(tmp_path / f"r{p}", broker=broker, partitions=2, member=[p], clock=lambda: now[0], poll_max_records=10,
             labels_per_hour=720.0, instance_partitions=2, learner=lambda: ActiveLearner(seed=0))[1]
        for p in (0, 1)
    ]
    data = list(datasets.Phishing()) * 5
    truth, answered = {}, set()
    for second in range(600):  # 10 instances/s over both partitions for 10 minutes, answered at once
        for i in range(second * 10, second * 10 + 10):
            broker.append("streamal.instances", orjson.dumps({"id": f"i{i}", "features": data[i][0]}), f"i{i}")
            truth[f"i{i}"] = str(data[i][1])
        for service in replicas:
            service.step(0)
        answered = answer(broker, truth, answered)
        now[0] += 1.0
    # 720 labels/h = 0.2 label/s for the group (each replica taking all of it would make 0.4/s),
    # counted over the last 5 minutes, once the arrival rate is measured and the cold start paid back.
    times = [epoch(orjson.loads(r.value)["requested_at"]) for r in broker.records("streamal.label-requests")]
    assert sum(t >= 300 for t in times) / 300 == pytest.approx(0.2, rel=0.1)
    for service in replicas:  # each replica: half of the capacity over its ~5 instances/s
        assert service.learner.budget_in_force == pytest.approx(0.1 / 5.0, rel=0.15)
        assert value(service.metrics, "streamal_budget_ratio") == service.learner.budget_in_force


def test_pool_mode_sizes_its_batches_from_the_budget_in_force(tmp_path):
    """Annotator capacity reaches pool mode: the window's batch follows the budget in force."""
    now = [0.0]
    broker, service = make(tmp_path, partitions=1, clock=lambda: now[0], mode="pool", pool_size=100,
                           poll_max_records=10, labels_per_hour=360.0, learner=lambda: ActiveLearner(budget=0.5))
    produce_instances(broker, 1000)
    for _ in range(100):  # 10 instances/s: 0.1 label/s is a 1 % budget
        service.step(0)
        now[0] += 1.0
    batches = {}
    for r in requests_of(broker):
        batches.setdefault(r["batch_id"], 0)
        batches[r["batch_id"]] += 1
    assert service.learner.budget_in_force == pytest.approx(0.01, rel=0.2)
    assert max(batches.values()) <= 2 and sum(batches.values()) == pytest.approx(0.01 * 1000, abs=2)  # not 50 a window


def test_an_instance_or_example_the_model_cannot_compute_with_is_set_aside_not_a_crash(tmp_path):
    """A Hoeffding tree's Gaussian leaves square the raw feature: 1e200 overflows (River raises)."""
    broker, service = make(tmp_path, partitions=1, learner=lambda: ActiveLearner(model="hoeffding_tree", budget=0.5))
    truth = produce_instances(broker, 300)
    drain(service)
    answer(broker, truth)
    drain(service)
    x = dict(next(iter(datasets.Phishing()))[0])
    x["empty_server_form_handler"] = 1e200
    broker.append("streamal.instances", orjson.dumps({"id": "huge", "features": x}), "huge")
    produce_instances(broker, 10, start=300)
    drain(service)
    dead = [orjson.loads(r.value) for r in broker.records("streamal.dead-letter")]
    assert [d["reason"] for d in dead] == ["unscorable"] and dead[0]["source"]["offset"] == 300
    assert value(service.metrics, "streamal_instances_total") == 310  # the rest of the poll was decided
    # The same numbers on the training topic (an unsolicited label): skipped and counted, the loop goes on.
    broker.append("streamal.labels", orjson.dumps({"id": "huge2", "label": "1", "features": x}), "huge2")
    drain(service)
    assert value(service.metrics, "streamal_rejected_total", topic="streamal.training", reason="unlearnable") == 1
    produce_instances(broker, 10, start=310)
    drain(service)
    assert value(service.metrics, "streamal_instances_total") == 320


def test_with_a_class_list_a_number_and_its_text_are_one_class(tmp_path):
    broker, service = make(tmp_path, classes=("0", "1"))
    produce_instances(broker, 300)
    drain(service)
    asked = [r["id"] for r in requests_of(broker)]
    for i, ident in enumerate(asked[:6]):
        label = (0, "0", 1, "1", 1.0, 0)[i]  # numbers and strings of the two listed classes
        broker.append("streamal.labels", orjson.dumps({"id": ident, "label": label}), ident)
    drain(service)
    assert {orjson.loads(r.value)["label"] for r in broker.records("streamal.training")} == {"0", "1"}
    assert service.learner.classes == {"0", "1"}
    assert value(service.metrics, "streamal_rejected_total", topic="streamal.labels", reason="unknown_class") == 1


def test_a_malformed_label_request_on_the_log_is_counted(tmp_path):
    broker, service = make(tmp_path, partitions=1)
    broker.append("streamal.label-requests", b"{not json", "x1")
    drain(service, steps=2)
    assert value(service.metrics, "streamal_rejected_total", topic="streamal.label-requests",
                 reason="malformed_json") == 1

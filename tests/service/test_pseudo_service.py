"""STREAMAL_PSEUDO_LABELS on the in-memory broker: pseudo-labels are training records of their own source.

The replica that owns an instance produces its pseudo-label to the training
topic (``"source": "pseudo"``), counted in ``streamal_pseudo_labels_total``
and never in ``streamal_labels_total``; every replica, and a replica rebuilt
from the log, learns it from there like any training record, as a
pseudo-label.
"""

from __future__ import annotations

from collections import Counter

import orjson
import pytest
from river import datasets

from streamal import ActiveLearner
from streamal.core.pseudo import PseudoLabels
from streamal.service.loop import LoopConfig, Service
from streamal.service.memory import MemoryBroker
from streamal.service.messages import TrainingRecord, encode, parse_training_record
from streamal.service.metrics import LABEL_OUTCOMES, Metrics
from streamal.service.settings import SettingsError, load_settings

TOPICS = ("streamal.instances", "streamal.label-requests", "streamal.labels", "streamal.training",
          "streamal.dead-letter")
PHISHING = [(x, str(y)) for x, y in datasets.Phishing()]  # a label is a string or a number, not a bool
#: The benchmark's p80k5: fires often enough on phishing with the default model to be seen.
LOOSE = {"pseudo_labels": True, "pseudo_min_proba": 0.8, "pseudo_per_label": 5.0}


def make(tmp_path, broker=None, partitions=2, state="state", **config):
    broker = broker or MemoryBroker()
    for t in TOPICS:
        broker.create(t, partitions)
    cfg = LoopConfig(state_dir=tmp_path / state, **config)
    service = Service(
        cfg, lambda: ActiveLearner(budget=0.1, seed=0),
        group=broker.source([cfg.topic_instances, cfg.topic_labels], group_id="g"),
        log_source=broker.source([cfg.topic_training, cfg.topic_label_requests]),
        sink=broker.sink(), metrics=Metrics(),
    )
    service.start()
    return broker, service


def produce(broker, start, stop, prefix="i"):
    for i in range(start, stop):
        broker.append("streamal.instances", orjson.dumps({"id": f"{prefix}{i}", "features": PHISHING[i][0]}),
                      f"{prefix}{i}")


def answer_all(broker, answered):
    for r in broker.records("streamal.label-requests"):
        req = orjson.loads(r.value)
        if req["id"] not in answered:
            broker.append("streamal.labels", orjson.dumps({"id": req["id"], "label": truth(req["id"])}), req["id"])
            answered.add(req["id"])


def truth(id_):
    return PHISHING[int(id_.lstrip("ir"))][1]


def stream(broker, service, stop=None, start=0, chunk=50, prefix="i"):
    """Instances in chunks, each decided, its requests answered and the labels learned before the next."""
    stop = len(PHISHING) if stop is None else stop
    answered: set[str] = set()
    for lo in range(start, stop, chunk):
        produce(broker, lo, min(lo + chunk, stop), prefix)
        service.step(0)
        answer_all(broker, answered)
        service.step(0)
        service.step(0)


def training(broker):
    return [orjson.loads(r.value) for r in broker.records("streamal.training")]


def value(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels or None)


def test_pseudo_labels_are_training_records_of_their_own_source_counted_apart(tmp_path):
    broker, service = make(tmp_path, **LOOSE)
    stream(broker, service)
    records = training(broker)
    by_source = Counter(t["source"] for t in records)
    pseudo = [t for t in records if t["source"] == "pseudo"]
    asked = {orjson.loads(r.value)["id"] for r in broker.records("streamal.label-requests")}
    assert by_source["pseudo"] > by_source["joined"] > 0 and set(by_source) == {"joined", "pseudo"}
    for t in pseudo:  # the model's label for an instance nobody was asked about, no person's fields
        assert t["id"] not in asked and set(t) == {"id", "features", "label", "source", "labeled_at"}
        assert t["features"] == PHISHING[int(t["id"][1:])][0] and t["label"] in ("True", "False")
        assert parse_training_record(orjson.dumps(t), 1 << 20).source == "pseudo"
    assert len({t["id"] for t in pseudo}) == len(pseudo)

    m, learner = service.metrics, service.learner
    assert value(m, "streamal_pseudo_labels_total") == len(pseudo)
    assert value(m, "streamal_labels_total", outcome="joined") == by_source["joined"]
    assert sum(value(m, "streamal_labels_total", outcome=o) for o in LABEL_OUTCOMES
               if o != "new_class") == by_source["joined"]  # new_class: counted besides joined
    assert learner.n_pseudo == len(pseudo) and learner.n_real == by_source["joined"]
    assert learner.n_learned == len(records) == value(m, "streamal_model_version")
    assert learner.n_pseudo <= 5 * learner.n_real
    # The label rate and the accuracy on labeled data are the real labels' only.
    assert value(m, "streamal_label_rate_ratio") == learner.label_rate == pytest.approx(len(asked) / len(PHISHING))
    assert value(m, "streamal_labeled_predictions_total") < by_source["joined"]
    assert value(m, "streamal_label_to_model_seconds_count") == by_source["joined"]
    # A pseudo-labeled id is no answered request: read again, the instance is decided again.
    assert not any(service.pending.was_joined(t["id"]) for t in pseudo)


def test_off_by_default(tmp_path):
    assert LoopConfig().pseudo_labels is False and LoopConfig().pseudo_rule() is None
    broker, service = make(tmp_path)
    stream(broker, service, stop=600)
    assert service.learner.pseudo_labels is None and service.learner.n_pseudo == 0
    assert {t["source"] for t in training(broker)} == {"joined"}
    assert value(service.metrics, "streamal_pseudo_labels_total") == 0


def test_pseudo_labels_not_yet_read_back_count_against_the_cap(tmp_path):
    """One poll of 1,000 instances, every one confident: at most k · real − pseudo of them become pseudo-labels."""
    broker, service = make(tmp_path, pseudo_labels=True, pseudo_min_proba=0.5, pseudo_per_label=1.0, pseudo_warmup=0)
    stream(broker, service, stop=50)  # the cold start: most of these asked, so the cap has room
    learner = service.learner
    room = learner.n_real - learner.n_pseudo
    assert room > 0
    before = value(service.metrics, "streamal_pseudo_labels_total")
    produce(broker, 50, 1050)
    service.step(0)  # decides the poll, produces, flushes, then reads the log back
    made = value(service.metrics, "streamal_pseudo_labels_total") - before
    assert made == room  # all 900-odd unasked instances were confident enough: the cap decided
    assert learner.n_pseudo == learner.n_real and not service.changelog.pseudo_in_flight


def test_every_replica_and_a_rebuilt_one_learn_them_as_pseudo_labels(tmp_path):
    broker, service = make(tmp_path, **LOOSE)
    stream(broker, service)
    service.close()
    records = training(broker)
    pseudo = sum(t["source"] == "pseudo" for t in records)
    # A replica with a state directory of its own (no checkpoint) rebuilds from the log: with the setting off too.
    for config in (LOOSE, {}):
        _, rebuilt = make(tmp_path, broker=broker, state=f"rebuilt-{len(config)}", **config)
        assert rebuilt.replayed and rebuilt.learner.n_learned == len(records)
        assert rebuilt.learner.n_pseudo == pseudo == service.learner.n_pseudo
        assert rebuilt.learner.n_real == len(records) - pseudo
        assert value(rebuilt.metrics, "streamal_pseudo_labels_total") == 0  # produced by the first one
        assert value(rebuilt.metrics, "streamal_labeled_predictions_total") <= len(records) - pseudo


def test_a_restart_turns_the_setting_on_and_off(tmp_path, caplog):
    broker, service = make(tmp_path)
    stream(broker, service, stop=400)
    service.close()
    learned = service.learner.n_learned
    with caplog.at_level("INFO", logger="streamal.service"):
        _, on = make(tmp_path, broker=broker, **LOOSE)
    assert on.learner.n_learned == learned and "rebuilding" not in caplog.text  # the checkpoint was loaded
    assert on.learner.pseudo_labels == PseudoLabels(0.8, 20, 5.0) and "pseudo-labels None -> " in caplog.text
    stream(broker, on, start=400, stop=len(PHISHING))
    made = on.learner.n_pseudo
    assert made > 0 and sum(t["source"] == "pseudo" for t in training(broker)) == made
    on.close()
    _, off = make(tmp_path, broker=broker)
    assert off.learner.pseudo_labels is None and off.learner.n_pseudo == made
    stream(broker, off, prefix="r", stop=len(PHISHING))  # phishing again under new ids
    assert off.learner.n_pseudo == made and value(off.metrics, "streamal_pseudo_labels_total") == 0


def test_a_persons_label_for_a_pseudo_labeled_instance_still_trains(tmp_path):
    broker, service = make(tmp_path, **LOOSE)
    stream(broker, service)
    pseudo = next(t for t in training(broker) if t["source"] == "pseudo")
    real = service.learner.n_real
    broker.append("streamal.labels", orjson.dumps({"id": pseudo["id"], "label": pseudo["label"],
                                                   "features": pseudo["features"]}), pseudo["id"])
    service.step(0)
    service.step(0)
    assert value(service.metrics, "streamal_labels_total", outcome="unsolicited") == 1
    assert value(service.metrics, "streamal_labels_total", outcome="duplicate") == 0
    assert [t["source"] for t in training(broker) if t["id"] == pseudo["id"]] == ["pseudo", "unsolicited"]
    assert service.learner.n_real == real + 1


def test_pool_mode_is_refused():
    with pytest.raises(ValueError, match="pseudo_labels: stream mode only"):
        Service(LoopConfig(mode="pool", pseudo_labels=True), ActiveLearner, None, None, None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- settings and the contract


def test_the_settings_reach_the_loop(monkeypatch):
    monkeypatch.setenv("STREAMAL_PSEUDO_LABELS", "true")
    monkeypatch.setenv("STREAMAL_PSEUDO_MIN_PROBA", "0.95")
    monkeypatch.setenv("STREAMAL_PSEUDO_WARMUP", "50")
    monkeypatch.setenv("STREAMAL_PSEUDO_PER_LABEL", "2")
    config = LoopConfig.from_settings(load_settings())
    assert config.pseudo_rule() == PseudoLabels(min_proba=0.95, warmup=50, per_label=2.0)
    defaults = load_settings(pseudo_labels=None)
    monkeypatch.delenv("STREAMAL_PSEUDO_LABELS")
    assert LoopConfig.from_settings(load_settings()).pseudo_rule() is None
    assert (defaults.pseudo_min_proba, defaults.pseudo_warmup, defaults.pseudo_per_label) == (0.95, 50, 2.0)


@pytest.mark.parametrize("overrides, message", [
    ({"pseudo_labels": "maybe"}, "STREAMAL_PSEUDO_LABELS must be true or false"),
    ({"pseudo_min_proba": 0}, "STREAMAL_PSEUDO_MIN_PROBA must be > 0"),
    ({"pseudo_min_proba": 1.2}, "STREAMAL_PSEUDO_MIN_PROBA must be <= 1"),
    ({"pseudo_min_proba": "nan"}, "STREAMAL_PSEUDO_MIN_PROBA must be a finite number"),
    ({"pseudo_warmup": -1}, "STREAMAL_PSEUDO_WARMUP must be >= 0"),
    ({"pseudo_warmup": 2.5}, "STREAMAL_PSEUDO_WARMUP must be an integer"),
    ({"pseudo_per_label": 0}, "STREAMAL_PSEUDO_PER_LABEL must be > 0"),
    ({"pseudo_labels": True, "task": "regression"}, "STREAMAL_PSEUDO_LABELS is for classification only"),
    ({"pseudo_labels": True, "mode": "pool"}, "STREAMAL_PSEUDO_LABELS works in stream mode only"),
])
def test_bad_settings_fail_at_start_up_naming_the_setting(overrides, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(**overrides)


def test_regression_and_pool_mode_are_fine_with_the_setting_off():
    assert load_settings(task="regression", mode="pool", pseudo_min_proba=0.5).pseudo_labels is False


def test_a_pseudo_record_round_trips_and_other_sources_are_still_refused():
    record = TrainingRecord(id="t-1", features={"a": 1.0}, label="x", source="pseudo",
                            labeled_at="2026-01-01T00:00:00.000Z")
    assert parse_training_record(encode(record), 1 << 20) == record
    with pytest.raises(ValueError):
        TrainingRecord(id="t-1", features={}, label="x", source="model", labeled_at="2026-01-01T00:00:00.000Z")

"""``streamal export``: a checkpoint the service wrote → a River pipeline loaded in a process without streamal's service."""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
from datetime import datetime

import orjson
import pytest
import river
from click.testing import CliRunner

import streamal
from streamal import ActiveLearner
from streamal.apps.cli import main
from streamal.apps.datasets import load
from streamal.service import checkpoint as ckpt
from streamal.service.loop import LoopConfig, Service
from streamal.service.memory import MemoryBroker
from streamal.service.metrics import Metrics
from tests.apps.cli_run import one_line_error

TOPICS = ("streamal.instances", "streamal.label-requests", "streamal.labels", "streamal.training",
          "streamal.dead-letter")

#: Loads the export with pickle and river only (pickle imports what the file names), predicts, learns one more.
LOADER = """
import json, pickle, sys
import river
with open(sys.argv[1], "rb") as fh:
    model = pickle.load(fh)
with open(sys.argv[2]) as fh:
    xs = json.load(fh)
out = {
    "type": type(model).__module__ + "." + type(model).__qualname__,
    "predictions": [model.predict_one(x) for x in xs],
    "probas": [model.predict_proba_one(x) for x in xs],
    "loaded": sorted(m for m in ("kafka", "pydantic", "prometheus_client", "click", "streamal.service",
                                 "streamal.apps") if m in sys.modules),
}
model.learn_one(xs[0], out["predictions"][0])
json.dump(out, sys.stdout)
"""


def run_service(state_dir, learner_factory, examples, checkpoints=2):
    """The service on the in-memory broker over ``examples`` (labels answered from the truth); a checkpoint after each part."""
    broker = MemoryBroker()
    for t in TOPICS:
        broker.create(t, 2)
    cfg = LoopConfig(state_dir=state_dir)
    service = Service(cfg, learner_factory, group=broker.source([cfg.topic_instances, cfg.topic_labels], group_id="g"),
                      log_source=broker.source([cfg.topic_training, cfg.topic_label_requests]), sink=broker.sink(),
                      metrics=Metrics())
    service.start()
    truth, answered = {}, set()
    size = len(examples) // checkpoints
    for part in range(checkpoints):
        for i, (x, y) in enumerate(examples[part * size:(part + 1) * size], part * size):
            broker.append("streamal.instances", orjson.dumps({"id": f"i{i}", "features": x}), f"i{i}")
            truth[f"i{i}"] = str(y) if isinstance(y, bool) else y  # a label is a string or a number
        for _ in range(3):  # decide, answer the requests, learn the joined examples
            for _ in range(10):
                service.step(0)
            for r in broker.records("streamal.label-requests"):
                rid = orjson.loads(r.value)["id"]
                if rid not in answered:
                    broker.append("streamal.labels", orjson.dumps({"id": rid, "label": truth[rid]}), rid)
                    answered.add(rid)
        service.checkpoint()
    return broker


CASES = {
    # free text, a category and a number: the feature step is most of what the model needs
    "tickets": (lambda: ActiveLearner(budget=0.2, text_features=["body"], seed=0), "tickets"),
    "hoeffding_tree": (lambda: ActiveLearner(model="hoeffding_tree", budget=0.3, seed=0), "phishing"),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def served(request, tmp_path_factory):
    """A state directory with two checkpoints of a real service, its broker, and instances it never saw."""
    factory, dataset = CASES[request.param]
    examples = [(orjson.loads(orjson.dumps(x)), y) for x, y in load(dataset, limit=700).examples]  # as JSON carries them
    state_dir = tmp_path_factory.mktemp(request.param) / "state"
    broker = run_service(state_dir, factory, examples[:600])
    return state_dir, broker, [x for x, _ in examples[600:]]


def export(*args, env=None):
    return CliRunner().invoke(main, ["export", *map(str, args)], env=env)


def test_the_export_predicts_as_the_service_in_a_process_that_loads_only_river(served, tmp_path):
    state_dir, _, fresh = served
    out = tmp_path / "model.pkl"
    result = export("--state-dir", state_dir, "--output", out)
    assert result.exit_code == 0, result.output
    xs = tmp_path / "instances.json"
    xs.write_text(json.dumps(fresh))
    loaded = subprocess.run([sys.executable, "-c", LOADER, str(out), str(xs)], capture_output=True, text=True,
                            cwd=tmp_path, check=False)
    assert loaded.returncode == 0, loaded.stderr
    got = json.loads(loaded.stdout)
    learner = ckpt.load_latest(state_dir).learner
    assert got["type"] == "river.compose.pipeline.Pipeline"
    assert got["loaded"] == []  # the feature step comes from streamal's core; the service stack stays unloaded
    want = json.loads(json.dumps({"predictions": [learner.predict_one(x) for x in fresh],
                                  "probas": [learner.predict_proba_one(x) for x in fresh]}))
    assert got["predictions"] == want["predictions"] and got["probas"] == want["probas"]  # the same floats
    assert len(set(got["predictions"])) > 1


def test_the_sidecar_says_what_made_the_model(served, tmp_path):
    state_dir, broker, _ = served
    out = tmp_path / "model.pkl"
    assert export("--state-dir", state_dir, "--output", out).exit_code == 0
    side = json.loads((tmp_path / "model.pkl.json").read_text())
    newest = ckpt.load_latest(state_dir)
    learner = newest.learner
    assert side["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (side["streamal_version"], side["river_version"], side["python_version"]) == (
        streamal.__version__, river.__version__, platform.python_version())
    assert side["checkpoint"] == {"seq": newest.seq, "state_dir": str(state_dir.resolve()),
                                  "state_format": ckpt.STATE_FORMAT}
    assert side["positions"] == {t: {str(p): o for p, o in ps.items()} for t, ps in newest.positions.items()}
    # Every training record was learned: the offsets, the model version and the topic agree.
    assert sum(side["positions"]["streamal.training"].values()) == side["model_version"] == learner.n_learned
    assert side["model_version"] == len(broker.records("streamal.training")) > 0
    assert side["classes"] == sorted(map(str, learner.classes)) and len(side["classes"]) >= 2
    assert side["shape"] == newest.extra["shape"] and side["shape"]["model"] == learner.model
    assert side["learner"]["text_features"] == list(learner.text_features)
    assert side["learner"]["budget"] == learner.budget and side["learner"]["seed"] == 0
    assert side["object"].startswith("river.compose.Pipeline: streamal.core.features.Featurizer | river.")
    assert datetime.fromisoformat(side["created"]).utcoffset() is not None


def test_an_older_checkpoint_is_exported_when_named(served, tmp_path):
    state_dir, _, _ = served
    first, newest = ckpt.sequence_numbers(state_dir)
    out = tmp_path / "old.pkl"
    assert export("--state-dir", state_dir, "--checkpoint", first, "--output", out).exit_code == 0
    side = json.loads((tmp_path / "old.pkl.json").read_text())
    assert side["checkpoint"]["seq"] == first
    assert side["model_version"] == ckpt.load(state_dir, first).learner.n_learned
    assert side["model_version"] < ckpt.load(state_dir, newest).learner.n_learned


def _corrupt(state_dir, seq):
    """Change one byte of the model file of checkpoint ``seq`` (its length stays: only the hash tells)."""
    meta = json.loads((state_dir / f"checkpoint-{seq:012d}.json").read_text())
    model = state_dir / meta["model_file"]
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))


def test_a_changed_model_file_is_refused(served, tmp_path):
    state_dir = tmp_path / "state"
    shutil.copytree(served[0], state_dir)
    first, newest = ckpt.sequence_numbers(state_dir)
    _corrupt(state_dir, newest)
    out = tmp_path / "model.pkl"
    named = export("--state-dir", state_dir, "--checkpoint", newest, "--output", out)
    one_line_error(named, "--checkpoint", "SHA-256", f"model-{newest:012d}.bin")
    assert not out.exists()
    # Without --checkpoint, the newest valid one is exported, and the one passed over is named.
    result = CliRunner().invoke(main, ["export", "--state-dir", str(state_dir), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"model-{newest:012d}.bin does not match the SHA-256" in result.stderr
    assert json.loads((tmp_path / "model.pkl.json").read_text())["checkpoint"]["seq"] == first
    _corrupt(state_dir, first)
    out.unlink()
    none_valid = export("--state-dir", state_dir, "--output", out)
    one_line_error(none_valid, "--state-dir", "no valid checkpoint", "SHA-256")
    assert not out.exists()


def test_no_checkpoint_is_refused_naming_the_state_dir(tmp_path):
    out = tmp_path / "model.pkl"
    one_line_error(export("--state-dir", tmp_path / "nowhere", "--output", out), "--state-dir", "does not exist")
    (tmp_path / "empty").mkdir()
    one_line_error(export("--state-dir", tmp_path / "empty", "--output", out), "--state-dir", "holds no checkpoint")
    defaulted = export("--output", out, env={"STREAMAL_STATE_DIR": str(tmp_path / "empty")})
    one_line_error(defaulted, "--state-dir", "STREAMAL_STATE_DIR", str(tmp_path / "empty"))
    assert not out.exists()


def test_an_unknown_checkpoint_or_an_unwritable_output_is_refused(served, tmp_path):
    state_dir = served[0]
    one_line_error(export("--state-dir", state_dir, "--checkpoint", 999, "--output", tmp_path / "m.pkl"),
                   "--checkpoint", "no checkpoint", "999")
    one_line_error(export("--state-dir", state_dir, "--output", tmp_path / "missing" / "m.pkl"),
                   "--output", "does not exist")
    one_line_error(export("--state-dir", state_dir, "--output", tmp_path), "--output", "is a directory")

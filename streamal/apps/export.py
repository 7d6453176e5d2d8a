"""``streamal export``: the model of a checkpoint as a file a River user loads, with what made it beside it.

The file is the learner's feature step and River model as one River
pipeline (``Featurizer | model``), pickled: ``predict_one`` and
``predict_proba_one`` on a raw instance, as the service's instances carry
it, give the service's prediction, and ``learn_one`` goes on learning. The
bare model would be useless alone: it learned from the standardised, one-hot
and TF-IDF features the feature step makes. Unpickling needs ``river`` and
``streamal`` (its core, for the feature step) importable.

Beside it, ``<output>.json`` (:func:`sidecar_path`): the versions, the
checkpoint and the training offsets the model reflects, the settings that
shaped the learner, its classes, how many examples it learned, the SHA-256
of the exported file and when it was written. See ``docs/export.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import river

import streamal
from streamal.core.errors import ParameterError
from streamal.service import checkpoint as ckpt

#: Protocol 5 loads on Python 3.8 and later (the checkpoints use it too).
PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL


@dataclass(frozen=True)
class Exported:
    """What :func:`export` wrote, and the newer checkpoints it passed over (each with why)."""

    model_path: Path
    sidecar_path: Path
    sidecar: dict[str, Any]
    skipped: list[str]


def sidecar_path(output: Path) -> Path:
    """The JSON beside an exported model: ``model.pkl`` → ``model.pkl.json``.

    >>> sidecar_path(Path("out/model.pkl")).as_posix()
    'out/model.pkl.json'
    """
    return output.with_name(output.name + ".json")


def choose(state_dir: Path, seq: int | None = None) -> tuple[ckpt.Checkpoint, list[str]]:
    """Checkpoint ``seq`` of ``state_dir`` (default: the newest valid one) and why newer ones were passed over.

    Raises :class:`ParameterError` naming ``checkpoint`` (``seq`` cannot be
    used, and why) or ``state_dir`` (no checkpoint, or none valid).
    """
    if seq is not None:
        try:
            return ckpt.load(state_dir, seq), []
        except ckpt.CheckpointError as exc:
            raise ParameterError("checkpoint", f"{exc} (in {state_dir})") from None
    seqs = ckpt.sequence_numbers(state_dir)
    if not seqs:
        what = "does not exist" if not state_dir.exists() else "holds no checkpoint"
        raise ParameterError("state_dir", f"{state_dir} {what} (the service writes checkpoints there while it "
                                          "runs and when it stops)")
    chosen = ckpt.load_latest(state_dir)
    newer = [s for s in reversed(seqs) if chosen is None or s > chosen.seq]
    skipped = [_why_not(state_dir, s) for s in newer]
    if chosen is None:
        raise ParameterError("state_dir", f"no valid checkpoint in {state_dir}: the newest, {skipped[0]}")
    return chosen, skipped


def _why_not(state_dir: Path, seq: int) -> str:
    """Why checkpoint ``seq`` cannot be used (``load_latest`` passed over it)."""
    try:
        ckpt.load(state_dir, seq)
    except ckpt.CheckpointError as exc:
        return str(exc)
    return f"checkpoint {seq} was written while this export read the directory"


def describe(chosen: ckpt.Checkpoint, state_dir: Path, model_bytes: bytes, pipeline: Any) -> dict[str, Any]:
    """The sidecar of an export: versions, checkpoint, offsets, settings, classes, hash (no secrets)."""
    learner = chosen.learner
    return {
        "format": "pickle",
        "pickle_protocol": PICKLE_PROTOCOL,
        "object": f"river.compose.Pipeline: {' | '.join(_qualname(step) for step in pipeline.steps.values())}",
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "streamal_version": streamal.__version__,
        "river_version": river.__version__,
        "python_version": platform.python_version(),
        "checkpoint": {"seq": chosen.seq, "state_dir": str(state_dir.resolve()), "state_format": ckpt.STATE_FORMAT},
        "positions": {topic: {str(p): o for p, o in sorted(ps.items())} for topic, ps in sorted(chosen.positions.items())},
        "learner": {
            "task": learner.task,
            "model": str(learner.model),
            "strategy": str(learner.strategy),
            "budget_manager": str(learner.budget_manager),
            "budget": learner.budget,
            "budget_in_force": learner.budget_in_force,
            "text_features": list(learner.text_features),
            "drift_boost": learner.drift_boost,
            "seed": learner.seed,
        },
        "shape": chosen.extra.get("shape"),
        "classes": [c if isinstance(c, (str, int, float, bool)) else str(c) for c in sorted(learner.classes, key=str)],
        "model_version": learner.n_learned,
    }


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path`` and rename it into place (never half a file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ParameterError("output", f"{path}: cannot write it ({exc.strerror or exc})") from None


def export(state_dir: Path, output: Path, seq: int | None = None) -> Exported:
    """Write the model of checkpoint ``seq`` (default: the newest valid) to ``output``, and its sidecar beside it."""
    chosen, skipped = choose(state_dir, seq)
    pipeline = chosen.learner.pipeline()
    model_bytes = pickle.dumps(pipeline, protocol=PICKLE_PROTOCOL)
    sidecar = describe(chosen, state_dir, model_bytes, pipeline)
    side = sidecar_path(output)
    _write(output, model_bytes)
    _write(side, (json.dumps(sidecar, indent=2) + "\n").encode())
    return Exported(output, side, sidecar, skipped)

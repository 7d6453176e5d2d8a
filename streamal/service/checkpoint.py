"""Atomic checkpoints of the learner, the pending requests and the topic positions.

A checkpoint is two files in the state directory, written to temporary names
and renamed into place (``os.replace`` is atomic on POSIX), metadata last:

- ``model-<seq>.bin``: the learner, pickled. It is the service's own state,
  written and read only by the service in its own directory — never data
  from a topic, which is always parsed as JSON;
- ``checkpoint-<seq>.json``: the sequence number, the topic positions the
  model reflects, the pending requests, and the SHA-256 of the model file.

Start-up loads the newest checkpoint whose model file exists and matches its
hash, so a crash in the middle of writing leaves the previous one in force.
The last ``keep`` checkpoints are kept. A checkpoint of another
:data:`STATE_FORMAT` (written by a streamal whose learner is laid out
differently) is skipped: the service then rebuilds the model and the pending
requests from the start of the training and label-requests topics.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


#: Bumped whenever the pickled learner's layout changes (2: feature statistics as shifted sums;
#: 3: the budget guard's eager start, quantile's sorted history in a SortedList).
STATE_FORMAT = 3


@dataclass
class Checkpoint:
    seq: int
    learner: Any
    positions: dict[str, dict[int, int]] = field(default_factory=dict)  # topic → partition → next offset
    pending: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save(state_dir: Path, checkpoint: Checkpoint, keep: int = 3) -> Path:
    """Write ``checkpoint`` atomically; returns the metadata file."""
    state_dir.mkdir(parents=True, exist_ok=True)
    model_bytes = pickle.dumps(checkpoint.learner, protocol=pickle.HIGHEST_PROTOCOL)
    model_path = _model_path(state_dir, checkpoint.seq)
    _atomic_write(model_path, model_bytes)
    meta = {
        "seq": checkpoint.seq,
        "format": STATE_FORMAT,
        "model_file": model_path.name,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
        "positions": {t: {str(p): o for p, o in ps.items()} for t, ps in checkpoint.positions.items()},
        "pending": checkpoint.pending,
        "extra": checkpoint.extra,
    }
    meta_path = state_dir / f"checkpoint-{checkpoint.seq:012d}.json"
    _atomic_write(meta_path, json.dumps(meta).encode())
    for seq in sequence_numbers(state_dir)[:-keep]:
        (state_dir / f"checkpoint-{seq:012d}.json").unlink(missing_ok=True)
        _model_path(state_dir, seq).unlink(missing_ok=True)
    return meta_path


def _model_path(state_dir: Path, seq: int) -> Path:
    """Where checkpoint ``seq`` keeps its model: named from the number, never from the metadata's
    text, so a checkpoint file can make streamal read or delete nothing outside the state directory."""
    return state_dir / f"model-{seq:012d}.bin"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, and why (``load`` raises it; ``load_latest`` skips such ones)."""


def sequence_numbers(state_dir: Path) -> list[int]:
    """The sequence numbers of the checkpoints in ``state_dir``, oldest first, valid or not."""
    if not state_dir.is_dir():
        return []
    seqs = []
    for meta_path in state_dir.glob("checkpoint-*.json"):
        number = meta_path.stem.removeprefix("checkpoint-")
        if number.isdigit():
            seqs.append(int(number))
    return sorted(seqs)


def load(state_dir: Path, seq: int) -> Checkpoint:
    """Checkpoint ``seq`` of ``state_dir``, its model hash-checked; :class:`CheckpointError` says why not."""
    meta_path = state_dir / f"checkpoint-{seq:012d}.json"
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format", 1) != STATE_FORMAT:
            raise CheckpointError(f"checkpoint {seq} is of state format {meta.get('format', 1)}, and this streamal "
                                  f"reads format {STATE_FORMAT}")
        model_path = _model_path(state_dir, seq)
        model_bytes = model_path.read_bytes()
        if hashlib.sha256(model_bytes).hexdigest() != meta["model_sha256"]:
            raise CheckpointError(f"{model_path.name} does not match the SHA-256 recorded in {meta_path.name}: "
                                  "it changed after it was written")
        learner = pickle.loads(model_bytes)  # noqa: S301 — our own file, hash-checked
        positions = {t: {int(p): int(o) for p, o in ps.items()} for t, ps in meta.get("positions", {}).items()}
        return Checkpoint(meta["seq"], learner, positions, meta.get("pending", {}), meta.get("extra", {}))
    except FileNotFoundError as exc:
        if exc.filename == str(meta_path):
            raise CheckpointError(f"there is no checkpoint {seq} ({meta_path.name})") from None
        raise CheckpointError(f"the model file of checkpoint {seq} is missing ({Path(exc.filename).name})") from None
    except (OSError, ValueError, KeyError, pickle.UnpicklingError, EOFError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {seq} cannot be read: {type(exc).__name__}: {exc}") from None


def load_latest(state_dir: Path) -> Checkpoint | None:
    """The newest valid checkpoint in ``state_dir``, or ``None``."""
    for seq in reversed(sequence_numbers(state_dir)):
        try:
            return load(state_dir, seq)
        except CheckpointError:
            continue
    return None

"""Model selection (issue 13): the default model against candidates that learn side by side.

On the nine anchor streams at budgets of 1, 5, 10 and 20 %, with streamal's
default strategy and budget manager, runs the model variants below and
prints, per variant, each stream's gap to its best anchor at a realised rate
no higher (``best_anchor_at_rate`` of ``label_efficiency.py``), the mean gap
and the gain over the strongest single anchor per budget, how often each
member led, and the cost per instance of ``ask_many`` (a poll of 2,000, what ``serve``
does) and of ``ask``, and per label of ``learn``, with the learners as their
runs left them, each as a ratio to the default model's on the same stream
and budget, timed interleaved in the same process.

Variants (``--variants``): ``default`` is ``ActiveLearner()`` as shipped;
``sel:<members>[:weighted][:d<decay>][:z<z>]`` is a :class:`ModelSelector` of
members from ``lr`` (streamal's logistic regression), ``nb`` (Gaussian NB),
``ht`` (Hoeffding tree), ``knn`` (k-NN over the last 200 labels) run by
:class:`SelectingLearner`, a prototype of the learner change the selector
needs (standardised inputs for every member, the logistic regression
member's warm-up refits, the vectorised path while it leads); ``raw:<model>``
is a registered model alone, as ``ActiveLearner(model=...)`` builds it;
``plain:<members>[...]`` is the same selector as ``sel:`` given to
``ActiveLearner(model=ModelSelector(...))`` as it is today (no
standardisation, no warm-up refits, no vectorised path): what a user gets.

    python -m benchmarks.model_selection --jobs 2
    python -m benchmarks.model_selection --streams bananas,phishing --limit 3000 --variants default,sel:lr+nb+ht
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import pickle
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from river import naive_bayes, neighbors, tree  # noqa: E402

from benchmarks.anchors import load_anchors  # noqa: E402
from benchmarks.label_efficiency import BUDGETS, best_anchor_at_rate, mean, strongest_anchor  # noqa: E402
from benchmarks.streams import ANCHOR_STREAMS, load  # noqa: E402
from streamal import ActiveLearner  # noqa: E402
from streamal.core import batch  # noqa: E402
from streamal.core.evaluate import prequential  # noqa: E402
from streamal.core.features import Featurizer  # noqa: E402
from streamal.core.learner import WARMUP_EPOCHS, WARMUP_LABELS, Decision, _check_instance  # noqa: E402
from streamal.core.models import build_model  # noqa: E402
from streamal.core.selection import DECAY, ModelSelector, Z, gaussian_nb_proba  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CACHE = Path(os.environ.get("STREAMAL_STREAM_CACHE", "/tmp/streamal_streams"))
DEFAULT_VARIANTS = "default,sel:lr+nb,sel:lr+nb:z4,sel:lr+nb+ht,sel:lr+nb+ht:weighted"
POLL = 2000
LEARN = 200


def member(code: str) -> Any:
    if code == "lr":
        return build_model("logistic_regression", "classification")[0]
    if code == "nb":
        return naive_bayes.GaussianNB()
    if code == "ht":
        return tree.HoeffdingTreeClassifier()
    if code == "knn":
        return neighbors.KNNClassifier(n_neighbors=5, engine=neighbors.LazySearch(window_size=200))
    raise ValueError(f"unknown member {code!r}: lr, nb, ht or knn")


def selector(variant: str) -> ModelSelector:
    """``sel:lr+nb+ht[:weighted][:d0.99][:z2]`` → the selector it names (decay, z)."""
    _, codes, *opts = variant.split(":")
    mode = "weighted" if "weighted" in opts else "leader"
    decay = next((float(o[1:]) for o in opts if o.startswith("d")), DECAY)
    z = next((float(o[1:]) for o in opts if o.startswith("z")), Z)
    return ModelSelector({c: member(c) for c in codes.split("+")}, mode=mode, decay=decay, z=z)


class SelectingLearner(ActiveLearner):
    """``ActiveLearner(model=ModelSelector(...))`` with the learner change the selector needs (a prototype).

    1. Inputs standardised for the selector (as for a registered scaled model).
    2. The warm-up refits (``WARMUP_LABELS``) apply to its logistic-regression
       member: the new label first goes through ``selector.learn_one`` (every
       member scored, then trained), then that member is refit on all labels so far.
    3. Predictions and ``ask_many`` use the vectorised one-vs-rest path while
       that member leads (``"leader"`` mode); ``ask_many`` uses
       :func:`gaussian_nb_proba` while Gaussian NB leads; otherwise the
       leader's ``predict_proba_one``.
    """

    vectorise_nb = True

    def __init__(self, model: ModelSelector, **kwargs: Any) -> None:
        super().__init__(model=model, **kwargs)
        self._features = Featurizer(self.text_features, scale=True)
        self._lr = next((m for m in self._model.members.values() if batch.is_ovr_logistic(m)), None)
        self._warmup = [] if self._lr is not None else None

    def _refit(self, x, y):
        warmup = self._warmup
        warmup.append((dict(x), y))
        self._model.learn_one(self._features.transform_one(x), y)
        lr = self._lr
        examples = [(self._features.transform_one(xi), yi) for xi, yi in warmup]
        lr.classifiers.clear()
        for _ in range(WARMUP_EPOCHS):
            for zi, yi in examples:
                batch.ovr_logistic_learn_one(lr, zi, yi)
        if len(warmup) >= WARMUP_LABELS:
            self._warmup = None

    def _with_leader(self, method, *args):
        sel = self._model
        if sel.mode == "leader" and batch.is_ovr_logistic(sel.leader):
            self._model, self._ovr_logistic = sel.leader, True
            try:
                return method(*args)
            finally:
                self._model, self._ovr_logistic = sel, False
        return method(*args)

    def _decide(self, z, budget):
        return self._with_leader(super()._decide, z, budget)

    def _walk(self, xs, budget):
        sel = self._model
        if not (self.vectorise_nb and sel.mode == "leader" and type(sel.leader) is naive_bayes.GaussianNB and xs
                and not self.cold):
            return self._with_leader(super()._walk, xs, budget)
        # ActiveLearner._walk's vectorised branch, with Gaussian NB's probabilities
        for x in xs:
            if x.__class__ is not dict:
                _check_instance(x)
        matrix = self._features.learn_transform_many(xs)
        if matrix is None:  # not all plain numbers under the same names: one by one
            return self._with_leader(super()._walk, xs, budget)
        classes, p = gaussian_nb_proba(sel.leader, *matrix)
        scores = self._score_many(p).tolist()
        predictions = [classes[i] for i in p.argmax(axis=1).tolist()]
        rows = p.tolist()
        self._asked = (xs[-1], predictions[-1])
        out = []
        for i, score in enumerate(scores):
            threshold = budget.threshold
            out.append(Decision(budget.ask(score), score, threshold, predictions[i], rows[i], classes))
        return out

    def _predict(self, z):
        return self._with_leader(super()._predict, z)


def make(variant: str, budget: float, seed: int) -> ActiveLearner:
    if variant == "default":
        return ActiveLearner(budget=budget, seed=seed)
    if variant.startswith("raw:"):
        return ActiveLearner(model=variant[4:], budget=budget, seed=seed)
    if variant.startswith("plain:"):
        return ActiveLearner(model=selector(variant), budget=budget, seed=seed)
    return SelectingLearner(selector(variant), budget=budget, seed=seed)


def stream_data(name: str) -> list[tuple[dict, Any]]:
    """The stream as a list, built once per machine and kept in ``CACHE`` (generation is not what we time)."""
    path = CACHE / f"{name}.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    data = list(load(name))
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}")
    tmp.write_bytes(pickle.dumps(data))
    tmp.replace(path)
    return data


def timings(learners: dict[str, ActiveLearner], data: list[tuple[dict, Any]], repeat: int) -> dict[str, dict[str, float]]:
    """Seconds per instance of ``ask_many`` (one poll of ``POLL``) and of ``ask``, and per label of ``learn``.

    Each on copies of the learners as their runs left them, the variants
    interleaved and the best of ``repeat`` kept, so a busy machine slows all
    alike: ``ask_many`` and ``ask`` over the stream's first ``POLL``
    instances, ``learn`` of its first ``LEARN`` examples.
    """
    xs = [x for x, _ in data[:POLL]]
    examples = data[:LEARN]
    best = {v: {"ask_many": math.inf, "ask": math.inf, "learn": math.inf} for v in learners}
    for _ in range(repeat):
        for v, learner in learners.items():
            al = copy.deepcopy(learner)
            t = time.perf_counter()
            al.ask_many(xs)
            best[v]["ask_many"] = min(best[v]["ask_many"], (time.perf_counter() - t) / len(xs))
            al = copy.deepcopy(learner)
            t = time.perf_counter()
            for x in xs:
                al.ask(x)
            best[v]["ask"] = min(best[v]["ask"], (time.perf_counter() - t) / len(xs))
            al = copy.deepcopy(learner)
            t = time.perf_counter()
            for x, y in examples:
                al.learn(x, y)
            best[v]["learn"] = min(best[v]["learn"], (time.perf_counter() - t) / len(examples))
    return best


def run_one(job: tuple[str, float, int, int | None, tuple[str, ...], int]) -> list[dict[str, Any]]:
    """Every variant on one stream and budget: accuracy, rate, leader, and the costs of :func:`timings`."""
    stream_name, budget, seed, limit, variants, repeat = job
    data = stream_data(stream_name)[:limit] if limit else stream_data(stream_name)
    out, learners = [], {}
    for variant in variants:
        learner = learners[variant] = make(variant, budget, seed)
        result = prequential(learner, data, expected=len(data), trace_points=0)
        sel = learner._model if isinstance(learner._model, ModelSelector) else None
        out.append({
            "stream": stream_name, "budget": budget, "variant": variant, "n": result.n, "labels": result.labels,
            "accuracy": result.accuracy, "label_rate": result.label_rate,
            "leader": sel.leader_name if sel else None,
            "scores": sel.scores if sel else None, "switches": sel.switches if sel else None,
        })
    costs = timings(learners, data, repeat)
    for r in out:
        r.update(costs[r["variant"]])
    return out


def print_tables(results: list[dict[str, Any]], streams: list[str], variants: list[str]) -> None:
    anchors = load_anchors()
    by = {(r["variant"], r["stream"], r["budget"]): r for r in results}
    print("\n## Gap to each stream's best anchor at a realised rate no higher (acc − anchor, points)\n")
    print("| stream | budget | " + " | ".join(variants) + " |")
    print("|---|---:|" + "---:|" * len(variants))
    gaps: dict[tuple[str, float], list[float]] = {}
    for s in streams:
        for b in BUDGETS:
            cells = []
            for v in variants:
                r = by.get((v, s, b))
                if r is None:
                    cells.append("—")
                    continue
                acc, rate = 100 * r["accuracy"], 100 * r["label_rate"]
                best = best_anchor_at_rate(anchors.per_stream.get(s, {}), b, rate)
                if best is None:
                    cells.append(f"{acc:.2f} / {rate:.2f} (no anchor)")
                    continue
                gaps.setdefault((v, b), []).append(acc - best[1])
                lead = f" [{r['leader']}]" if r["leader"] else ""
                cells.append(f"{acc:.2f} / {rate:.2f}: {acc - best[1]:+.2f}{lead}")
            print(f"| {s} | {b:.0%} | " + " | ".join(cells) + " |")
    print("\nCells: accuracy % / realised rate %: gap [leader at the end of the stream].")
    full_set = all(s in anchors.per_stream for s in streams)
    print("\n## Means over the streams: mean gap to each stream's best anchor; gain over the strongest single anchor\n")
    print("| variant | " + " | ".join(f"{b:.0%} gap / gain / rate" for b in BUDGETS) + " | worst stream gap |")
    print("|---|" + "---:|" * (len(BUDGETS) + 1))
    for v in variants:
        cells, worst = [], []
        for b in BUDGETS:
            rs = [by[(v, s, b)] for s in streams if (v, s, b) in by]
            if len(rs) != len(streams):
                cells.append("—")
                continue
            strongest = strongest_anchor(anchors.per_stream, streams, b)
            acc = mean(100 * r["accuracy"] for r in rs)
            gain = f"{acc - strongest[1]:+.2f}" if full_set and strongest else "—"
            cells.append(f"{mean(gaps.get((v, b), [])):+.2f} / {gain} / {mean(100 * r['label_rate'] for r in rs):.2f}")
            worst.append(min(gaps.get((v, b), [0.0])))
        print(f"| {v} | " + " | ".join(cells) + f" | {min(worst) if worst else float('nan'):+.2f} |")
    print("\n## Cost per instance and per label, µs (geometric mean over the runs of the ratio to `default`)\n")
    print(f"| variant | ask_many, poll of {POLL:,} | ratio | ask, one by one | ratio | learn, per label | ratio "
          "| worst ask_many ratio (stream, budget) |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for v in variants:
        rs = [(r, by[("default", r["stream"], r["budget"])]) for r in results
              if r["variant"] == v and ("default", r["stream"], r["budget"]) in by]
        if not rs:
            continue
        cells = []
        for k in ("ask_many", "ask", "learn"):
            ratio = math.exp(mean(math.log(r[k] / d[k]) for r, d in rs))
            cells.append(f"{1e6 * mean(r[k] for r, _ in rs):.1f} | {ratio:.2f}")
        worst = max(rs, key=lambda t: t[0]["ask_many"] / t[1]["ask_many"])
        print(f"| {v} | " + " | ".join(cells) + f" | {worst[0]['ask_many'] / worst[1]['ask_many']:.2f} "
              f"({worst[0]['stream']}, {worst[0]['budget']:.0%}, leader {worst[0]['leader']}) |")
    print(f"\nTimed after each run on copies of the learners, variants interleaved, best of --repeat: ask_many and "
          f"ask over the stream's first {POLL:,} instances, learn of its first {LEARN} examples.")
    sel_rs = [r for r in results if r["leader"]]
    if sel_rs:
        print("\n## Leader at the end of each run (runs per member)\n")
        for v in variants:
            counts: dict[str, int] = {}
            for r in sel_rs:
                if r["variant"] == v:
                    counts[r["leader"]] = counts.get(r["leader"], 0) + 1
            if counts:
                switches = [r["switches"] for r in sel_rs if r["variant"] == v]
                print(f"- {v}: " + ", ".join(f"{k} {n}" for k, n in sorted(counts.items(), key=lambda t: -t[1]))
                      + f"; leader changes per run: mean {mean(switches):.1f}, max {max(switches)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", help="comma-separated (default: the nine anchor streams)")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS)
    parser.add_argument("--budgets", help="comma-separated fractions (default: 0.01,0.05,0.1,0.2)")
    parser.add_argument("--limit", type=int, help="first N instances of each stream (exploration only)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=7, help="timings: best of this many")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    streams = args.streams.split(",") if args.streams else list(ANCHOR_STREAMS)
    variants = list(dict.fromkeys(["default", *args.variants.split(",")]))
    budgets = [float(b) for b in args.budgets.split(",")] if args.budgets else list(BUDGETS)
    for s in streams:  # build the cache once, before the workers race for it
        stream_data(s)
    jobs = [(s, b, args.seed, args.limit, tuple(variants), args.repeat) for s in streams for b in budgets]
    jobs.sort(key=lambda j: -len(stream_data(j[0])))
    print(f"{len(jobs)} jobs × {len(variants)} variants, {args.jobs} workers", file=sys.stderr)
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    out = args.out or RESULTS / "model_selection.jsonl"
    out.parent.mkdir(exist_ok=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool, out.open("w") as f:
        for i, fut in enumerate(as_completed([pool.submit(run_one, j) for j in jobs]), 1):
            rs = fut.result()
            results.extend(rs)
            f.write("".join(json.dumps(r) + "\n" for r in rs))  # one line per run, as they finish
            f.flush()
            print(f"\r  {i}/{len(jobs)}", end="", file=sys.stderr, flush=True)
    print(f"\ndone in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    limit = f", first {args.limit:,} instances" if args.limit else ""
    print(f"# Model selection — seed {args.seed}{limit}; streamal's default strategy and budget manager; "
          f"results in {out.name}")
    print_tables(results, streams, variants)


if __name__ == "__main__":
    main()

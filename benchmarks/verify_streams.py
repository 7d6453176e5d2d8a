"""Check the stream definitions and baselines against the published anchors.

Re-runs the deterministic anchors (``river full [LR|HT]``, ``river random
[LR|HT]``) on the nine anchor streams and prints our figures next to the
published ones. With ``--entropy`` it also calibrates EntropySampler with
:func:`benchmarks.baselines.calibrate_entropy_df` (about 5 minutes for all
nine streams), which should reproduce the published cells exactly.

Run from the repository root::

    python -m benchmarks.verify_streams [--entropy] [--streams a,b] [--tol 0.01]

Exits non-zero if a full/random accuracy differs by more than ``--tol``
points, or a calibrated EntropySampler cell differs at all.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from river import base

from benchmarks.anchors import load_anchors
from benchmarks.baselines import (
    FullSupervision,
    RandomSampling,
    calibrate_entropy_df,
    ht_model,
    lr_model,
    run_prequential,
)
from benchmarks.streams import ANCHOR_STREAMS, load

MODELS: dict[str, Callable[[int], base.Classifier]] = {"LR": lr_model, "HT": ht_model}


def main(argv: list[str] | None = None) -> int:
    """Print ours-vs-anchor lines; return 1 if any of them mismatches."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--streams", default=",".join(ANCHOR_STREAMS))
    ap.add_argument("--tol", type=float, default=0.01, help="allowed |diff|, points")
    ap.add_argument("--no-random", action="store_true", help="skip the random anchors")
    ap.add_argument("--entropy", action="store_true", help="also calibrate EntropySampler")
    args = ap.parse_args(argv)

    anchors = load_anchors()
    bad = 0
    print(f"{'stream':16s} {'anchor':28s} {'budget':>6s} {'ours':>15s} {'published':>15s} "
          f"{'diff':>6s} {'secs':>5s}")
    for name in args.streams.split(","):
        stream = load(name)
        published = anchors.per_stream[name]
        for tag, factory in MODELS.items():
            runs: list[tuple[str, float, object]] = [
                (f"river full [{tag}]", 1.0, FullSupervision(factory(stream.n_classes)))
            ]
            if not args.no_random:
                runs += [
                    (f"river random [{tag}]", b, RandomSampling(factory(stream.n_classes), b, 42))
                    for b in anchors.budgets
                ]
            for anchor, budget, learner in runs:
                r = run_prequential(stream, learner, trace_points=0)  # type: ignore[arg-type]
                ref = published[anchor][anchors.budgets[0] if budget == 1.0 else budget]
                diff = round(100 * r.accuracy, 2) - ref[0]
                ok = abs(diff) <= args.tol + 1e-9 and abs(round(100 * r.label_rate, 2) - ref[1]) < 0.005
                bad += not ok
                print(f"{name:16s} {anchor:28s} {budget:6.0%} "
                      f"{100 * r.accuracy:6.2f} / {100 * r.label_rate:6.2f} "
                      f"{ref[0]:6.2f} / {ref[1]:6.2f} {diff:+6.2f} {r.seconds:5.1f}"
                      f"{'' if ok else '  MISMATCH'}", flush=True)
            if args.entropy:
                anchor = f"river EntropySampler [{tag}]"
                for b in anchors.budgets:
                    df, r, met = calibrate_entropy_df(
                        stream, lambda: factory(stream.n_classes), b
                    )
                    ref = published[anchor][b]
                    flag = anchors.flags.get(name, {}).get(anchor, {}).get(b, "")
                    ours = (round(100 * r.accuracy, 2), round(100 * r.label_rate, 2))
                    ok = ours == ref and met == (flag != "‡")
                    bad += not ok
                    print(f"{name:16s} {anchor:28s} {b:6.0%} "
                          f"{ours[0]:6.2f} / {ours[1]:6.2f}{'' if met else '‡':1s}"
                          f"{ref[0]:6.2f} / {ref[1]:6.2f}{flag:1s} df={df:.3g}"
                          f"{'' if ok else '  MISMATCH'}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

"""Online model selection: several candidate models learn from the same labels; the best one answers.

No single online model fits every stream: a linear model cannot draw the
curved boundary of ``bananas``, a tree is slow to start on a hyperplane.
:class:`ModelSelector` is a River classifier that keeps a few candidates,
trains each on every label it is given and predicts with the one whose
recent prequential accuracy on those labels is the highest (``"leader"``),
or with a mixture weighted by their recent record (``"weighted"``).

The rule, per label ``(x, y)`` (test, then train): every member that has
learned something predicts ``x`` first; member ``m`` keeps decayed counts
``hits_m ← λ·hits_m + [ŷ_m = y]`` and ``seen_m ← λ·seen_m + 1``, so its
score ``acc_m = hits_m / seen_m`` is an accuracy over roughly the last
``1 / (1 − λ)`` labels and can change leader after a drift. Then every
member learns ``(x, y)``.

- ``"leader"`` (follow the leader, with a significance test): predict with
  the current leader ``ℓ`` (at first the first member, trusted before any
  evidence). Member ``m`` takes over when it beats ``ℓ`` by ``z`` standard
  deviations of a McNemar test on the decayed counts:
  ``hits_m − hits_ℓ > z · √disc_mℓ``, where ``disc_mℓ`` counts (decayed)
  the labels on which exactly one of the two was right (the labels where
  both were right or both wrong cancel in ``hits_m − hits_ℓ``); among
  several, the one with the largest ``hits_m − hits_ℓ``. With few labels
  a small lead is noise and changes nothing; a large one switches at once.
- ``"weighted"``: ``p(y|x) = Σ_m w_m p_m(y|x) / Σ_m w_m`` with
  ``w_m = exp(η · (acc_m − max acc))``: every member predicts on every
  instance.

References: follow the leader / online model selection (N. Cesa-Bianchi
and G. Lugosi, *Prediction, Learning, and Games*, Cambridge University
Press, 2006, ch. 2–4); weighted experts on a stream (J. Z. Kolter and M. A.
Maloof, *Dynamic Weighted Majority: An Ensemble Method for Drifting
Concepts*, JMLR 8, 2007).

Cost: a label costs one prediction and one ``learn_one`` per member (about
the sum of the members' costs); in ``"leader"`` mode an unlabeled instance
costs one prediction of the leader only, so a stream where the first member
leads decides as fast as that member alone (the learner can use its
vectorised path, see :attr:`ModelSelector.leader`). ``"weighted"`` costs a
prediction of every member per instance.

Labels chosen by active learning are not a random sample: they sit where
the deciding model is unsure, so the scores are biased against the leader,
and a member can look better on them than it is on the stream. The test
above is the guard (``z = 0`` switched to naive Bayes on ``phishing`` at 5 %
and lost 6.8 points). It is not a full cure: on a stream of one-hot
categories and a number (``test_numbers_and_categories`` of the learner's
tests, 10 %) the selector switched 4 times and reached 82.7 % against 89.2 %
for the logistic regression alone (``z = 4``: no switch, 89.2 %).
``benchmarks/model_selection.py`` measures the rest.

>>> from river import datasets
>>> sel = ModelSelector()
>>> correct = 0
>>> for x, y in datasets.Phishing():
...     correct += sel.predict_one(x) == y
...     sel.learn_one(x, y)
>>> round(correct / 1250, 3), sel.leader_name, sel.switches
(0.876, 'naive_bayes', 1)

"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
from river import base, naive_bayes
from river.naive_bayes.gaussian import _PDF_EPS

from streamal.core import batch
from streamal.core.errors import ParameterError

Mode = Literal["leader", "weighted"]

#: Standard deviations a member's lead must reach to take over (see the module docs).
Z = 2.0

#: Decay of the members' hit counts per label: a memory of about 50 labels,
#: long enough that a 1 % budget (12 labels on ``phishing``) does not switch
#: on noise, short enough to follow a drift within a few hundred labels.
DECAY = 0.98
#: Sharpness of ``"weighted"``: a member 5 points behind weighs exp(−0.5) ≈ 0.6 of the leader.
ETA = 10.0


def default_members() -> dict[str, Any]:
    """streamal's ``logistic_regression`` (first: trusted before any evidence) and Gaussian NB.

    Both have a vectorised ``ask_many`` path (``batch.ovr_logistic_proba``,
    :func:`gaussian_nb_proba`). Adding a Hoeffding tree
    (``tree.HoeffdingTreeClassifier()``) changed the nine anchor streams' mean
    gap by 0 / +1.16 / 0 / −0.07 points at 1 / 5 / 10 / 20 % (one stream,
    agrawal at 5 %), cost 2.4 times as much per label, and has no vectorised
    path for when it leads (``benchmarks/model_selection.py``, 2026-12-01).
    """
    from streamal.core.models import build_model  # models.py may register this module's selector

    return {
        "logistic_regression": build_model("logistic_regression", "classification")[0],
        "naive_bayes": naive_bayes.GaussianNB(),
    }


class ModelSelector(base.Classifier):
    """Candidate classifiers learning from the same labels; the best recent one predicts.

    Parameters
    ----------
    models
        Name → untrained River classifier; the first is trusted until another
        does better. Default: :func:`default_members`. Stored as given; the
        selector trains copies.
    mode
        ``"leader"`` or ``"weighted"`` (see the module docs).
    decay
        λ in (0, 1]: 1 counts every label alike.
    eta
        η ≥ 0 of ``"weighted"``.
    z
        z ≥ 0 of the take-over test of ``"leader"`` mode (0: any lead takes over).
    """

    def __init__(
        self, models: Mapping[str, Any] | None = None, mode: Mode = "leader", decay: float = DECAY, eta: float = ETA,
        z: float = Z,
    ) -> None:
        if models is not None:
            if not isinstance(models, Mapping) or not models:
                raise ParameterError("models", f"must be a non-empty mapping of names to River classifiers, got {models!r}")
            for name, m in models.items():
                if not (callable(getattr(m, "learn_one", None)) and callable(getattr(m, "predict_proba_one", None))):
                    raise ParameterError("models", f"{name!r} is not a River classifier: {type(m).__name__}")
        if mode not in ("leader", "weighted"):
            raise ParameterError("mode", f"must be 'leader' or 'weighted', got {mode!r}")
        if isinstance(decay, bool) or not (isinstance(decay, (int, float)) and 0.0 < decay <= 1.0):
            raise ParameterError("decay", f"must be in (0, 1], got {decay!r}")
        if isinstance(eta, bool) or not (isinstance(eta, (int, float)) and eta >= 0.0):
            raise ParameterError("eta", f"must be ≥ 0, got {eta!r}")
        if isinstance(z, bool) or not (isinstance(z, (int, float)) and z >= 0.0):
            raise ParameterError("z", f"must be ≥ 0, got {z!r}")
        self.models = models
        self.mode = mode
        self.decay = decay
        self.eta = eta
        self.z = z
        members = default_members() if models is None else models
        self._names = list(members)
        self._members = [m.clone() if isinstance(m, base.Base) else m for m in members.values()]
        self._fast = [batch.has_sgd_logistic_learner(m) for m in self._members]
        self._hits = [0.0] * len(self._members)
        self._seen = [0.0] * len(self._members)
        # _disc[i][j]: decayed count of labels on which exactly one of members i and j was right
        self._disc = [[0.0] * len(self._members) for _ in self._members]
        self._leader = 0
        self.n_labels = 0
        #: How many times the leader changed.
        self.switches = 0

    @classmethod
    def _unit_test_params(cls):
        yield {}
        yield {"mode": "weighted"}

    # -- what the learner and the benchmarks read ----------------------------
    @property
    def members(self) -> dict[str, Any]:
        """Name → the trained member (the selector's own; do not train it from outside)."""
        return dict(zip(self._names, self._members))

    @property
    def leader(self) -> Any:
        """The member ``"leader"`` mode predicts with now (changes only in :meth:`learn_one`)."""
        return self._members[self._leader]

    @property
    def leader_name(self) -> str:
        return self._names[self._leader]

    @property
    def scores(self) -> dict[str, float]:
        """Each member's decayed prequential accuracy on the labels so far (0 before any)."""
        return {n: (h / s if s else 0.0) for n, h, s in zip(self._names, self._hits, self._seen)}

    # -- River's classifier API --------------------------------------------
    def learn_one(self, x: dict[str, Any], y: Hashable) -> None:
        """Score every member on ``(x, y)``, maybe change the leader, then train every member on it."""
        lam = self.decay
        if self.n_labels:  # before the first label no member can be right
            right = [_predict(m, x) == y for m in self._members]
            for i, r in enumerate(right):
                self._hits[i] = lam * self._hits[i] + r
                self._seen[i] = lam * self._seen[i] + 1.0
                row = self._disc[i]
                for j, rj in enumerate(right):
                    row[j] = lam * row[j] + (r != rj)
            lead, hits, disc = self._leader, self._hits, self._disc[self._leader]
            best, edge = lead, 0.0
            for i, h in enumerate(hits):
                gain = h - hits[lead]
                if gain > edge and gain > self.z * math.sqrt(disc[i]):
                    best, edge = i, gain
            if best != lead:
                self._leader = best
                self.switches += 1
        for i, m in enumerate(self._members):
            if self._fast[i]:
                batch.ovr_logistic_learn_one(m, x, y)
            else:
                m.learn_one(x, y)
        self.n_labels += 1

    def predict_proba_one(self, x: dict[str, Any]) -> dict[Hashable, float]:
        if self.mode == "leader":
            return _proba(self._members[self._leader], x)
        acc = [h / s if s else 0.0 for h, s in zip(self._hits, self._seen)]
        top = max(acc)
        out: dict[Hashable, float] = {}
        total = 0.0
        for m, a in zip(self._members, acc):
            w = math.exp(self.eta * (a - top))
            proba = _proba(m, x)
            s = sum(proba.values())
            if not s > 0.0:  # an untrained member: no say
                continue
            for c, p in proba.items():
                out[c] = out.get(c, 0.0) + w * p / s
            total += w
        return {c: p / total for c, p in out.items()} if total else out

    def predict_one(self, x: dict[str, Any], **kwargs: Any) -> Hashable | None:
        proba = self.predict_proba_one(x)
        return max(proba, key=proba.__getitem__) if proba else None


def _proba(model: Any, x: Mapping[str, Any]) -> dict[Hashable, float]:
    """``model.predict_proba_one(x)``, for Gaussian NB without scipy's ``logsumexp`` (20× faster, same to ~1e-16)."""
    if type(model) is naive_bayes.GaussianNB:
        jll = model.joint_log_likelihood(x)
        if not jll:
            return {}
        top = max(jll.values())
        lse = top + math.log(sum(math.exp(v - top) for v in jll.values()))
        return {c: math.exp(v - lse) for c, v in jll.items()}
    return model.predict_proba_one(x)


def _predict(model: Any, x: Mapping[str, Any]) -> Hashable | None:
    """A member's predicted class (the first most probable); ``None`` if it gives no probabilities."""
    if batch.is_ovr_logistic(model):
        return batch.ovr_logistic_predict_one(model, x)[0]
    proba = _proba(model, x)
    return max(proba, key=proba.__getitem__) if proba else None


def gaussian_nb_proba(model: Any, names: Sequence[str], x: np.ndarray) -> tuple[list[Hashable], np.ndarray]:
    """Class probabilities of every row of ``x`` (columns ``names``), as River's ``GaussianNB`` gives them.

    ``log p(c) + Σ_f log(ε + N(x_f; μ_cf, σ²_cf))`` with River's ε and its
    population variance (0 density where a class has no variance yet),
    normalised with a max-shifted softmax: the vectorised twin of
    :func:`_proba`, for ``ask_many`` while Gaussian NB leads (to ~1e-15).
    Every row must have every column (as when all instances carry the same
    numeric features); a feature the model never saw counts ε, as in River.
    """
    counts = model.class_counts
    classes = list(counts)
    if not classes:
        return classes, np.zeros((len(x), 0))
    total = sum(counts.values())
    jll = np.empty((len(x), len(classes)))
    for k, c in enumerate(classes):
        gaussians = model.gaussians.get(c, {})
        mu, var = np.zeros(len(names)), np.zeros(len(names))
        for f, name in enumerate(names):
            g = gaussians.get(name)
            if g is not None and g._var.mean.n > g._var.ddof:
                var[f] = g._var._S / (g._var.mean.n - g._var.ddof)
                mu[f] = g._var.mean._mean
        ok = var > 0.0
        v = np.where(ok, var, 1.0)
        with np.errstate(under="ignore"):
            pdf = np.where(ok, np.exp(-((x - mu) ** 2) / (2.0 * v)) / np.sqrt(math.tau * v), 0.0)
        jll[:, k] = math.log(counts[c] / total) + np.log(_PDF_EPS + pdf).sum(axis=1)
    p = np.exp(jll - jll.max(axis=1, keepdims=True))
    return classes, p / p.sum(axis=1, keepdims=True)

"""The featurizer: one batch gives the floats of one-by-one learning."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from river import datasets
from river.datasets import synth

from streamal.core.features import TEXT_CLUSTER_SCALE, TEXT_CLUSTER_TOP, Featurizer


def one_by_one(f: Featurizer, xs: list[dict]) -> list[dict[str, float]]:
    return [f.learn_transform(x) for x in xs]


@pytest.mark.parametrize(
    "stream",
    [
        lambda: [x for x, _ in datasets.Phishing()],
        lambda: [x for x, _ in datasets.ImageSegments()],
        lambda: [{str(k): v for k, v in x.items()} for x, _ in synth.Hyperplane(seed=3).take(3000)],
        # a large offset and a tiny spread: the shifted sums stay well conditioned
        lambda: [{"t": 1.7e9 + i % 7, "flag": i % 3 == 0, "n": i} for i in range(3000)],
    ],
)
def test_a_batch_gives_the_same_floats_and_statistics_as_one_by_one(stream) -> None:
    xs = stream()
    one, many = Featurizer(), Featurizer()
    sizes = itertools.cycle([1, 7, 300, 2, 1000])
    start = 0
    while start < len(xs):
        chunk = xs[start:start + next(sizes)]
        start += len(chunk)
        expected = one_by_one(one, chunk)
        names, z = many.learn_transform_many(chunk)
        assert [dict(zip(names, row)) for row in z.tolist()] == expected  # exactly, not approximately
    assert many._stats == one._stats


def test_standardised_values_match_the_population_mean_and_deviation() -> None:
    values = [3.0, 5.0, 10.0, -2.0]
    f = Featurizer()
    z = [f.learn_transform({"a": v})["a"] for v in values]
    mean, sd = np.mean(values), np.std(values)
    assert z[-1] == pytest.approx((values[-1] - mean) / sd)
    assert z[0] == 0.0  # one value: no spread yet


@pytest.mark.parametrize(
    "xs",
    [
        [{"a": 1.0, "b": 2.0}, {"b": 2.0, "a": 1.0}],  # names in another order
        [{"a": 1.0}, {"a": 1.0, "b": 2.0}],  # other names
        [{"a": 1.0}, {"a": "x"}],  # a category
        [{"a": 1.0}, {"a": math.nan}],  # a missing value
        [{"a": 1.0}, {"a": None}],
        [{"a": 1.0}, {"a": 2**70}],  # beyond 64 bits
    ],
)
def test_anything_but_plain_numbers_under_one_layout_is_left_to_one_by_one(xs) -> None:
    f = Featurizer()
    before = copy.deepcopy(f._stats)
    assert f.learn_transform_many(xs) is None
    assert f._stats == before  # nothing learned


def test_text_and_unscaled_features_are_left_to_one_by_one() -> None:
    assert Featurizer(text_features=["body"]).learn_transform_many([{"a": 1.0}]) is None
    assert Featurizer(scale=False).learn_transform_many([{"a": 1.0}]) is None


def test_instances_without_features_give_an_empty_matrix() -> None:
    names, z = Featurizer().learn_transform_many([{}, {}])
    assert names == [] and z.shape == (2, 0)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50), st.integers(1, 10))
def test_any_finite_column_batches_exactly(values, size) -> None:
    one, many = Featurizer(), Featurizer()
    xs = [{"v": v} for v in values]
    expected = [z["v"] for z in one_by_one(one, xs)]
    got = []
    for start in range(0, len(xs), size):
        got += many.learn_transform_many(xs[start:start + size])[1][:, 0].tolist()
    assert got == expected


@pytest.mark.parametrize("norm", [1.0, 18.0])
def test_each_text_field_is_scaled_to_its_norm_and_nothing_else_is(norm) -> None:
    f = Featurizer(text_features=["subject", "body"], text_norm=norm)
    xs = [{"subject": "refund", "body": "charged twice please refund", "plan": "pro", "age": 3.0},
          {"subject": "login", "body": "cannot log in since yesterday", "plan": "free", "age": 300.0}]
    for x in xs:
        z = f.learn_transform(x)
    for field in ("subject", "body"):
        block = [v for k, v in z.items() if k.startswith(f"{field}:")]
        assert math.isclose(math.sqrt(sum(v * v for v in block)), norm)
    assert z["plan=free"] == 1.0  # a category stays one-hot
    assert math.isclose(z["age"], 1.0)  # a number stays standardised (two values: ±1)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan, True, "2"])
def test_a_bad_text_norm_fails_at_construction(bad) -> None:
    from streamal.core.errors import ParameterError

    with pytest.raises(ParameterError, match="text_norm"):
        Featurizer(text_features=["body"], text_norm=bad)


def test_a_featurizer_pickled_before_text_norm_keeps_the_unit_norm_river_weights_and_no_clusters() -> None:
    from river import feature_extraction

    f = Featurizer(text_features=["body"])
    for name in ("text_norm", "text_clusters", "sublinear_tf", "_clusters"):
        del f.__dict__[name]  # as an old checkpoint unpickles
    river = feature_extraction.TFIDF(on="body")
    for x in ({"body": "refund refund please"}, {"body": "login broken please"}):
        river.learn_one(x)
        z = f.learn_transform(x)
    assert z == pytest.approx({f"body:{t}": w for t, w in river.transform_one(x).items()})


TICKETS = [
    {"body": "refund refund please, charged twice"}, {"body": "cannot log in since yesterday"},
    {"body": "charged twice for one order, refund"}, {"body": "password reset link broken, cannot log in"},
    {"body": "invoice shows a wrong amount"}, {"body": "log in fails after the password reset"},
]


def test_term_frequency_is_sublinear() -> None:
    f = Featurizer(text_features=["body"], text_clusters=0)
    for x in TICKETS:
        f.learn_one(x)
    z = f.transform_one({"body": "refund refund please"})
    n, dfs = f._text["body"].n, f._text["body"].dfs
    idf = {t: math.log((1 + n) / (1 + dfs[t])) + 1 for t in ("refund", "please")}
    assert z["body:refund"] / z["body:please"] == pytest.approx((1 + math.log(2)) * idf["refund"] / idf["please"])


@pytest.mark.parametrize("norm", [1.0, 18.0])
def test_the_cluster_block_has_its_norm_and_the_nearest_clusters(norm) -> None:
    f = Featurizer(text_features=["body"], text_norm=norm, text_clusters=3)
    for x in TICKETS:
        z = f.learn_transform(x)
    block = {k: v for k, v in z.items() if k.startswith("body#")}
    assert 1 <= len(block) <= TEXT_CLUSTER_TOP
    assert math.isclose(math.sqrt(sum(v * v for v in block.values())), TEXT_CLUSTER_SCALE * norm)
    words = [v for k, v in z.items() if k.startswith("body:")]
    assert math.isclose(math.sqrt(sum(v * v for v in words)), norm)


def test_the_first_documents_open_the_clusters_and_later_ones_join_the_nearest() -> None:
    f = Featurizer(text_features=["body"], text_clusters=2, scale=False)
    f.learn_one({"body": "refund charged twice"})
    f.learn_one({"body": "cannot log in"})
    f.learn_one({"body": "refund please, charged twice"})
    z = f.transform_one({"body": "charged twice"})
    assert max((v, k) for k, v in z.items() if "#" in k)[1] == "body#0"
    assert max((v, k) for k, v in f.transform_one({"body": "log in"}).items() if "#" in k)[1] == "body#1"


def test_transform_changes_nothing_and_learn_transform_is_learn_then_transform() -> None:
    one, two = Featurizer(text_features=["body"], text_clusters=4), Featurizer(text_features=["body"], text_clusters=4)
    for x in TICKETS:
        before = copy.deepcopy(one._clusters["body"].__dict__)
        one.transform_one(x)
        after = one._clusters["body"].__dict__
        assert all(np.array_equal(before[k], after[k]) if isinstance(after[k], np.ndarray) else before[k] == after[k]
                   for k in after)
        z = one.learn_transform(x)
        two.learn_one(x)
        assert z == pytest.approx(two.transform_one(x))


def test_without_clusters_there_are_no_cluster_features() -> None:
    f = Featurizer(text_features=["body"], text_clusters=0)
    assert not any("#" in k for x in TICKETS for k in f.learn_transform(x))


@pytest.mark.parametrize("bad", [-1, 1.5, True, "8"])
def test_a_bad_text_clusters_fails_at_construction(bad) -> None:
    from streamal.core.errors import ParameterError

    with pytest.raises(ParameterError, match="text_clusters"):
        Featurizer(text_features=["body"], text_clusters=bad)


def test_text_clusters_know_a_bounded_number_of_words() -> None:
    from streamal.core.features import _Clusters

    clusters = _Clusters(2, max_words=3)
    for doc in ({"a": 1.0, "b": 1.0}, {"c": 1.0, "d": 1.0}, {"a": 1.0, "e": 1.0}):
        clusters.learn_transform(doc, 2)
    assert len(clusters._rows) == 3 and len(clusters._sums) >= 3
    assert clusters.transform({"d": 1.0, "e": 1.0}, 2) == []  # words past the bound are unknown to the clusters
    assert clusters.transform({"a": 1.0}, 1)[0][1] == 1.0

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

from streamal.core.features import Featurizer


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


def test_a_featurizer_pickled_before_text_norm_keeps_the_unit_norm() -> None:
    f = Featurizer(text_features=["body"])
    del f.__dict__["text_norm"]  # as an old checkpoint unpickles
    z = f.learn_transform({"body": "refund please"})
    assert math.isclose(math.sqrt(sum(v * v for v in z.values())), 1.0)

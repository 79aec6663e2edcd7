"""The COCO evaluation's own computations, checked against independent references: consensus
re-ranking on captions whose order is plain, closed-form FID values, precision and recall by
construction (CiderD, from flowbridge.metrics, is tested in tests/test_metrics_cider.py)."""

from __future__ import annotations

import math
import random
import warnings

import pytest
import torch

from flowbridge_coco.cider import CiderD
from flowbridge_coco.consensus import consensus_order, consensus_scores, nearest_neighbours
from flowbridge_coco.image_metrics import (
    frechet_distance,
    image_feature_scores,
    precision_recall,
)

WORDS = [
    "a",
    "the",
    "dog",
    "cat",
    "red",
    "blue",
    "runs",
    "sits",
    "on",
    "mat",
    "grass",
    "big",
    "small",
    "two",
]


def _captions(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 10))) for _ in range(n)]


@pytest.fixture
def corpus() -> list[list[str]]:
    rng = random.Random(0)
    return [_captions(rng, 5) for _ in range(40)]


def test_nearest_neighbours_by_cosine():
    keys = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [-1.0, 0.0]])
    queries = torch.tensor([[3.0, 0.1], [0.1, 1.0]])
    assert nearest_neighbours(queries, keys, 3).tolist() == [[0, 2, 1], [1, 2, 0]]
    assert nearest_neighbours(queries, keys, 9, chunk=1).shape == (2, 4)
    with pytest.raises(ValueError, match="one feature size"):
        nearest_neighbours(queries, torch.zeros(3, 5), 2)


def test_consensus_prefers_what_the_neighbours_say(corpus):
    cider = CiderD(corpus + [["a dog runs on the grass"] * 5, ["a cat sits on a mat"] * 5])
    references = [
        ["a dog runs on grass", "the dog runs on the grass", "a big dog runs"],
        ["a cat sits on the mat", "a small cat sits on a mat"],
        ["two red dogs"],
    ]
    candidates = [["a cat sits on the mat", "a dog runs on the grass", "blue"]] * 2
    orders = consensus_order(candidates, torch.tensor([[0, 2], [1, 2]]), references, cider, m=2)
    assert orders == [[1, 0, 2], [0, 1, 2]]
    # m larger than the pool sums every similarity
    pool = references[0]
    assert consensus_scores(["a dog"], pool, cider, m=125)[0] == pytest.approx(
        cider.similarity(["a dog"], pool).sum()
    )
    scores = consensus_scores(["a dog"], pool, cider, m=1)
    assert scores[0] == pytest.approx(cider.similarity(["a dog"], pool).max())


def _gaussian(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_frechet_distance_closed_forms():
    x = _gaussian(500, 4, 0) @ torch.tensor(
        [[1.0, 0.3, 0, 0], [0, 1.0, 0.5, 0], [0, 0, 2.0, 0], [0.2, 0, 0, 0.5]], dtype=torch.float64
    )
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    shift = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=torch.float64)
    assert frechet_distance(x, x + shift) == pytest.approx(5.25, rel=1e-9)
    # a x has covariance a² Σ: d² = (1 - a)² (|μ|² + tr Σ)
    a = 3.0
    mean, cov = x.mean(0), torch.cov(x.T)
    expected = (1 - a) ** 2 * (float(mean.square().sum()) + float(cov.trace()))
    assert frechet_distance(x, a * x) == pytest.approx(expected, rel=1e-8)
    # a rotation of both sets leaves it unchanged
    y = _gaussian(300, 4, 1) * 1.5 + 0.3
    rotation, _ = torch.linalg.qr(_gaussian(4, 4, 2))
    assert frechet_distance(x @ rotation, y @ rotation) == pytest.approx(
        frechet_distance(x, y), rel=1e-8
    )
    one = frechet_distance(torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [5.0]]))
    assert one == pytest.approx((1 - 3) ** 2 + (math.sqrt(2) - math.sqrt(8)) ** 2)


def test_precision_recall_by_construction():
    grid = torch.stack(torch.meshgrid(torch.arange(5.0), torch.arange(5.0), indexing="ij"), -1)
    real = grid.reshape(-1, 2)
    assert precision_recall(real, real.clone(), k=3) == (1.0, 1.0)
    far = real + 100
    assert precision_recall(real, far, k=3) == (0.0, 0.0)
    # Generated points are the real ones of one of two far-apart clusters: all of them are
    # real-looking (precision 1) but only that cluster is covered (recall 25 / 50).
    two = torch.cat([real, far])
    assert precision_recall(two, real, k=3) == (1.0, 0.5)
    with pytest.raises(ValueError, match="at least 4 generated feature vectors"):
        precision_recall(real, real[:3], k=3)
    with pytest.raises(ValueError, match=r"must have shape \[batch, 2\]"):
        frechet_distance(real, torch.zeros(5, 3))


def test_feature_scores_warn_where_the_covariances_are_singular():
    generator = torch.Generator().manual_seed(0)
    real, fake = torch.randn(6, 8, generator=generator), torch.randn(40, 8, generator=generator)
    with pytest.warns(UserWarning, match=r"FID from 6 real and 40 generated .* of 8 dims"):
        scores = image_feature_scores(real, fake)
    assert (scores["real"], scores["generated"]) == (6, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image_feature_scores(torch.randn(9, 8, generator=generator), fake)

"""The contrastive terms on hand-made codes and densities with known answers, and in the bridge."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from test_bridge import batch, make_bridge

from flowbridge import LossWeights
from flowbridge.contrastive import density_nce, info_nce


def test_codes_that_tell_nothing_apart_cost_log_n():
    a = torch.ones(5, 3)
    b = torch.full((5, 3), 2.0)  # cosine: every pair alike
    torch.testing.assert_close(info_nce(a, b, 0.1), torch.full((5,), math.log(5)))


def test_partners_that_stand_out_cost_almost_nothing():
    codes = torch.eye(4) * 3.0  # orthogonal: cos 1 with the partner, 0 with the others
    loss = info_nce(codes, codes, temperature=0.05)
    # Each row: -log(e^20 / (e^20 + 3)) = log(1 + 3 e^-20).
    torch.testing.assert_close(loss, torch.full((4,), math.log1p(3 * math.exp(-20))))
    # A swapped pair is the worst case: its partner scores 0 and a stranger 1/τ.
    swapped = codes[[1, 0, 2, 3]]
    worst = info_nce(codes, swapped, temperature=0.05)
    assert worst[0] > 19 and worst[2] < 1e-6


def test_it_is_clips_symmetric_cross_entropy_per_pair():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / 0.3
    target = torch.arange(6)
    rows = F.cross_entropy(logits, target, reduction="none")
    columns = F.cross_entropy(logits.T, target, reduction="none")
    torch.testing.assert_close(info_nce(a, b, 0.3), (rows + columns) / 2)
    # Neither the codes' lengths nor the order of the pairs matters.
    torch.testing.assert_close(info_nce(3 * a, 0.5 * b, 0.3), info_nce(a, b, 0.3))
    order = torch.randperm(6, generator=g)
    torch.testing.assert_close(info_nce(a[order], b[order], 0.3), info_nce(a, b, 0.3)[order])


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"two \[n, d\] batches of one shape"):
        info_nce(torch.zeros(4, 3), torch.zeros(5, 3), 0.1)
    with pytest.raises(ValueError, match=r"two \[n, d\] batches of one shape"):
        info_nce(torch.zeros(4), torch.zeros(4), 0.1)


def test_the_bridge_scores_carried_codes_against_the_partners_codes(monkeypatch):
    bridge = make_bridge(
        weights=LossWeights(contrastive=2.0), contrastive_temperature=0.2, posterior_noise=0.0
    )
    with torch.no_grad():  # f starts as the identity: perturb it, so f(s_A) differs from s_A
        for p in bridge.shared_map.parameters():
            p.add_(0.1 * torch.randn_like(p))
    seen = {}

    def recorded(a, b, temperature):
        seen.update(a=a, b=b, temperature=temperature)
        return info_nce(a, b, temperature)

    monkeypatch.setattr("flowbridge.bridge.info_nce", recorded)
    x_a, x_b = batch()
    terms = bridge.loss(x_a, x_b)
    assert seen["temperature"] == 0.2
    with torch.no_grad():
        carried, _ = bridge.map_shared(bridge.encode(x_a, "a").shared, "a")
        partner = bridge.encode(x_b, "b").shared
    # Without posterior noise: exactly f(s_A) and s_B of the same pairs.
    torch.testing.assert_close(seen["a"].detach(), carried)
    assert not torch.allclose(carried, bridge.encode(x_a, "a").shared.detach(), atol=1e-3)
    torch.testing.assert_close(seen["b"].detach(), partner)
    torch.testing.assert_close(terms["contrastive"], info_nce(seen["a"], seen["b"], 0.2).mean())
    # Off (the default), the term is neither computed nor reported.
    assert "contrastive" not in make_bridge().loss(x_a, x_b)


def _gaussian_log_prob(x, context):
    """log N(x; context, 1) per row: a conditional density whose context is its mean."""
    return -0.5 * (x - context).square().sum(dim=1) - 0.5 * x.shape[1] * math.log(2 * math.pi)


def test_density_nce_is_the_cross_entropy_of_each_row_over_the_contexts():
    g = torch.Generator().manual_seed(0)
    context = torch.randn(5, 2, generator=g)
    x = context + 0.3 * torch.randn(5, 2, generator=g)
    # With as many negatives as other rows, every context is scored: a plain softmax.
    table = torch.stack([_gaussian_log_prob(x, c.expand(5, -1)) for c in context], dim=1)
    expected = F.cross_entropy(table, torch.arange(5), reduction="none")
    torch.testing.assert_close(density_nce(_gaussian_log_prob, x, context, negatives=4), expected)
    torch.testing.assert_close(density_nce(_gaussian_log_prob, x, context, negatives=50), expected)

    # A density that ignores its context tells nothing apart: log(1 + negatives) per row.
    def blind(x, context):
        return _gaussian_log_prob(x, torch.zeros_like(x))

    torch.testing.assert_close(density_nce(blind, x, context, 2), torch.full((5,), math.log(3)))
    # Fewer negatives: each row against its own context and 2 others, all rows the same shifts.
    torch.manual_seed(0)
    some = density_nce(_gaussian_log_prob, x, context, negatives=2)
    torch.manual_seed(0)
    shifts = torch.randperm(4)[:2] + 1
    columns = torch.cat((torch.zeros(1, dtype=torch.long), shifts))
    picked = table.gather(1, (torch.arange(5)[:, None] + columns) % 5)
    torch.testing.assert_close(some, -picked.log_softmax(dim=1)[:, 0])
    assert density_nce(_gaussian_log_prob, x[:1], context[:1], 16).item() == 0.0  # alone


def test_the_bridge_adds_each_sides_density_contrast_with_its_context_detached():
    bridge = make_bridge(
        weights=LossWeights(prior_nce_a=1.0, prior_nce_b=0.5), prior_nce_negatives=3
    )
    with torch.no_grad():  # zero output layers: no prior would depend on its context at all
        for p in bridge.parameters():
            p.add_(0.05 * torch.randn_like(p))
    x_a, x_b = batch(6)
    terms = bridge.loss(x_a, x_b)
    assert terms["prior_nce_a"].item() > 0 and terms["prior_nce_b"].item() > 0
    bridge.zero_grad()
    terms["prior_nce_a"].backward()
    # The residual encoder and A's prior learn from it; the shared map (the context) does not.
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in bridge.priors["a"].parameters()
    )
    assert any(
        p.grad is not None and p.grad.abs().sum() > 0 for p in bridge.encoders["a"].parameters()
    )
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in bridge.shared_map.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in bridge.encoders["b"].parameters())
    # Off (the default), neither is computed; the weights enter the total.
    assert "prior_nce_a" not in make_bridge().loss(x_a, x_b)

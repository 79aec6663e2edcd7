"""Each flow layer recomputed by hand from its parameters, as its docstring writes it.

The property battery (``test_flows_properties.py``) checks that every layer is *a* valid
flow: inverse, log-determinant, density. A layer that is valid but not the one documented
passes it: a conditioner reading ``[c, x_1]`` instead of ``[x_1, c]``, shift and scale taken
from swapped halves of its output, or an additive coupling computing ``x_2 - t`` forward.
Such a layer trains as well from scratch, yet it reads the weights of a saved model (a
checkpoint, the original LNFMM's) as another function. Here every parameter is perturbed
away from its zero initialisation and each output is compared with the formula, written
out independently of the code under test.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal

from flowbridge.flows import (
    AdditiveCoupling,
    AffineCoupling,
    ConditionalActNorm,
    ConditionalGaussianPrior,
    FlowPrior,
    GlobalScale,
    SharedBijection,
    build_shared_prior,
)
from flowbridge.flows.densities import GaussianMixtureBase

DTYPE = torch.float64


def _perturbed(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    module = module.to(DTYPE)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=DTYPE))
    return module


def _mlp(net: torch.nn.Sequential, inputs: torch.Tensor) -> torch.Tensor:
    """Linear → ReLU → Linear, written out from the weights."""
    first, _, last = net
    hidden = (inputs @ first.weight.T + first.bias).clamp_min(0.0)
    return hidden @ last.weight.T + last.bias


#: The scale maps of :mod:`flowbridge.flows.nn`'s docstring.
SCALES = {
    "exp": lambda u: u.clamp(math.log(1e-3), math.log(3.0)).exp(),
    "softplus": lambda u: torch.log2(1 + 2**u).clamp(1e-3, 3.0),
    "sigmoid": lambda u: torch.sigmoid(u + 2) + 1e-3,
}


def _inputs(rows: int, features: int, context_features: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, features, generator=generator, dtype=DTYPE)
    c = torch.randn(rows, context_features, generator=generator, dtype=DTYPE)
    return x, c


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("scale", sorted(SCALES))
def test_an_affine_coupling_is_realnvps_with_the_conditioner_reading_x1_then_c(scale, flip):
    features, context_features = 5, 2
    layer = _perturbed(AffineCoupling(features, context_features, 6, flip=flip, scale=scale))
    x, c = _inputs(7, features, context_features)
    first = features // 2
    x1, x2 = x[:, :first], x[:, first:]
    conditioning, updated = (x2, x1) if flip else (x1, x2)
    out = _mlp(layer.net, torch.cat((conditioning, c), dim=1))
    n = updated.shape[1]
    shift, sigma = out[:, :n], SCALES[scale](out[:, n:])
    new = updated * sigma + shift
    expected = torch.cat((new, x2) if flip else (x1, new), dim=1)

    y, logabsdet = layer(x, c)
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logabsdet, sigma.log().sum(dim=1), rtol=1e-12, atol=1e-12)
    back, inverse_logabsdet = layer.inverse(expected, c)
    torch.testing.assert_close(back, x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(inverse_logabsdet, -sigma.log().sum(dim=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("flip", [False, True])
def test_an_additive_coupling_adds_the_shift_going_forward(flip):
    features, context_features = 5, 2
    layer = _perturbed(AdditiveCoupling(features, context_features, 6, flip=flip))
    x, c = _inputs(7, features, context_features)
    first = features // 2
    x1, x2 = x[:, :first], x[:, first:]
    conditioning = x2 if flip else x1
    shift = _mlp(layer.net, torch.cat((conditioning, c), dim=1))
    expected = torch.cat((x1 + shift, x2) if flip else (x1, x2 + shift), dim=1)

    y, logabsdet = layer(x, c)
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(logabsdet, torch.zeros(7, dtype=DTYPE))
    back, inverse_logabsdet = layer.inverse(expected, c)
    torch.testing.assert_close(back, x, rtol=1e-12, atol=1e-12)
    assert torch.equal(inverse_logabsdet, torch.zeros(7, dtype=DTYPE))


@pytest.mark.parametrize("scale", sorted(SCALES))
def test_a_conditional_actnorm_shifts_then_scales_with_the_shift_first_in_its_output(scale):
    features, context_features = 3, 2
    layer = _perturbed(ConditionalActNorm(features, context_features, 6, scale=scale))
    x, c = _inputs(7, features, context_features)
    out = _mlp(layer.net, c)
    shift, sigma = out[:, :features], SCALES[scale](out[:, features:])

    y, logabsdet = layer(x, c)
    torch.testing.assert_close(y, (x + shift) * sigma, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logabsdet, sigma.log().sum(dim=1), rtol=1e-12, atol=1e-12)
    back, inverse_logabsdet = layer.inverse(y, c)
    torch.testing.assert_close(back, x, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(inverse_logabsdet, -sigma.log().sum(dim=1), rtol=1e-12, atol=1e-12)


def test_a_plain_actnorm_holds_its_shift_then_its_raw_scale():
    layer = _perturbed(ConditionalActNorm(3, 0, scale="exp"))
    x, _ = _inputs(4, 3, 0)
    shift, raw = layer.params[:3], layer.params[3:]
    sigma = SCALES["exp"](raw)
    y, logabsdet = layer(x)
    torch.testing.assert_close(y, (x + shift) * sigma, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logabsdet, sigma.log().sum().expand(4), rtol=1e-12, atol=1e-12)


def test_a_global_scale_multiplies_by_the_sigmoid_of_its_parameter_plus_the_offset():
    layer = _perturbed(GlobalScale(4, offset=1.5))
    x, _ = _inputs(3, 4, 0)
    sigma = torch.sigmoid(layer.log_scale_raw + 1.5)
    y, logabsdet = layer(x)
    torch.testing.assert_close(y, x * sigma, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logabsdet, sigma.log().sum().expand(3), rtol=1e-12, atol=1e-12)
    back, inverse_logabsdet = layer.inverse(y)
    torch.testing.assert_close(back, x, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(inverse_logabsdet, -logabsdet, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("context_features", [0, 2])
def test_a_mixture_base_reads_logits_then_shifts_added_to_its_anchors(context_features):
    features, components, sigma0 = 3, 4, 0.7
    base = _perturbed(GaussianMixtureBase(features, context_features, components, sigma0, 6))
    z, c = _inputs(5, features, context_features)
    context = c if context_features else None
    raw = _mlp(base.net, c) if context_features else base.constant.expand(5, -1)
    logits, shifts = raw[:, :components], raw[:, components:]
    means = base.anchors + shifts.reshape(5, components, features)
    per_component = Normal(means, sigma0).log_prob(z[:, None, :]).sum(dim=2)
    expected = torch.logsumexp(logits.log_softmax(dim=1) + per_component, dim=1)
    torch.testing.assert_close(base.log_prob(z, context), expected, rtol=1e-12, atol=1e-12)
    # At component temperature 0: the component of the largest weight, its mean plus the noise
    # scaled by τσ0 (the mean alone at τ = 0).
    noise = torch.randn(5, features, dtype=DTYPE)
    best = means[torch.arange(5), logits.argmax(dim=1)]
    for tau in (0.0, 0.5):
        torch.testing.assert_close(
            base.sample(noise, context, tau, component_temperature=0.0),
            best + tau * sigma0 * noise,
            rtol=1e-12,
            atol=1e-12,
        )


def test_the_conditional_gaussian_prior_samples_and_scores_its_gaussian():
    features, context_features = 2, 3
    prior = _perturbed(ConditionalGaussianPrior(features, context_features, 6, base_scale=0.5))
    _, c = _inputs(3, 1, context_features)
    out = _mlp(prior.net, c)
    mean, log_std = out[:, :features], (out[:, features:] + math.log(0.5)).clamp(-7.0, 2.0)
    x = torch.randn(3, features, dtype=DTYPE)
    expected = Normal(mean, log_std.exp()).log_prob(x).sum(dim=1)
    torch.testing.assert_close(prior.log_prob(x, c), expected, rtol=1e-12, atol=1e-12)

    n, tau = 20_000, 0.7
    generator = torch.Generator().manual_seed(0)
    samples = prior.sample(n, c, temperature=tau, generator=generator)  # [3, n, features]
    # Four standard errors of the mean and of the standard deviation.
    spread = tau * log_std.exp()
    assert ((samples.mean(dim=1) - mean).abs() <= 4 * spread / n**0.5).all()
    assert ((samples.std(dim=1) / spread - 1).abs() <= 4 / (2 * n) ** 0.5).all()
    # Draw by draw: the prior's standard normal noise, rows (context, sample), scaled by τσ(c).
    noise = torch.randn(3 * n, features, generator=torch.Generator().manual_seed(0), dtype=DTYPE)
    drawn = mean[:, None] + spread[:, None] * noise.reshape(3, n, features)
    torch.testing.assert_close(samples, drawn, rtol=1e-12, atol=1e-12)


def test_the_conditional_gaussian_prior_bounds_its_log_std_to_minus_7_and_2():
    prior = ConditionalGaussianPrior(1, 1, 4).to(DTYPE)
    x, c = torch.zeros(2, 1, dtype=DTYPE), torch.zeros(2, 1, dtype=DTYPE)
    for raw, log_std in ((100.0, 2.0), (-100.0, -7.0)):
        with torch.no_grad():
            prior.net[-1].bias.copy_(torch.tensor([0.0, raw]))
        expected = Normal(0.0, math.exp(log_std)).log_prob(x).sum(dim=1)
        torch.testing.assert_close(prior.log_prob(x, c), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("coupling", ["additive", "affine"])
def test_the_shared_bijection_is_built_of_the_couplings_it_is_named_after(coupling):
    """Additive (LNFMM's): volume preserving couplings, so log|det J_f| is the global scales'
    alone, the same for every input; affine: a log-determinant that depends on the input."""
    f = _perturbed(SharedBijection(4, steps=2, hidden_features=6, coupling=coupling))
    kinds = {"additive": AdditiveCoupling, "affine": AffineCoupling}
    couplings = [layer for layer in f.layers if not isinstance(layer, GlobalScale)]
    assert len(couplings) == 2 * {"additive": 4, "affine": 2}[coupling]
    assert all(type(layer) is kinds[coupling] for layer in couplings)
    # Step 0 updates the second half first; odd steps run the other order (in place of the
    # original's swap of halves), so a saved model's layers keep their meaning.
    step = [False, True, False, True] if coupling == "additive" else [False, True]
    assert [layer.flip for layer in couplings] == step + [not flip for flip in step]
    # Two features are enough to split: only a 1-feature map is the global scale alone.
    two = SharedBijection(2, steps=1, hidden_features=6, coupling=coupling)
    assert [type(layer) for layer in two.layers] == [kinds[coupling]] * len(step) + [GlobalScale]
    x, _ = _inputs(6, 4, 0)
    _, logabsdet = f(x)
    scales = sum(
        torch.sigmoid(layer.log_scale_raw + 5).log().sum()
        for layer in f.layers
        if isinstance(layer, GlobalScale)
    )
    if coupling == "additive":
        torch.testing.assert_close(logabsdet, scales.expand(6), rtol=1e-12, atol=1e-12)
    else:
        assert logabsdet.std() > 1e-3


def test_a_flow_priors_steps_run_actnorm_then_a_coupling_of_alternating_halves():
    prior = FlowPrior(4, 2, steps=4, hidden_features=6)
    kinds = [type(layer) for layer in prior.transform.layers]
    assert kinds == [ConditionalActNorm, AffineCoupling] * 4
    assert [layer.flip for layer in prior.transform.layers[1::2]] == [False, True] * 2


def test_the_flow_shared_prior_is_over_a_standard_normal():
    # At initialisation every coupling is the identity and each sigmoid ActNorm scales by
    # s = sigmoid(2) + 1e-3: the prior is N(0, (1 / s^steps)^2 I).
    prior = build_shared_prior("flow", 2, steps=3).to(DTYPE)
    assert prior.base_scale == 1.0
    s = torch.sigmoid(torch.tensor(2.0, dtype=DTYPE)) + 1e-3
    x, _ = _inputs(5, 2, 0)
    expected = Normal(0.0, 1 / s**3).log_prob(x).sum(dim=1)
    torch.testing.assert_close(prior.log_prob(x), expected, rtol=1e-12, atol=1e-12)

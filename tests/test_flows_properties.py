"""One property battery over every transform and prior in ``flowbridge.flows``.

Every property runs over every case in ``CASES`` with random feature counts (1, odd, even),
batch sizes (1 included), context sizes, perturbed parameters (the zero-initialised output
layers would otherwise make every conditioner constant) and input magnitudes up to 1e3.
The Hypothesis profile's ``max_examples`` (200 under ``ci``) is the budget per property,
split evenly over its cases so that every class is exercised by every property.

Everything runs in float64 (``DTYPE``) so that the tolerances can be tight: every comparison
allows ``UNIT`` (1e-12) times the row's magnitude, times the condition number of the flow's
Jacobian where an inversion is involved. References are computed independently of the code
under test: log-determinants from ``torch.func.jacrev`` and ``torch.linalg.slogdet``, base
densities from ``torch.distributions``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from einops import rearrange
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from flowbridge.flows import (
    AdditiveCoupling,
    AffineCoupling,
    Chain,
    ConditionalActNorm,
    ConditionalGaussianPrior,
    ConditionalResidualPrior,
    FlowPrior,
    GlobalScale,
    NoResidualPrior,
    Prior,
    SharedBijection,
    StandardNormalPrior,
    UniformPrior,
    build_residual_prior,
    build_shared_prior,
)
from flowbridge.flows.densities import GaussianMixtureBase

DTYPE = torch.float64
# The rounding error allowed per unit of magnitude and of condition number. Perturbed
# parameters can make a flow very ill-conditioned (sigmoid scales saturated at 1e-3 in four
# couplings shrink a dimension 1e12-fold), and then no float64 implementation inverts it to
# 1e-12; measured errors stay below 2e-15 · κ · max(1, |x|), so this leaves 500x of slack.
UNIT = 1e-12
# Beyond this condition number the κ-scaled tolerance would admit errors of 1e-4 and more,
# testing nothing: such examples (a quarter of the affine shared map's at magnitude 1e3,
# none of a single coupling's) are discarded. Chains are also checked layer by layer,
# where each Jacobian is triangular and well-conditioned (test_flows_chain.py).
MAX_CONDITION = 1e8
HIDDEN = 8


@dataclass(frozen=True)
class Setup:
    """What one example draws; tensors are realised from ``seed``."""

    features: int
    context_features: int
    batch: int
    flip: bool
    magnitude: float
    perturbation: float
    seed: int


@dataclass(frozen=True)
class Case:
    """A module under test: how to build it and which shapes it accepts."""

    name: str
    build: Callable[[Setup], nn.Module]
    features: tuple[int, int] = (1, 7)
    #: "never" (unconditional), "always" (needs a context) or "optional" (either)
    context: str = "never"

    def __repr__(self) -> str:
        return self.name


def _coupling(cls, **kwargs):
    return lambda s: cls(
        s.features, s.context_features, hidden_features=HIDDEN, flip=s.flip, **kwargs
    )


TRANSFORMS = [
    Case(
        "SharedBijection-additive",
        lambda s: SharedBijection(s.features, steps=2, hidden_features=HIDDEN),
    ),
    Case(
        "SharedBijection-affine",
        lambda s: SharedBijection(s.features, steps=2, hidden_features=HIDDEN, coupling="affine"),
    ),
    Case("AdditiveCoupling", _coupling(AdditiveCoupling), (2, 7), "optional"),
    Case(
        "AffineCoupling-softplus", _coupling(AffineCoupling, scale="softplus"), (2, 7), "optional"
    ),
    Case("AffineCoupling-sigmoid", _coupling(AffineCoupling, scale="sigmoid"), (2, 7), "optional"),
    Case("AffineCoupling-exp", _coupling(AffineCoupling, scale="exp"), (2, 7), "optional"),
    Case(
        "AffineCoupling-deep",
        _coupling(AffineCoupling, hidden_layers=2, scale="softplus"),
        (2, 7),
        "always",
    ),
    Case("GlobalScale", lambda s: GlobalScale(s.features)),
    Case(
        "ConditionalActNorm-context",
        lambda s: ConditionalActNorm(s.features, s.context_features, HIDDEN),
        context="always",
    ),
    Case("ConditionalActNorm-plain", lambda s: ConditionalActNorm(s.features, 0, HIDDEN)),
    Case(
        "Chain",
        lambda s: Chain(
            [
                ConditionalActNorm(s.features, s.context_features, HIDDEN),
                AffineCoupling(s.features, s.context_features, HIDDEN, flip=s.flip),
                AdditiveCoupling(s.features, 0, HIDDEN),
            ]
        ),
        (2, 7),
        "optional",
    ),
]
PRIORS = [
    Case(
        "FlowPrior",
        lambda s: FlowPrior(s.features, s.context_features, steps=2, hidden_features=HIDDEN),
        context="optional",
    ),
    Case(
        "FlowPrior-realnvp",
        lambda s: FlowPrior(
            s.features, s.context_features, 2, HIDDEN, hidden_layers=2, actnorm=False
        ),
        (2, 7),
        "optional",
    ),
    Case(
        "ConditionalResidualPrior",
        lambda s: build_residual_prior(
            "flow", s.features, s.context_features, steps=2, hidden_features=HIDDEN
        ),
        context="always",
    ),
    Case(
        "ConditionalResidualPrior-sigmoid",
        lambda s: ConditionalResidualPrior(
            s.features, s.context_features, steps=2, hidden_features=HIDDEN, scale="sigmoid"
        ),
        context="always",
    ),
    Case(
        "FlowPrior-mixture",
        lambda s: FlowPrior(
            s.features, s.context_features, steps=2, hidden_features=HIDDEN, components=3
        ),
        context="optional",
    ),
    Case(
        "ConditionalResidualPrior-mixture",
        lambda s: build_residual_prior(
            "flow", s.features, s.context_features, steps=2, hidden_features=HIDDEN, components=4
        ),
        context="always",
    ),
    Case(
        "ConditionalGaussianPrior",
        lambda s: build_residual_prior(
            "gaussian", s.features, s.context_features, hidden_features=HIDDEN
        ),
        context="always",
    ),
    Case("StandardNormalPrior", lambda s: StandardNormalPrior(s.features, scale=0.5)),
    Case("NoResidualPrior", lambda s: build_residual_prior("none", 0, s.context_features), (0, 0)),
    Case("UniformPrior", lambda s: build_shared_prior("uniform", s.features)),
    Case(
        "shared-flow",
        lambda s: build_shared_prior("flow", s.features, steps=2, hidden_features=HIDDEN),
    ),
    Case("shared-gaussian", lambda s: build_shared_prior("gaussian", s.features)),
]
CASES = TRANSFORMS + PRIORS


def per_case(cases: list[Case]):
    """Split the profile's example budget for one property evenly over ``cases``."""
    return settings(max_examples=max(5, math.ceil(settings().max_examples / len(cases))))


@st.composite
def setups(draw, case: Case, *, min_batch: int = 1, max_batch: int = 5, magnitudes=None):
    features = draw(st.integers(*case.features))
    context_features = {
        "never": st.just(0),
        "always": st.integers(1, 4),
        "optional": st.integers(0, 4),
    }[case.context]
    return Setup(
        features=features,
        context_features=draw(context_features),
        batch=draw(st.integers(min_batch, max_batch)),
        flip=draw(st.booleans()),
        magnitude=draw(st.sampled_from(magnitudes or [1e-2, 1.0, 10.0, 1e3])),
        perturbation=draw(st.sampled_from([0.1, 0.5, 1.0])),
        seed=draw(st.integers(0, 2**16)),
    )


def realise(case: Case, setup: Setup):
    """Build the module with perturbed parameters, inputs ``x`` and a context (or None)."""
    torch.manual_seed(setup.seed)
    module = case.build(setup).to(DTYPE)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(setup.perturbation * torch.randn_like(parameter))
    x = setup.magnitude * torch.randn(setup.batch, setup.features, dtype=DTYPE)
    context = None
    if setup.context_features:
        context = torch.randn(setup.batch, setup.context_features, dtype=DTYPE)
    return module, x, context


def evaluate(module: nn.Module, x: torch.Tensor, context) -> tuple[torch.Tensor, ...]:
    """The module's per-sample outputs: ``(y, log|det J|)`` or ``(log_prob,)``."""
    if isinstance(module, Prior):
        return (module.log_prob(x, context),)
    return module(x, context)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, condition=None):
    """Row by row, ``|actual - expected| <= UNIT · κ · max(1, max|expected|)``."""
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert torch.isfinite(actual).all()
    if expected.numel() == 0:
        return
    rows = len(expected)
    scale = expected.detach().abs().reshape(rows, -1).amax(dim=1).clamp(min=1.0)
    if condition is not None:
        scale = scale * condition
    error = (actual - expected).detach().abs().reshape(rows, -1).amax(dim=1)
    worst = (error / scale).argmax()
    assert (error <= UNIT * scale).all(), (
        f"row {int(worst)}: error {error[worst]:.3g} exceeds {UNIT:g} x {scale[worst]:.3g}"
    )


def row(context, i: int):
    return None if context is None else context[i : i + 1]


def jacobians(fn, x: torch.Tensor, context) -> torch.Tensor:
    """Per-sample Jacobians ``∂fn(x; c)[0]_i / ∂x_i``, ``[batch, d, d]``.

    One ``torch.func.jacrev`` over the whole batch gives ``[batch, d, batch, d]``; the blocks
    that couple two different samples must be exactly zero.
    """
    full = torch.func.jacrev(lambda x: fn(x, context)[0])(x)
    samples = torch.arange(len(x))
    cross = rearrange(full, "b d c e -> b c d e")[samples[:, None] != samples]
    assert (cross == 0).all(), "a sample's output depends on another sample's input"
    return full[samples, :, samples]


def conditioning(jacobian: torch.Tensor) -> torch.Tensor:
    """The condition number κ of each Jacobian ``[batch, d, d]``; an example with one past
    :data:`MAX_CONDITION` is discarded."""
    condition = torch.linalg.cond(jacobian)
    assume(bool((condition < MAX_CONDITION).all()))
    return condition


def slogdet(jacobian: torch.Tensor) -> torch.Tensor:
    sign, logabsdet = torch.linalg.slogdet(jacobian)
    assert (sign != 0).all(), "the Jacobian is singular"
    return logabsdet


def normal(mean: float, std: float) -> Normal:
    # Python floats would make torch.distributions build float32 parameters.
    return Normal(torch.tensor(mean, dtype=DTYPE), torch.tensor(std, dtype=DTYPE))


def reference_log_prob(prior: Prior, x: torch.Tensor, context) -> torch.Tensor:
    """``log p(x | c)`` computed without the prior's own density code."""
    if isinstance(prior, FlowPrior):
        noise = prior.transform(x, context)[0]
        if isinstance(prior.base, GaussianMixtureBase):
            log_weights, means = prior.base.components_at(context, len(x))
            gaussians = Independent(Normal(means, torch.tensor(prior.base_scale, dtype=DTYPE)), 1)
            base = MixtureSameFamily(Categorical(logits=log_weights), gaussians).log_prob(noise)
        else:
            base = normal(0.0, prior.base_scale).log_prob(noise).sum(dim=1)
        return base + slogdet(jacobians(prior.transform, x, context))
    if isinstance(prior, ConditionalGaussianPrior):
        mean, raw = prior.net(context).chunk(2, dim=1)
        std = (raw + math.log(prior.base_scale)).clamp(-7.0, 2.0).exp()
        return Normal(mean, std).log_prob(x).sum(dim=1)
    if isinstance(prior, StandardNormalPrior):
        return normal(0.0, prior.scale).log_prob(x).sum(dim=1)
    assert isinstance(prior, (UniformPrior, NoResidualPrior))
    return x.new_zeros(x.shape[0])


# ---------------------------------------------------------------------------------------------
# Transforms


@pytest.mark.parametrize("case", TRANSFORMS, ids=repr)
@per_case(TRANSFORMS)
@given(data=st.data())
def test_inverse_undoes_forward(case, data):
    setup = data.draw(setups(case))
    f, x, context = realise(case, setup)
    y, logabsdet = f(x, context)
    assert y.shape == x.shape and logabsdet.shape == (setup.batch,)
    assert y.dtype == logabsdet.dtype == DTYPE
    condition = conditioning(jacobians(f, x, context))
    x_back, inverse_logabsdet = f.inverse(y, context)
    assert_close(x_back, x, condition)
    assert_close(inverse_logabsdet, -logabsdet, condition)

    x_again, _ = f(f.inverse(x, context)[0], context)
    assert_close(x_again, x, conditioning(jacobians(f.inverse, x, context)))


@pytest.mark.parametrize("case", TRANSFORMS, ids=repr)
@per_case(TRANSFORMS)
@given(data=st.data())
def test_log_det_is_autograd_slogdet(case, data):
    f, x, context = realise(case, data.draw(setups(case)))
    for direction in (f.forward, f.inverse):
        jacobian = jacobians(direction, x, context)
        # slogdet's own LU rounding grows with κ.
        assert_close(direction(x, context)[1], slogdet(jacobian), conditioning(jacobian))


# ---------------------------------------------------------------------------------------------
# Priors


@pytest.mark.parametrize("case", PRIORS, ids=repr)
@per_case(PRIORS)
@given(data=st.data())
def test_log_prob_is_base_density_plus_log_det(case, data):
    prior, x, context = realise(case, data.draw(setups(case)))
    log_prob = prior.log_prob(x, context)
    assert log_prob.shape == (x.shape[0],) and log_prob.dtype == DTYPE
    condition = None
    if isinstance(prior, FlowPrior):
        condition = conditioning(jacobians(prior.transform, x, context))
    assert_close(log_prob, reference_log_prob(prior, x, context), condition)


@pytest.mark.parametrize("case", PRIORS, ids=repr)
@per_case(PRIORS)
@given(data=st.data(), num_samples=st.integers(1, 4), temperature=st.sampled_from([0.0, 0.5, 1]))
def test_samples_follow_the_shape_convention_and_log_prob(case, data, num_samples, temperature):
    setup = data.draw(setups(case, magnitudes=[1.0]))
    prior, _, context = realise(case, setup)
    batch, d = setup.batch, setup.features
    if context is None:
        # Unconditional priors take a context of any width for its batch size alone.
        context = torch.randn(batch, 3, dtype=DTYPE)
    if not prior.proper:
        with pytest.raises(NotImplementedError, match="improper"):
            prior.sample(num_samples, context)
        return

    def draw(context, seed=setup.seed):
        generator = torch.Generator().manual_seed(seed)
        return prior.sample_and_log_prob(
            num_samples, context, temperature=temperature, generator=generator
        )

    samples, log_prob = draw(context)
    assert samples.shape == (batch, num_samples, d) and log_prob.shape == (batch, num_samples)
    assert samples.dtype == log_prob.dtype == DTYPE
    torch.testing.assert_close(draw(context)[0], samples, rtol=0, atol=0)
    flat_samples = samples.reshape(batch * num_samples, d)
    flat_context = context.repeat_interleave(num_samples, dim=0)
    condition = None
    if isinstance(prior, FlowPrior):
        # The sample came out of the inverse flow and log_prob maps it back.
        condition = conditioning(jacobians(prior.transform, flat_samples, flat_context))
    expected = prior.log_prob(flat_samples, flat_context)
    assert_close(log_prob.reshape(-1), expected, condition)
    if temperature == 0:
        assert_close(samples, samples[:, :1].expand_as(samples))
    assert prior.sample(num_samples, context).shape == (batch, num_samples, d)
    if not prior.context_features:
        unbatched, unbatched_log_prob = draw(None)
        assert unbatched.shape == (num_samples, d) and unbatched_log_prob.shape == (num_samples,)


# ---------------------------------------------------------------------------------------------
# Every module


@pytest.mark.parametrize("case", CASES, ids=repr)
@per_case(CASES)
@given(data=st.data())
def test_a_sample_does_not_depend_on_the_rest_of_the_batch(case, data):
    setup = data.draw(setups(case, min_batch=2))
    module, x, context = realise(case, setup)
    outputs = evaluate(module, x, context)
    # The other rows replaced by values far outside the first row's range.
    others = x.clone()
    others[1:] = 1e3 * torch.randn_like(others[1:])
    other_outputs = evaluate(module, others, context)
    for i in range(setup.batch):
        alone = evaluate(module, x[i : i + 1], row(context, i))
        for full, single in zip(outputs, alone, strict=True):
            assert_close(full[i : i + 1], single)
    for full, other in zip(outputs, other_outputs, strict=True):
        assert_close(other[:1], full[:1])
    if isinstance(module, Prior) and module.proper and context is not None:
        # The samples drawn for one context row do not depend on the other rows' contexts.
        other_context = context.clone()
        other_context[1:] = torch.randn_like(other_context[1:])
        samples = [
            module.sample(3, c, generator=torch.Generator().manual_seed(0))[0]
            for c in (context, other_context)
        ]
        assert_close(*samples)


@pytest.mark.parametrize("case", CASES, ids=repr)
@per_case(CASES)
@given(data=st.data())
def test_gradients_reach_every_parameter_and_the_context(case, data):
    # Batches of 8+ at unit scale: a ReLU unit dead on every sample would starve its weights
    # for a reason that has nothing to do with the flow.
    setup = data.draw(setups(case, min_batch=8, max_batch=12, magnitudes=[1.0]))
    module, x, context = realise(case, setup)
    if context is not None:
        context.requires_grad_(True)
    # Random weights, so that no two terms can cancel (y + f^{-1}(x) would for NICE shifts).
    weights = torch.randn(2, setup.batch, 1, setup.features, dtype=DTYPE)
    if isinstance(module, Prior):
        loss = module.log_prob(x, context).sum()
        if module.proper:
            samples = module.sample(2, context if context is not None else x)
            loss = loss + (weights[0] * samples).sum()
    else:
        y, logabsdet = module(x, context)
        x_back, inverse_logabsdet = module.inverse(x, context)
        loss = (weights[0, :, 0] * y + weights[1, :, 0] * x_back).sum()
        loss = loss + (logabsdet + inverse_logabsdet).sum()
    if not loss.requires_grad:
        assert not list(module.parameters()) and context is None
        return
    loss.backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None, f"no gradient reaches {name}"
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, f"the gradient of {name} is zero"
    if context is not None:
        assert context.grad.abs().sum() > 0, "no gradient reaches the context"


@pytest.mark.parametrize("case", CASES, ids=repr)
@per_case(CASES)
@given(data=st.data())
def test_train_and_eval_modes_agree(case, data):
    module, x, context = realise(case, data.draw(setups(case)))
    training = evaluate(module.train(), x, context)
    evaluation = evaluate(module.eval(), x, context)
    for a, b in zip(training, evaluation, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("case", CASES, ids=repr)
@per_case(CASES)
@given(data=st.data())
def test_state_dict_save_and_load_reproduces_the_module(case, data):
    setup = data.draw(setups(case))
    module, x, context = realise(case, setup)
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    torch.manual_seed(setup.seed + 1)
    fresh = case.build(setup).to(DTYPE)
    fresh.load_state_dict(state)
    for a, b in zip(evaluate(module, x, context), evaluate(fresh, x, context), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    if isinstance(module, Prior) and module.proper:
        draws = [
            m.sample(2, context, generator=torch.Generator().manual_seed(0))
            for m in (module, fresh)
        ]
        torch.testing.assert_close(*draws, rtol=0, atol=0)

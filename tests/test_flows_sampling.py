"""``sample`` skips the log-density that ``sample_and_log_prob`` computes: the samples must be
the same, bit for bit, for every prior."""

from __future__ import annotations

import math

import pytest
import torch

from flowbridge.flows import (
    Chain,
    ConditionalGaussianPrior,
    ConditionalResidualPrior,
    FlowPrior,
    SharedBijection,
    StandardNormalPrior,
    UniformPrior,
)
from flowbridge.flows.base import HalvesTransform

PRIORS = {
    "FlowPrior": lambda: FlowPrior(5, 0, steps=2, hidden_features=8),
    "FlowPrior-realnvp": lambda: FlowPrior(4, 3, steps=3, hidden_features=8, actnorm=False),
    "ConditionalResidualPrior": lambda: ConditionalResidualPrior(3, 3, steps=2),
    "ConditionalResidualPrior-mixture": lambda: ConditionalResidualPrior(
        3, 3, steps=2, components=4
    ),
    "ConditionalGaussianPrior": lambda: ConditionalGaussianPrior(3, 3, hidden_features=8),
    "StandardNormalPrior": lambda: StandardNormalPrior(3, scale=0.5),
}


@pytest.mark.parametrize("name", PRIORS)
@pytest.mark.parametrize("temperature", [0.5, 1.0])
def test_sample_gives_the_samples_of_sample_and_log_prob(name, temperature):
    torch.manual_seed(0)
    prior = PRIORS[name]()
    with torch.no_grad():
        for parameter in prior.parameters():
            # Away from the zero initialisation, where the flows are the identity.
            parameter.add_(0.3 * torch.randn_like(parameter))
    context = torch.randn(4, 3)

    def draw(method):
        return method(
            2, context, temperature=temperature, generator=torch.Generator().manual_seed(1)
        )

    samples = draw(prior.sample)
    expected, log_prob = draw(prior.sample_and_log_prob)
    assert samples.shape == (4, 2, prior.features) and log_prob.shape == (4, 2)
    assert torch.equal(samples, expected)


@pytest.mark.parametrize("component_temperature", [0.0, 1.0])
def test_a_component_temperature_reaches_both_ways_of_sampling(component_temperature):
    torch.manual_seed(0)
    prior = PRIORS["ConditionalResidualPrior-mixture"]()
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    context = torch.randn(4, 3)

    def draw(method, tau_c):
        return method(
            50,
            context,
            temperature=0.5,
            generator=torch.Generator().manual_seed(1),
            component_temperature=tau_c,
        )

    samples = draw(prior.sample, component_temperature)
    assert torch.equal(samples, draw(prior.sample_and_log_prob, component_temperature)[0])
    # It changes the draws (the weights are tempered by 0.5 without it).
    assert not torch.equal(samples, draw(prior.sample, None))


def test_the_uniform_prior_still_cannot_be_sampled():
    with pytest.raises(NotImplementedError, match="improper"):
        UniformPrior(3).sample(2, torch.randn(4, 3))


def _perturbed(prior):
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return prior


TRANSFORMS = {
    "FlowPrior": lambda: FlowPrior(5, 3, steps=3, hidden_features=8).transform,
    "FlowPrior-realnvp": lambda: FlowPrior(4, 3, steps=3, actnorm=False).transform,
    "FlowPrior-1-feature": lambda: FlowPrior(1, 3, steps=2, hidden_features=8).transform,
    "SharedBijection-affine": lambda: SharedBijection(5, steps=2, coupling="affine"),
    "SharedBijection-additive": lambda: SharedBijection(6, steps=2, coupling="additive"),
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_invert_gives_the_outputs_of_inverse(name):
    """``_invert`` (the inverse without log-determinants, which sampling uses) must be
    ``_inverse``'s outputs, bit for bit, layer by layer and through a whole chain."""
    torch.manual_seed(0)
    transform = _perturbed(TRANSFORMS[name]())
    inputs = torch.randn(7, transform.features)
    context = torch.randn(7, 3) if transform.context_features else None
    assert torch.equal(transform._invert(inputs, context), transform._inverse(inputs, context)[0])
    for layer in getattr(transform, "layers", [transform]):
        assert torch.equal(layer._invert(inputs, context), layer._inverse(inputs, context)[0])


class _ShiftAndDouble(HalvesTransform):
    """A halves layer with no ``_invert_halves`` of its own: ``(x1 + 1, 2 x2)``."""

    features = 5

    def _forward_halves(self, first, second, context):
        return first + 1, second * 2, second.new_full((len(second),), 3 * math.log(2))

    def _inverse_halves(self, first, second, context):
        return first - 1, second / 2, second.new_full((len(second),), -3 * math.log(2))


def test_a_halves_layer_without_its_own_invert_inverts_through_its_inverse():
    """``HalvesTransform._invert_halves`` defaults to ``_inverse_halves`` less its
    log-determinant: alone, and in a chain that hands the halves from layer to layer."""
    layer, inputs = _ShiftAndDouble(), torch.randn(4, 5)
    expected = torch.cat((inputs[:, :2] - 1, inputs[:, 2:] / 2), dim=1)
    assert torch.equal(layer._invert(inputs, None), expected)
    chain = Chain([_ShiftAndDouble(), _ShiftAndDouble()])
    assert torch.equal(chain._invert(inputs, None), chain.inverse(inputs)[0])


def test_gradients_through_sampling_are_exact():
    """Sampling divides and subtracts in place on fresh tensors; autograd must still get the
    gradient with respect to the context and every parameter right."""
    torch.manual_seed(0)
    prior = _perturbed(FlowPrior(4, 3, steps=2, hidden_features=6).double())
    context = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
    weights = tuple(prior.parameters())

    def samples(context, *_):
        return prior.sample(2, context, generator=torch.Generator().manual_seed(1))

    assert torch.autograd.gradcheck(samples, (context, *weights))

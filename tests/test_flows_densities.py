"""The flow priors' base distributions: the mixture's weights, temperature and purpose.

Densities are checked against ``torch.distributions`` in the property battery
(``test_flows_properties.py``); here: that samples come from the components in the right
proportions, what temperature (and a component temperature apart from it) does to them, and
that a mixture base removes the mass a single Gaussian's flow keeps between separated modes.
"""

from __future__ import annotations

import pytest
import torch

from flowbridge import BridgeConfig, ConfigError
from flowbridge.flows import (
    ConditionalGaussianPrior,
    ConditionalResidualPrior,
    FlowPrior,
    build_residual_prior,
)
from flowbridge.flows.densities import GaussianMixtureBase, NormalBase

WEIGHTS = torch.tensor([0.6, 0.3, 0.1])
ANCHORS = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])


def fixed_mixture(scale: float = 0.1) -> GaussianMixtureBase:
    """An unconditional 2-d mixture with known weights and far-apart means."""
    base = GaussianMixtureBase(2, 0, components=3, scale=scale)
    with torch.no_grad():
        base.anchors.copy_(ANCHORS)
        base.constant.zero_()
        base.constant[:3] = WEIGHTS.log()
    return base


def draw(
    base: GaussianMixtureBase,
    n: int,
    temperature: float,
    seed: int = 0,
    component_temperature: float | None = None,
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 2, generator=generator)
    with torch.no_grad():
        return base.sample(noise, None, temperature, generator, component_temperature)


def nearest_anchor(z: torch.Tensor) -> torch.Tensor:
    return torch.cdist(z, ANCHORS).argmin(dim=1)


# 0.8 as well as 0.5: below 1 the Gumbel noise is scaled by τ² instead of the weights divided,
# and at 0.5 a sign slip there moves only the 0.07% component, within the tolerance.
@pytest.mark.parametrize("temperature", [1.0, 0.5, 0.8, 2.0])
def test_components_are_drawn_with_the_tempered_weights(temperature):
    n = 20_000
    counts = torch.bincount(nearest_anchor(draw(fixed_mixture(), n, temperature)), minlength=3)
    tempered = WEIGHTS ** (1 / temperature**2)
    expected = tempered / tempered.sum()
    # Four binomial standard deviations: a wrong weighting is off by far more.
    tolerance = 4 * torch.sqrt(expected * (1 - expected) / n)
    assert ((counts / n - expected).abs() <= tolerance).all(), (counts / n, expected)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_temperature_scales_each_component_spread(temperature):
    z = draw(fixed_mixture(scale=0.1), 20_000, temperature)
    first = z[nearest_anchor(z) == 0]
    torch.testing.assert_close(
        first.std(dim=0), torch.full((2,), 0.1 * temperature), rtol=0.05, atol=0
    )


def shares(z: torch.Tensor) -> torch.Tensor:
    return torch.bincount(nearest_anchor(z), minlength=3) / len(z)


@pytest.mark.parametrize(
    ("temperature", "component_temperature"), [(0.5, 1.0), (1.0, 0.5), (0.3, 2.0)]
)
def test_a_component_temperature_tempers_the_weights_and_not_the_noise(
    temperature, component_temperature
):
    n = 20_000
    z = draw(fixed_mixture(scale=0.1), n, temperature, component_temperature=component_temperature)
    tempered = WEIGHTS ** (1 / component_temperature**2)
    expected = tempered / tempered.sum()
    tolerance = 4 * torch.sqrt(expected * (1 - expected) / n)
    assert ((shares(z) - expected).abs() <= tolerance).all(), (shares(z), expected)
    first = z[nearest_anchor(z) == 0]
    torch.testing.assert_close(
        first.std(dim=0), torch.full((2,), 0.1 * temperature), rtol=0.05, atol=0
    )


def test_without_a_component_temperature_the_weights_take_the_temperature():
    # None means "the same as temperature": the same draws, bit for bit.
    base = fixed_mixture()
    for temperature in (0.0, 0.5, 1.0):
        torch.testing.assert_close(
            draw(base, 500, temperature, component_temperature=None),
            draw(base, 500, temperature, component_temperature=temperature),
            rtol=0,
            atol=0,
        )


def test_a_zero_component_temperature_keeps_to_the_likeliest_component_with_its_noise():
    z = draw(fixed_mixture(scale=0.1), 2_000, 1.0, component_temperature=0.0)
    assert (nearest_anchor(z) == 0).all()
    assert z.std(dim=0).min() > 0.08  # the noise stays: not the mean alone


@pytest.mark.parametrize("component_temperature", [1e-30, 1e-3, 0.0])
def test_a_vanishing_component_temperature_keeps_to_the_likeliest_component(
    component_temperature,
):
    # The likeliest component is not the first: log w / τc² overflowing to -inf everywhere
    # had fallen back to component 0.
    base = fixed_mixture(scale=0.1)
    with torch.no_grad():
        base.constant[:3] = WEIGHTS[[2, 0, 1]].log()
    z = draw(base, 500, 1.0, component_temperature=component_temperature)
    assert (nearest_anchor(z) == 1).all()


def test_zero_temperature_gives_the_most_probable_mean():
    z = draw(fixed_mixture(), 7, 0.0)
    torch.testing.assert_close(z, ANCHORS[0].expand(7, 2))


def test_the_mixture_density_is_normalised():
    # A 1-d conditional mixture, perturbed so that its weights and means depend on the context.
    torch.manual_seed(0)
    base = GaussianMixtureBase(1, 2, components=4, scale=0.3).double()
    with torch.no_grad():
        for parameter in base.parameters():
            parameter.add_(0.5 * torch.randn_like(parameter))
    grid = torch.linspace(-12, 12, 24_001, dtype=torch.float64)[:, None]
    for context in torch.randn(3, 1, 2, dtype=torch.float64):
        density = base.log_prob(grid, context.expand(len(grid), 2)).exp()
        assert torch.trapezoid(density, grid[:, 0]).item() == pytest.approx(1.0, abs=1e-6)


def test_the_single_normal_base_is_lnfmms():
    base = NormalBase(0.25, features=3)
    z = torch.randn(5, 3)
    expected = torch.distributions.Normal(0.0, 0.25).log_prob(z).sum(dim=1)
    torch.testing.assert_close(base.log_prob(z, None), expected)
    torch.testing.assert_close(base.sample(z, None, 0.5), z * 0.125)
    assert not list(base.parameters())


def test_a_flow_prior_with_one_component_is_unchanged_by_the_option():
    torch.manual_seed(0)
    plain = FlowPrior(3, 2, steps=2, hidden_features=8)
    torch.manual_seed(0)
    explicit = FlowPrior(3, 2, steps=2, hidden_features=8, components=1)
    assert isinstance(explicit.base, NormalBase)
    assert plain.state_dict().keys() == explicit.state_dict().keys()


def four_modes(n: int, generator: torch.Generator) -> torch.Tensor:
    """Points at the four corners (±1, ±1) with spread 0.05: modes far apart for their size."""
    corners = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    pick = torch.randint(4, (n,), generator=generator)
    return corners[pick] + 0.05 * torch.randn(n, 2, generator=generator)


def between_modes(prior: FlowPrior, n: int = 4_000) -> float:
    """Share of samples farther than 0.3 from every corner: the blends of two modes."""
    corners = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])
    with torch.no_grad():
        samples = prior.sample(n, generator=torch.Generator().manual_seed(1))
    return (torch.cdist(samples, corners).amin(dim=1) > 0.3).float().mean().item()


def fit(components: int, steps: int = 400) -> FlowPrior:
    torch.manual_seed(0)
    prior = FlowPrior(2, 0, steps=4, hidden_features=32, components=components)
    optimiser = torch.optim.Adam(prior.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        loss = -prior.log_prob(four_modes(256, generator)).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return prior


def test_a_mixture_base_leaves_less_mass_between_separated_modes():
    # The reason the option exists: one Gaussian's image under a continuous flow is connected,
    # so it keeps mass on the paths between the modes; the mixture gives each mode its own.
    single, mixture = between_modes(fit(1)), between_modes(fit(8))
    assert mixture < 0.5 * single, (single, mixture)


def test_a_mixture_base_needs_the_flow_prior():
    with pytest.raises(
        ValueError, match=r"'gaussian' residual prior does not use components \(got 4\).*'flow'"
    ):
        build_residual_prior("gaussian", 3, 2, components=4)
    with pytest.raises(ConfigError, match="residual_components = 4 .* needs residual_prior 'flow'"):
        BridgeConfig(residual_prior="gaussian", residual_components=4)
    with pytest.raises(ConfigError, match="residual_components must be >= 1"):
        BridgeConfig(residual_components=0)
    with pytest.raises(ValueError, match="components >= 2"):
        GaussianMixtureBase(2, 0, components=1, scale=1.0)
    with pytest.raises(ValueError, match="context_features must be >= 0"):
        GaussianMixtureBase(2, -1, components=3, scale=1.0)
    with pytest.raises(ValueError, match="components must be >= 1"):
        FlowPrior(2, 1, components=0)


def _hidden_layers(mlp: torch.nn.Sequential) -> int:
    return sum(isinstance(module, torch.nn.Linear) for module in mlp) - 1


def test_hidden_layers_reach_every_mlp_of_a_flow_prior_the_mixture_base_included():
    prior = FlowPrior(4, 3, steps=1, hidden_features=16, hidden_layers=3, components=4)
    actnorm, coupling = prior.transform.layers
    assert [_hidden_layers(m.net) for m in (actnorm, coupling, prior.base)] == [3, 3, 3]
    assert prior.base.net[0].out_features == 16
    assert _hidden_layers(GaussianMixtureBase(2, 3, 2, 1.0, 8, hidden_layers=0).net) == 0


def test_the_default_mixture_base_is_the_model_it_always_was():
    # Passing hidden_layers through must not change a default model: the same parameters,
    # drawn in the same order, as the flow and base built the way they were before.
    torch.manual_seed(0)
    prior = FlowPrior(3, 2, steps=2, hidden_features=8, components=3)
    torch.manual_seed(0)
    # One component: the normal base draws no random numbers.
    transform = FlowPrior(3, 2, steps=2, hidden_features=8).transform
    base = GaussianMixtureBase(3, 2, 3, 0.25, 8)
    assert _hidden_layers(prior.base.net) == 1
    expected = {
        **{f"transform.{k}": v for k, v in transform.state_dict().items()},
        **{f"base.{k}": v for k, v in base.state_dict().items()},
    }
    got = prior.state_dict()
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert torch.equal(got[key], value), key


SIGMOID_START = torch.sigmoid(torch.tensor(2.0)).item() + 1e-3  # ActNorm's scale at u = 0


@pytest.mark.parametrize(
    ("options", "start_std"),
    [
        ({}, 0.25 / SIGMOID_START**4),  # the default: 4 sigmoid ActNorms, 0.88 each
        ({"steps": 2}, 0.25 / SIGMOID_START**2),
        ({"actnorm": False}, 0.25),
        ({"actnorm_scale": "exp"}, 0.25),
        ({"actnorm_scale": "softplus"}, 0.25),
    ],
    ids=str,
)
def test_the_flow_prior_starts_where_its_docstring_says(options, start_std):
    # At initialisation T(x) = x * s^steps (zero-initialised MLPs), so p = N(0, (σ0 / s^steps)² I)
    # for every context: 0.41 with the defaults, σ0 with an ActNorm that starts at scale 1.
    context = torch.randn(5, 3)
    x = torch.randn(5, 2)
    flow = ConditionalResidualPrior(2, 3, **options)
    expected = torch.distributions.Normal(0.0, start_std).log_prob(x).sum(dim=1)
    torch.testing.assert_close(flow.log_prob(x, context), expected)
    # The Gaussian prior starts at N(0, σ0² I), as its docstring says.
    gaussian = ConditionalGaussianPrior(2, 3)
    expected = torch.distributions.Normal(0.0, 0.25).log_prob(x).sum(dim=1)
    torch.testing.assert_close(gaussian.log_prob(x, context), expected)

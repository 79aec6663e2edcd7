r"""Base densities of the flow priors: the distributions in the flow's noise space.

A :class:`~flowbridge.flows.FlowPrior` maps a code x to noise z = T(x; c) and scores
:math:`\log p(x \mid c) = \log p_0(z \mid c) + \log|\det J_T(x; c)|`; this module gives
:math:`p_0`. Each base has one interface:

* ``log_prob(z [rows, d], context [rows, c] | None) -> [rows]``;
* ``sample(noise [rows, d], context, temperature, generator, component_temperature) -> z
  [rows, d]``, from standard normal ``noise`` (drawn by the prior), plus any draws of its own
  from ``generator``; ``component_temperature`` tempers a mixture's choice of component apart
  from the noise (``None``: by ``temperature`` too).

A :class:`~flowbridge.flows.FlowPrior` has checked its arguments already and calls the
unchecked ``_log_prob`` and ``_sample``; the public methods of both bases check theirs as a
prior does.

:class:`NormalBase` is LNFMM's :math:`\mathcal N(0, \sigma_0^2 I)`.
:class:`GaussianMixtureBase` is a conditional mixture of Gaussians, for codes with several
separated modes. Why it helps: a flow is a continuous bijection, so the image of one Gaussian
is connected; to put its mass on K separated modes (say the four positions a caption leaves
open) it has to keep some mass on the paths between them, and codes drawn from there decode to
blends of two modes. A mixture gives the modes components of their own, and the flow no
longer has to tear one blob apart (``benchmarks/README.md`` measures it on the testbed).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_context, check_positive_int, check_positive_number, check_vectors
from .nn import MLP

__all__ = [
    "NormalBase",
    "GaussianMixtureBase",
    "draw_device",
    "normal_log_prob",
    "isotropic_normal_log_prob",
]

_LOG_2PI = math.log(2 * math.pi)


def draw_device(generator: torch.Generator | None, device: torch.device) -> torch.device:
    """Where to draw random numbers for a tensor on ``device``: on ``generator``'s own device.

    torch draws only on a generator's own device. Drawing there and moving the numbers lets a
    CPU generator (the usual ``torch.Generator().manual_seed(s)``) seed sampling on a GPU, and
    gives the same noise for a seed on every device. Every sampling path asks here first, so
    this is where a wrong ``generator`` (a seed given as an int) is named.
    """
    if generator is None:
        return device
    if not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator, e.g. torch.Generator().manual_seed(0), "
            f"got {type(generator).__name__} ({generator!r})"
        )
    return generator.device


def normal_log_prob(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    r"""Log-density of :math:`\mathcal N(\mu, \mathrm{diag}\,\sigma^2)`, ``[batch, d] -> [batch]``.

    ``mean`` and ``log_std`` broadcast against ``x``.
    """
    z = (x - mean) * torch.exp(-log_std)
    return -0.5 * z.square().sum(dim=1) - log_std.sum(dim=1) - 0.5 * _LOG_2PI * x.shape[1]


def isotropic_normal_log_prob(x: torch.Tensor, std: float) -> torch.Tensor:
    r"""Log-density of :math:`\mathcal N(0, \sigma^2 I)`, ``[..., d] -> [...]``.

    σ is a number: the constant part is computed once instead of per element.
    """
    constant = x.shape[-1] * (math.log(std) + 0.5 * _LOG_2PI)
    return x.square().sum(dim=-1) * (-0.5 / std**2) - constant


class NormalBase(nn.Module):
    r""":math:`\mathcal N(0, \sigma_0^2 I)`; at temperature τ, samples from
    :math:`\mathcal N(0, (\tau\sigma_0)^2 I)`. No parameters.

    The public ``log_prob`` and ``sample`` check their arguments as
    :class:`GaussianMixtureBase`'s do: ``z`` (``noise``) must be a finite floating
    ``[rows, features]`` tensor, a context is ignored apart from its rows, and the
    temperature must be a number ≥ 0. With one component there is no choice for a
    ``component_temperature`` to temper: one is refused, as a prior without a mixture
    refuses one. Having no parameters, the base works in the dtype of ``z``.

    Args:
        scale: σ0, the standard deviation (a number; not the name of a scale activation, as
            the flow layers' ``scale`` is).
        features: d, the dimensions of z.
    """

    def __init__(self, scale: float, features: int):
        super().__init__()
        self.scale = check_positive_number(scale, "base scale")
        self.features = check_positive_int(features, "features")

    def log_prob(self, z: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """``log p_0(z)``, ``z [rows, features]``, ``context`` ignored apart from its rows
        ``-> [rows]``."""
        return self._log_prob(*self._check(z, context, "z"))

    def sample(
        self, noise, context, temperature, generator=None, component_temperature=None
    ) -> torch.Tensor:
        """Samples ``[rows, features]`` from standard normal ``noise [rows, features]``
        (``generator`` is checked but draws nothing: the noise is all the randomness)."""
        noise, context = self._check(noise, context, "noise")
        temperature = check_positive_number(temperature, "temperature", allow_zero=True)
        if component_temperature is not None:
            raise ValueError(
                f"component_temperature tempers the choice of a mixture component, and a "
                f"NormalBase has one component; leave it None (got {component_temperature!r})"
            )
        draw_device(generator, noise.device)  # a seed given as an int is named, as elsewhere
        return self._sample(noise, context, temperature, generator)

    def _check(self, z, context, name: str) -> tuple[torch.Tensor, None]:
        owner = type(self).__name__
        z = check_vectors(z, self.features, name=f"{owner} {name}")
        return z, check_context(context, 0, z.shape[0], owner)

    # The unchecked calls FlowPrior makes on any base, its arguments checked already.
    def _log_prob(self, z, context):
        return isotropic_normal_log_prob(z, self.scale)

    def _sample(self, noise, context, temperature, generator=None, component_temperature=None):
        # One component: there is no choice for component_temperature to temper.
        return noise * (self.scale * temperature)

    def extra_repr(self) -> str:
        return f"features={self.features}, scale={self.scale}"


class GaussianMixtureBase(nn.Module):
    r"""A conditional mixture of M isotropic Gaussians of one scale :math:`\sigma_0`:

    .. math::

        p_0(z \mid c) = \sum_{m=1}^{M} \pi_m(c)\, \mathcal N(z;\ a_m + \delta_m(c),\ \sigma_0^2 I)

    One MLP of the context gives the logits of :math:`\pi(c)` and the shifts
    :math:`\delta(c)` ``[M, d]``; without a context both are learned constants. The output
    layer starts at zero, so a new base has equal weights and its means at the anchors
    :math:`a_m \sim \mathcal N(0, (2\sigma_0)^2 I)` (learned): apart enough that the
    components start different, near enough that each starts on the codes.

    **Temperature** τ scales every component's σ0 to τσ0 and tempers the weights to
    :math:`\pi_m^{1/\tau^2}` (renormalised): the density :math:`p_0^{1/\tau^2}` for
    well-separated components, so a lower temperature keeps to the likelier modes *and* nearer
    their centres. τ = 0 gives the most probable component's mean. A **component
    temperature** :math:`\tau_c` tempers the weights instead (:math:`\pi_m^{1/\tau_c^2}`;
    :math:`\tau_c = 0`: the most probable component), leaving τ to the noise: with
    :math:`\tau_c = 1` every mode keeps its learnt share and only the draws within a
    component come nearer its centre.

    Args:
        features: d, the dimensions of z.
        context_features: dimensions of the context (0: an unconditional mixture).
        components: M ≥ 2.
        scale: σ0, the components' standard deviation (a number; not the name of a scale
            activation, as the flow layers' ``scale`` is).
        hidden_features: width of each hidden layer of the context MLP.
        hidden_layers: number of hidden layers of the context MLP (unused without a context).
    """

    def __init__(
        self,
        features: int,
        context_features: int,
        components: int,
        scale: float,
        hidden_features: int = 128,
        hidden_layers: int = 1,
    ):
        super().__init__()
        self.features = check_positive_int(features, "features")
        self.components = check_positive_int(components, "components")
        if components < 2:
            raise ValueError(f"a mixture needs components >= 2, got {components}")
        self.scale = check_positive_number(scale, "base scale")
        self.anchors = nn.Parameter(2 * self.scale * torch.randn(components, features))
        outputs = components * (1 + features)
        self.context_features = check_positive_int(
            context_features, "context_features", allow_zero=True
        )
        if self.context_features:
            self.net = MLP(context_features, outputs, hidden_features, hidden_layers)
        else:
            self.net = None
            self.constant = nn.Parameter(torch.zeros(outputs))

    def components_at(
        self, context: torch.Tensor | None, rows: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixture's components for each context row: log-weights ``[rows, M]``
        (normalised) and means ``[rows, M, d]`` (``context`` unchecked; an unconditional
        mixture ignores it and gives ``rows`` copies of its constants)."""
        raw = self.constant.expand(rows, -1) if self.net is None else self.net(context)
        logits, shifts = raw.split([self.components, self.components * self.features], dim=1)
        means = self.anchors + shifts.unflatten(1, (self.components, self.features))
        return F.log_softmax(logits, dim=1), means

    def log_prob(self, z: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        """``log p_0(z | c)``, ``z [rows, features]``, ``context [rows, context_features]``
        (ignored, apart from its rows, by an unconditional mixture) ``-> [rows]``."""
        return self._log_prob(*self._check(z, context, "z"))

    def sample(
        self, noise, context, temperature, generator=None, component_temperature=None
    ) -> torch.Tensor:
        """Samples ``[rows, features]`` from standard normal ``noise [rows, features]``."""
        noise, context = self._check(noise, context, "noise")
        temperature = check_positive_number(temperature, "temperature", allow_zero=True)
        if component_temperature is not None:
            component_temperature = check_positive_number(
                component_temperature, "component_temperature", allow_zero=True
            )
        return self._sample(noise, context, temperature, generator, component_temperature)

    def _check(self, z, context, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        owner = type(self).__name__
        z = check_vectors(z, self.features, name=f"{owner} {name}", dtype=self.anchors.dtype)
        return z, check_context(context, self.context_features, z.shape[0], owner, dtype=z.dtype)

    def _log_prob(self, z, context):
        log_weights, means = self.components_at(context, z.shape[0])
        # [rows, M]: each component's density at its row's z.
        per_component = isotropic_normal_log_prob(z.unsqueeze(1) - means, self.scale)
        return torch.logsumexp(log_weights + per_component, dim=1)

    def _sample(self, noise, context, temperature, generator=None, component_temperature=None):
        log_weights, means = self.components_at(context, noise.shape[0])
        tau_c = temperature if component_temperature is None else component_temperature
        if tau_c == 0:
            chosen = log_weights.argmax(dim=1)
        else:
            # Gumbel-max: argmax(log w / τc² + g) is a draw from the tempered weights.
            exponential = torch.empty(
                log_weights.shape,
                dtype=log_weights.dtype,
                device=draw_device(generator, log_weights.device),
            ).exponential_(generator=generator)
            gumbel = -exponential.to(log_weights.device).log()
            # The same argmax as that of τc² log w + τc² g; below τc = 1 scaling the noise
            # instead of dividing the weights keeps a tiny τc from overflowing them to -inf
            # (every component alike: component 0 chosen, not the likeliest).
            if tau_c >= 1:
                chosen = (log_weights / tau_c**2 + gumbel).argmax(dim=1)
            else:
                chosen = (log_weights + tau_c**2 * gumbel).argmax(dim=1)
        mean = means[torch.arange(noise.shape[0], device=noise.device), chosen]
        return mean + noise * (self.scale * temperature)

    def extra_repr(self) -> str:
        return f"features={self.features}, components={self.components}, scale={self.scale}"

r"""Priors on latent codes: conditional residual priors and shared-space priors.

Every prior has one interface (nflows ``Distribution`` conventions, plus a temperature):

* ``log_prob(inputs [batch, d], context [batch, c] | None) -> [batch]``
* ``sample(num_samples, context=None, *, temperature=1.0, generator=None,
  component_temperature=None)`` returns ``[batch, num_samples, d]`` when a context is given
  (one row of samples per context row, so a 0-row context gives ``[0, num_samples, d]``)
  and ``[num_samples, d]`` without one. Sampling is differentiable (reparametrised; a
  mixture base's choice of component is not). The options after ``context`` are
  keyword-only: nflows' third positional argument is ``batch_size``, which flowbridge does
  not have, and an nflows-style ``sample(1000, None, 100)`` raises a TypeError instead of
  sampling at temperature 100.
* ``sample_and_log_prob(...)`` returns the samples and their log-density under the prior
  (at temperature 1), shaped ``[batch, num_samples]`` / ``[num_samples]``.

A prior computes in its own dtype (float32 unless converted with ``prior.to(dtype)``):
inputs and a conditional prior's context must have it, and samples come in it.

Unconditional priors accept and ignore a context (only its batch size is used), so the bridge
can swap any residual prior for any other. Sampling at temperature :math:`\tau` draws the
base noise from :math:`\mathcal N(0, (\tau\sigma_0)^2 I)`; a mixture base also tempers its
weights, by τ or, given one, by a ``component_temperature`` of their own (a prior without a
mixture refuses one: there is no choice of component for it to temper).

Residual priors (``build_residual_prior``): ``"flow"`` (LNFMM's conditional flow, over one
normal or, with ``components > 1``, a conditional Gaussian mixture: :mod:`.densities`),
``"gaussian"`` (a conditional diagonal Gaussian, the CVAE prior LNFMM argues against),
``"standard"`` (N(0, I), unconditional) and ``"none"`` (a zero-dimensional residual).
Shared priors (``build_shared_prior``): ``"uniform"`` (improper: contributes only the shared
map's volume term), ``"gaussian"`` and ``"flow"``.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange, repeat
from nflows.distributions import Distribution

from ..checks import check_context, check_positive_int, check_positive_number, check_vectors
from .base import Chain, FlowTransform
from .coupling import AffineCoupling
from .densities import (
    GaussianMixtureBase,
    NormalBase,
    draw_device,
    isotropic_normal_log_prob,
    normal_log_prob,
)
from .elementwise import ConditionalActNorm
from .nn import MLP, scale_activation

__all__ = [
    "Prior",
    "FlowPrior",
    "ConditionalResidualPrior",
    "ConditionalGaussianPrior",
    "StandardNormalPrior",
    "NoResidualPrior",
    "UniformPrior",
    "RESIDUAL_PRIORS",
    "RESIDUAL_PRIOR_OPTIONS",
    "SHARED_PRIORS",
    "build_residual_prior",
    "build_shared_prior",
]


class Prior(Distribution):
    """Shared validation and sample reshaping; subclasses implement two small methods.

    * ``_log_prob(inputs, context) -> [batch]`` on validated inputs;
    * ``_sample_flat(noise, context, temperature, generator) -> (samples, log_prob)`` maps
      standard-normal ``noise [n, features]`` (contexts already repeated row-wise) to samples
      and their log-density at temperature 1 (``generator`` serves any further draws, a
      mixture's components); ``sample`` calls ``_sample_only``, the same samples without the
      log-density, which a prior may override to skip computing it.

    A prior whose samples choose a mixture component (:attr:`mixture`) gets the
    ``component_temperature`` as a keyword of both; the others never do.
    """

    #: whether the prior is a normalised density one can sample from
    proper: bool = True
    #: whether sampling chooses a mixture component (which ``component_temperature`` tempers)
    mixture: bool = False

    def __init__(self, features: int, context_features: int = 0):
        super().__init__()
        self.features = check_positive_int(features, "features", allow_zero=True)
        self.context_features = check_positive_int(
            context_features, "context_features", allow_zero=True
        )
        # Tracks the module's device and dtype: samples are drawn in them.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def log_prob(self, inputs, context=None):
        inputs = check_vectors(
            inputs, self.features, name=f"{self._name} inputs", dtype=self._anchor.dtype
        )
        context = check_context(
            context, self.context_features, inputs.shape[0], self._name, dtype=inputs.dtype
        )
        return self._log_prob(inputs, context)

    def sample(
        self,
        num_samples,
        context=None,
        *,
        temperature=1.0,
        generator=None,
        component_temperature=None,
    ):
        r"""Draw ``num_samples`` samples per context row.

        Args:
            num_samples: K ≥ 1.
            context: ``[batch, context_features]``, or None for an unconditional prior (an
                unconditional prior uses only its rows).
            temperature: τ ≥ 0, keyword-only: scales the spread of the noise the samples
                are made from (a flow prior draws its base noise from
                :math:`\mathcal N(0, (\tau\sigma_0)^2 I)`; τ = 0 gives the noise-free
                sample); a mixture base also tempers its weights by τ unless given a
                ``component_temperature``.
            generator: a ``torch.Generator`` for every draw, keyword-only (any device: the
                numbers are drawn on its device and moved).
            component_temperature: :math:`\tau_c \ge 0`, keyword-only: tempers a mixture
                base's choice of component apart from the noise; refused by a prior without
                a mixture.

        Returns:
            ``[batch, K, features]`` with a context, ``[K, features]`` without one.

        Unlike nflows' ``Distribution.sample(num_samples, context=None, batch_size=None)``
        there is no ``batch_size``, and the options after ``context`` are keyword-only, so
        an nflows-style ``sample(1000, None, 100)`` raises a TypeError.
        """
        return self._draw(
            num_samples, context, temperature, generator, component_temperature, False
        )[0]

    def sample_and_log_prob(
        self,
        num_samples,
        context=None,
        *,
        temperature=1.0,
        generator=None,
        component_temperature=None,
    ):
        """:meth:`sample`'s samples (same arguments, the same options keyword-only) and their
        log-density under the prior at temperature 1: ``[batch, K]`` with a context, ``[K]``
        without one."""
        return self._draw(num_samples, context, temperature, generator, component_temperature, True)

    def _draw(
        self, num_samples, context, temperature, generator, component_temperature, with_log_prob
    ):
        check_positive_int(num_samples, "num_samples")
        temperature = check_positive_number(temperature, "temperature", allow_zero=True)
        options = {}
        if component_temperature is not None:
            if not self.mixture:
                raise ValueError(
                    f"component_temperature tempers the choice of a mixture component, and "
                    f"this {self._name} has no mixture (a 'flow' prior over a Gaussian mixture "
                    f"has one: residual_components > 1); leave it None"
                )
            options["component_temperature"] = check_positive_number(
                component_temperature, "component_temperature", allow_zero=True
            )
        checked = check_context(
            context, self.context_features, None, self._name, dtype=self._anchor.dtype
        )
        batch = None if context is None else context.shape[0]
        noise = torch.randn(
            num_samples if batch is None else num_samples * batch,  # a 0-row context: no rows
            self.features,
            generator=generator,
            dtype=self._anchor.dtype,
            device=draw_device(generator, self._anchor.device),
        ).to(self._anchor.device)
        flat_context = None
        if checked is not None:
            flat_context = repeat(checked, "b c -> (b k) c", k=num_samples)
        if with_log_prob:
            samples, log_prob = self._sample_flat(
                noise, flat_context, temperature, generator, **options
            )
        else:
            samples = self._sample_only(noise, flat_context, temperature, generator, **options)
            log_prob = None
        if batch is None:
            return samples, log_prob
        samples = rearrange(samples, "(b k) d -> b k d", k=num_samples)
        if log_prob is not None:
            log_prob = rearrange(log_prob, "(b k) -> b k", k=num_samples)
        return samples, log_prob

    def _log_prob(self, inputs, context):  # pragma: no cover - abstract
        raise NotImplementedError

    def _sample_flat(self, noise, context, temperature, generator):  # pragma: no cover
        raise NotImplementedError

    def _sample_only(self, noise, context, temperature, generator, **options):
        # The samples of _sample_flat; a prior whose density costs extra work skips it here.
        return self._sample_flat(noise, context, temperature, generator, **options)[0]

    def extra_repr(self) -> str:
        return f"features={self.features}, context_features={self.context_features}"


class FlowPrior(Prior):
    r"""A (conditional) normalizing flow over :math:`\mathcal N(0, \sigma_0^2 I)`, or over a
    conditional mixture of such Gaussians (``components > 1``).

    Each of the ``steps`` steps maps data towards noise as
    [:class:`ConditionalActNorm` → :class:`AffineCoupling` whose network sees
    :math:`(x_1, c)`] (``actnorm=False`` leaves the ActNorm out: a plain conditional RealNVP),
    so

    .. math::

        \log p(x \mid c) = \log p_0(T(x; c) \mid c) + \log|\det J_T(x; c)|,

    with the base :math:`p_0 = \mathcal N(0, \sigma_0^2 I)` (LNFMM's) or, with ``components``
    = M > 1, :math:`p_0(z \mid c) = \sum_m \pi_m(c)\, \mathcal N(z; \mu_m(c), \sigma_0^2 I)`
    (:class:`~flowbridge.flows.densities.GaussianMixtureBase`: separated modes without the mass a
    single Gaussian's image keeps between them).

    The original swaps the halves after each step; here the couplings of odd steps update the
    other half instead, the same family of maps without moving data.

    With ``features == 1`` the couplings are left out (nothing to split) and the flow is a
    stack of (conditional) elementwise affine maps. With ``context_features == 0`` it is an
    unconditional flow (the ``"flow"`` shared prior).

    **At initialisation** every MLP's output layer is zero: the couplings are the identity
    and each ActNorm scales by its scale at 0, s = sigmoid(2) + 1e-3 ≈ 0.882 for
    ``"sigmoid"`` and 1 for ``"exp"`` and ``"softplus"``. So :math:`T(x) = s^S x` (S =
    ``steps``) for every context, and the prior starts at the base widened by
    :math:`1/s^S`: :math:`\mathcal N(0, (\sigma_0 / 0.882^4)^2 I) \approx
    \mathcal N(0, 0.41^2 I)` with the defaults, :math:`\mathcal N(0, \sigma_0^2 I)` with
    ``actnorm=False`` or ``actnorm_scale="exp"``.

    **How narrow it can get.** The default ``actnorm_scale="sigmoid"`` (LNFMM's) lies in
    (1e-3, 1.001): in the data → noise direction an ActNorm can contract but not expand, so
    it can make the density wider, never narrower, than the base; only the couplings can
    concentrate it. With every ActNorm scale at most :math:`a` and every coupling scale at
    most :math:`b` (1.001 for ``"sigmoid"``, 3 for ``"exp"`` and ``"softplus"``; a = 1 with
    ``actnorm=False``),

    .. math::

        \log|\det J_T| \le d S \log a + U \log b
        \quad\Longrightarrow\quad
        p(x \mid c) \le (2\pi\sigma_{\min}^2)^{-d/2}, \qquad
        \sigma_{\min} = \frac{\sigma_0}{a^S\, b^{U/d}},

    where U counts the coordinates all couplings update (:math:`dS/2` for an even S): no
    parameters make the density more concentrated than :math:`\mathcal N(0, \sigma_{\min}^2
    I)`, in peak density or in entropy, over a normal or a mixture base (whose components all
    have spread σ0). Hence

    * ``features == 1`` (no couplings): :math:`\sigma_{\min} = \sigma_0 / 1.001^S \approx
      \sigma_0`: a 1-feature FlowPrior is never narrower than ``base_scale``, for any
      context (its density given c is a Gaussian, or a mixture of Gaussians of one width,
      of spread at least that);
    * ``features ≥ 2`` with the defaults (S = 4, ``"exp"`` couplings):
      :math:`\sigma_{\min} = \sigma_0 / (1.001^4 \cdot 3^2) \approx 0.028` for
      σ0 = 0.25.

    Data narrower than that are underfit, silently. The remedies: ``actnorm_scale="exp"`` (or
    ``"softplus"``), whose ActNorms reach a = 3 (:math:`\sigma_{\min} = \sigma_0 / 3^S` for
    one feature); or standardise the data and choose ``base_scale`` near their spread
    (σ0 = 1 for standardised data). The default stays ``"sigmoid"``: the LNFMM bridge relies
    on it, and its quality numbers were measured with it.

    Args:
        features: dimensions of the modelled code.
        context_features: dimensions of the context (0: unconditional).
        steps: number of steps (16 in the original).
        hidden_features: width of every MLP: the couplings', the ActNorms' and a conditional
            mixture base's.
        base_scale: :math:`\sigma_0` of the base normal (0.25 in the original).
        scale: name of the couplings' scale activation (a str, :mod:`flowbridge.flows.nn`;
            σ0 is ``base_scale``): ``"exp"`` (the default) or ``"softplus"``, both in
            [1e-3, 3], or the original's ``"sigmoid"`` (at most ~1, so the couplings can only
            contract towards the base). The default is measured, not inherited: on a
            conditional 8-d density with spreads both below and above :math:`\sigma_0`,
            held-out NLL after 1000 Adam steps was -2.64 ± 0.07 nats with ``"exp"``,
            -2.65 ± 0.06 with ``"softplus"`` and -1.18 ± 0.29 with ``"sigmoid"`` (seeds 0-9;
            the best possible is -3.40; ``benchmarks/README.md``).
            ``"exp"`` fits as well as ``"softplus"`` for fewer and cheaper kernels.
        actnorm_scale: name of the ActNorm layers' scale activation (the original's
            ``"sigmoid"``, which can only widen the density: see "How narrow it can get"
            above; ``"exp"`` lets the flow fit data narrower than ``base_scale``).
        hidden_layers: hidden layers of every MLP, a mixture base's included (1 in the
            original).
        actnorm: whether each step starts with a :class:`ConditionalActNorm`.
        components: Gaussians in the base (1: LNFMM's single normal).
    """

    def __init__(
        self,
        features: int,
        context_features: int = 0,
        steps: int = 4,
        hidden_features: int = 128,
        base_scale: float = 0.25,
        scale: str = "exp",
        actnorm_scale: str = "sigmoid",
        hidden_layers: int = 1,
        actnorm: bool = True,
        components: int = 1,
    ):
        super().__init__(check_positive_int(features, "features"), context_features)
        self.steps = check_positive_int(steps, "steps")
        # Checked before any layer is built, so a bad σ0 fails fast, under its own name.
        base_scale = check_positive_number(base_scale, "base_scale")
        # Checked here because a 1-feature flow builds no coupling to check them.
        scale_activation(scale)
        scale_activation(actnorm_scale)
        if features == 1 and not actnorm:
            raise ValueError(
                "a 1-feature FlowPrior has no coupling (nothing to split), so actnorm=False "
                "would leave it without layers; use actnorm=True or StandardNormalPrior"
            )
        mlp = dict(hidden_features=hidden_features, hidden_layers=hidden_layers)
        layers: list[FlowTransform] = []
        for step in range(steps):
            if actnorm:
                layers.append(
                    ConditionalActNorm(features, context_features, scale=actnorm_scale, **mlp)
                )
            if features > 1:
                flip = step % 2 == 1  # in place of the original's swap of halves
                layers.append(
                    AffineCoupling(features, context_features, flip=flip, scale=scale, **mlp)
                )
        self.transform = Chain(layers)
        # Built after the layers: a mixture's anchors do not change their initialisation.
        if check_positive_int(components, "components") == 1:
            self.base = NormalBase(base_scale, features)
        else:
            self.base = GaussianMixtureBase(
                features, context_features, components, base_scale, **mlp
            )

    @property
    def base_scale(self) -> float:
        """σ0, held by the base."""
        return self.base.scale

    @property
    def mixture(self) -> bool:
        """Whether the base is a Gaussian mixture (``components > 1``)."""
        return isinstance(self.base, GaussianMixtureBase)

    def _log_prob(self, inputs, context):
        # Validated by log_prob already: the chain is called without checking them again.
        noise, logabsdet = self.transform._forward(inputs, context)
        return self.base._log_prob(noise, context) + logabsdet

    def _sample_flat(self, noise, context, temperature, generator, component_temperature=None):
        noise = self.base._sample(noise, context, temperature, generator, component_temperature)
        samples, logabsdet = self.transform._inverse(noise, context)
        return samples, self.base._log_prob(noise, context) - logabsdet

    def _sample_only(self, noise, context, temperature, generator, component_temperature=None):
        # No base density and no log-determinants: sample() discards the log-density.
        noise = self.base._sample(noise, context, temperature, generator, component_temperature)
        return self.transform._invert(noise, context)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, steps={self.steps}, base_scale={self.base_scale}"


class ConditionalResidualPrior(FlowPrior):
    r"""LNFMM's conditional residual prior :math:`p(r \mid c)`: a :class:`FlowPrior` that
    requires a context (the shared code expressed in the residual's own domain).

    Example:
        >>> import torch
        >>> prior = ConditionalResidualPrior(features=4, context_features=3, steps=2)
        >>> context = torch.randn(5, 3)
        >>> prior.sample(10, context).shape
        torch.Size([5, 10, 4])
        >>> prior.log_prob(torch.randn(5, 4), context).shape
        torch.Size([5])
    """

    def __init__(self, features: int, context_features: int, **kwargs):
        super().__init__(
            features, check_positive_int(context_features, "context_features"), **kwargs
        )


class ConditionalGaussianPrior(Prior):
    r"""A conditional diagonal Gaussian :math:`\mathcal N(\mu(c), \mathrm{diag}\,\sigma(c)^2)`.

    The CVAE-style baseline: an MLP of the context gives the mean and log-standard-deviation
    (bounded to [-7, 2] so a bad step cannot produce a degenerate density). At initialisation
    (the MLP's output layer is zero) it is :math:`\mathcal N(0, \sigma_0^2 I)` for every
    context. The default flow prior does not start there: its sigmoid ActNorms start at
    scale 0.882 each, so it starts at :math:`\mathcal N(0, (\sigma_0 / 0.882^S)^2 I)`, about
    :math:`\mathcal N(0, 0.41^2 I)` with its 4 steps and σ0 = 0.25. A flow prior with
    ``actnorm=False`` or ``actnorm_scale="exp"`` starts at :math:`\mathcal N(0, \sigma_0^2
    I)`, as this one does (mind the difference when comparing the two at step 0, for a KL
    warm-up say).
    """

    def __init__(
        self,
        features: int,
        context_features: int,
        hidden_features: int = 128,
        base_scale: float = 0.25,
    ):
        super().__init__(
            check_positive_int(features, "features"),
            check_positive_int(context_features, "context_features"),
        )
        self.base_scale = check_positive_number(base_scale, "base_scale")
        self.net = MLP(context_features, 2 * features, hidden_features)

    def _params(self, context):
        mean, raw = self.net(context).chunk(2, dim=1)
        return mean, (raw + math.log(self.base_scale)).clamp(-7.0, 2.0)

    def _log_prob(self, inputs, context):
        mean, log_std = self._params(context)
        return normal_log_prob(inputs, mean, log_std)

    def _sample_flat(self, noise, context, temperature, generator):
        mean, log_std = self._params(context)
        samples = mean + temperature * log_std.exp() * noise
        return samples, normal_log_prob(samples, mean, log_std)


class StandardNormalPrior(Prior):
    r"""The unconditional :math:`\mathcal N(0, \sigma^2 I)` (``scale`` = σ, default 1: a standard
    deviation, not the name of a scale activation as the flow layers' ``scale`` is)."""

    def __init__(self, features: int, scale: float = 1.0):
        super().__init__(check_positive_int(features, "features"), 0)
        self.scale = check_positive_number(scale, "scale")

    def _log_prob(self, inputs, context):
        return isotropic_normal_log_prob(inputs, self.scale)

    def _sample_flat(self, noise, context, temperature, generator):
        samples = noise * (self.scale * temperature)
        return samples, isotropic_normal_log_prob(samples, self.scale)


class NoResidualPrior(Prior):
    """The prior of a zero-dimensional residual: a deterministic mapping (log-density 0)."""

    def __init__(self, features: int = 0):
        if features != 0:
            raise ValueError(f"NoResidualPrior models a 0-dim residual, got features={features}")
        super().__init__(0, 0)

    def _log_prob(self, inputs, context):
        return inputs.new_zeros(inputs.shape[0])

    def _sample_flat(self, noise, context, temperature, generator):
        return noise, noise.new_zeros(noise.shape[0])


class UniformPrior(Prior):
    r"""LNFMM's improper "uniform prior" on the shared space: log-density 0 everywhere.

    It adds nothing to the loss by itself; what remains of :math:`-\log p(s_A)` is the
    shared map's volume term :math:`-\log|\det J_f(s_A)|`. It cannot be sampled: joint
    generation needs the ``"gaussian"`` or ``"flow"`` shared prior.
    """

    proper = False

    def __init__(self, features: int):
        super().__init__(check_positive_int(features, "features"), 0)

    def _log_prob(self, inputs, context):
        return inputs.new_zeros(inputs.shape[0])

    def _sample_flat(self, noise, context, temperature, generator):
        raise NotImplementedError(
            "the uniform shared prior is improper and cannot be sampled; "
            "use shared_prior = 'gaussian' or 'flow' for joint sampling"
        )


RESIDUAL_PRIORS = ("flow", "gaussian", "standard", "none")
SHARED_PRIORS = ("uniform", "gaussian", "flow")
#: The options of :func:`build_residual_prior` each kind uses. The others must keep their
#: defaults: a value the kind would ignore is refused, not dropped in silence. (A caller that
#: holds every option for any kind, as the bridge's config does, passes these alone.)
RESIDUAL_PRIOR_OPTIONS: dict[str, tuple[str, ...]] = {
    "flow": ("steps", "hidden_features", "base_scale", "scale", "components"),
    "gaussian": ("hidden_features", "base_scale"),
    "standard": (),
    "none": (),
}


def build_residual_prior(
    kind: str,
    features: int,
    context_features: int,
    *,
    steps: int = 4,
    hidden_features: int = 128,
    base_scale: float = 0.25,
    scale: str = "exp",
    components: int = 1,
) -> Prior:
    """Build a residual prior :math:`p(r \\mid c)` by name (see :data:`RESIDUAL_PRIORS`).

    ``features == 0`` always gives :class:`NoResidualPrior`, and ``kind="none"`` requires it.
    Each kind uses some of the options (:data:`RESIDUAL_PRIOR_OPTIONS`): ``"flow"`` all of
    them, ``"gaussian"`` ``hidden_features`` and ``base_scale``, ``"standard"`` (N(0, I))
    and ``"none"`` none. An option the kind does not use must keep its default; another
    value is an error, as it would have no effect (``components > 1``, a mixture base, is
    for the ``"flow"`` prior only). ``scale`` names the ``"flow"`` prior's coupling scale
    activation (:mod:`flowbridge.flows.nn`); σ0 is ``base_scale``.
    """
    if kind not in RESIDUAL_PRIORS:
        raise ValueError(f"unknown residual prior {kind!r}; choose one of {RESIDUAL_PRIORS}")
    given = dict(
        steps=steps,
        hidden_features=hidden_features,
        base_scale=base_scale,
        scale=scale,
        components=components,
    )
    for option, value in given.items():
        default = build_residual_prior.__kwdefaults__[option]
        if option not in RESIDUAL_PRIOR_OPTIONS[kind] and value != default:
            users = [other for other, used in RESIDUAL_PRIOR_OPTIONS.items() if option in used]
            raise ValueError(
                f"the {kind!r} residual prior does not use {option} (got {value!r}); leave it "
                f"at its default ({default!r}), or choose a kind that uses it: "
                f"{' or '.join(map(repr, users))}"
            )
    if kind == "none" or features == 0:
        if features != 0:
            raise ValueError(
                f"residual prior 'none' means a 0-dim residual, but residual features = {features}"
            )
        return NoResidualPrior()
    if kind == "flow":
        return ConditionalResidualPrior(
            features,
            context_features,
            steps=steps,
            hidden_features=hidden_features,
            base_scale=base_scale,
            scale=scale,
            components=components,
        )
    if kind == "gaussian":
        return ConditionalGaussianPrior(features, context_features, hidden_features, base_scale)
    return StandardNormalPrior(features)


def build_shared_prior(
    kind: str,
    features: int,
    *,
    steps: int = 4,
    hidden_features: int = 128,
    scale: str = "exp",
) -> Prior:
    """Build a prior on the shared space by name (see :data:`SHARED_PRIORS`).

    ``steps``, ``hidden_features`` and ``scale`` (the name of the couplings' scale activation,
    :mod:`flowbridge.flows.nn`) configure the ``"flow"`` prior, whose base is N(0, I); the
    other kinds ignore them.
    """
    if kind not in SHARED_PRIORS:
        raise ValueError(f"unknown shared prior {kind!r}; choose one of {SHARED_PRIORS}")
    if kind == "uniform":
        return UniformPrior(features)
    if kind == "gaussian":
        return StandardNormalPrior(features)
    return FlowPrior(
        features, 0, steps=steps, hidden_features=hidden_features, base_scale=1.0, scale=scale
    )

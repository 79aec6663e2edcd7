"""Flow building blocks of LNFMM on nflows: the shared bijection f, conditional ActNorm,
conditional residual priors (over one Gaussian or a mixture), shared-space priors and the
baseline priors.

**Two meanings of** ``scale``. In the flow layers and their builders (:class:`AffineCoupling`,
:class:`ConditionalActNorm`, :class:`SharedBijection`, :class:`FlowPrior`'s ``scale`` and
``actnorm_scale``, :func:`build_residual_prior`, :func:`build_shared_prior`) ``scale`` is the
*name of a scale activation*, a str from :data:`SCALE_ACTIVATIONS` (``"exp"``, ``"softplus"``
or ``"sigmoid"``; formulas in :mod:`flowbridge.flows.nn`); ``BridgeConfig.coupling_scale``
sets it for the bridge's priors (its shared map's affine couplings keep their default,
``"sigmoid"``, as in the original). In the densities (:class:`NormalBase`,
:class:`GaussianMixtureBase`, :class:`StandardNormalPrior`) ``scale`` is a *standard
deviation* σ, a number; a flow prior takes that one as ``base_scale`` and reads it back as
:attr:`FlowPrior.base_scale`.
"""

from .base import Chain, FlowTransform
from .bijection import SHARED_COUPLINGS, SharedBijection
from .coupling import AdditiveCoupling, AffineCoupling
from .densities import GaussianMixtureBase, NormalBase, draw_device
from .elementwise import ConditionalActNorm, GlobalScale
from .nn import MLP, SCALE_ACTIVATIONS
from .priors import (
    RESIDUAL_PRIOR_OPTIONS,
    RESIDUAL_PRIORS,
    SHARED_PRIORS,
    ConditionalGaussianPrior,
    ConditionalResidualPrior,
    FlowPrior,
    NoResidualPrior,
    Prior,
    StandardNormalPrior,
    UniformPrior,
    build_residual_prior,
    build_shared_prior,
)

__all__ = [
    "AdditiveCoupling",
    "AffineCoupling",
    "Chain",
    "ConditionalActNorm",
    "ConditionalGaussianPrior",
    "ConditionalResidualPrior",
    "FlowPrior",
    "FlowTransform",
    "GaussianMixtureBase",
    "GlobalScale",
    "MLP",
    "NoResidualPrior",
    "NormalBase",
    "Prior",
    "RESIDUAL_PRIORS",
    "RESIDUAL_PRIOR_OPTIONS",
    "SCALE_ACTIVATIONS",
    "SHARED_COUPLINGS",
    "SHARED_PRIORS",
    "SharedBijection",
    "StandardNormalPrior",
    "UniformPrior",
    "build_residual_prior",
    "build_shared_prior",
    "draw_device",
]

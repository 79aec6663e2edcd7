"""Flow building blocks of LNFMM on nflows: the shared bijection f, conditional ActNorm,
conditional residual priors (over one Gaussian or a mixture), shared-space priors and the
baseline priors."""

from .base import Chain, FlowTransform
from .bijection import SharedBijection
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
    "SHARED_PRIORS",
    "SharedBijection",
    "StandardNormalPrior",
    "UniformPrior",
    "build_residual_prior",
    "build_shared_prior",
    "draw_device",
]

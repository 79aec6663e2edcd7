"""flowbridge: latent normalizing flows for many-to-many cross-domain mappings (LNFMM)."""

from . import flows
from .bridge import Bridge
from .config import BridgeConfig, ConfigError, LossWeights
from .domain import Domain, EncoderOutput, LatentSpec, PairedDataset, PairedSplit
from .hookspecs import hookimpl
from .plugins import PluginError

__version__ = "0.1.0"

__all__ = [
    "Bridge",
    "BridgeConfig",
    "ConfigError",
    "LossWeights",
    "Domain",
    "EncoderOutput",
    "LatentSpec",
    "PairedDataset",
    "PairedSplit",
    "PluginError",
    "flows",
    "hookimpl",
    "__version__",
]

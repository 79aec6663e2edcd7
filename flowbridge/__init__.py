"""flowbridge: latent normalizing flows for many-to-many cross-domain mappings (LNFMM)."""

from . import adversarial, flows
from .bridge import Bridge
from .checkpoint import CheckpointError, load_bridge, save_bridge
from .config import BridgeConfig, ConfigError, LossWeights, RunConfig, load_run_config
from .domain import Domain, EncoderOutput, LatentSpec, PairedDataset, PairedSplit
from .hookspecs import hookimpl
from .plugins import PluginError
from .training import NonFiniteLossError, Trainer, TrainingInterrupted, train

__version__ = "0.1.0"

__all__ = [
    "Bridge",
    "BridgeConfig",
    "CheckpointError",
    "ConfigError",
    "LossWeights",
    "Domain",
    "EncoderOutput",
    "LatentSpec",
    "NonFiniteLossError",
    "PairedDataset",
    "PairedSplit",
    "PluginError",
    "RunConfig",
    "Trainer",
    "TrainingInterrupted",
    "adversarial",
    "flows",
    "hookimpl",
    "load_bridge",
    "load_run_config",
    "save_bridge",
    "train",
    "__version__",
]

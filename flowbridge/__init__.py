"""flowbridge: latent normalizing flows for many-to-many cross-domain mappings (LNFMM).

The public names below are imported on first use (:mod:`flowbridge._lazy`): ``import
flowbridge`` does not import torch, so the command line answers ``--help`` and Ctrl-C at once.
"""

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    ".adversarial": ("adversarial",),
    ".flows": ("flows",),
    ".bridge": ("Bridge",),
    ".checkpoint": ("CheckpointError", "load_bridge", "save_bridge"),
    ".config": ("BridgeConfig", "ConfigError", "LossWeights", "RunConfig", "load_run_config"),
    ".domain": ("Domain", "EncoderOutput", "LatentSpec", "PairedDataset", "PairedSplit"),
    ".hookspecs": ("hookimpl",),
    ".plugins": ("PluginError",),
    ".training": (
        "Callback",
        "NonFiniteLossError",
        "Trainer",
        "TrainingInterrupted",
        "TrainResult",
        "train",
    ),
}

if TYPE_CHECKING:
    from . import adversarial, flows
    from .bridge import Bridge
    from .checkpoint import CheckpointError, load_bridge, save_bridge
    from .config import BridgeConfig, ConfigError, LossWeights, RunConfig, load_run_config
    from .domain import Domain, EncoderOutput, LatentSpec, PairedDataset, PairedSplit
    from .hookspecs import hookimpl
    from .plugins import PluginError
    from .training import (
        Callback,
        NonFiniteLossError,
        Trainer,
        TrainingInterrupted,
        TrainResult,
        train,
    )

__all__ = [
    "Bridge",
    "BridgeConfig",
    "Callback",
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
    "TrainResult",
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

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

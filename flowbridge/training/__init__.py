"""Training: the run loop, its data handling, checkpoints and resume (see :mod:`.loop`)."""

from .data import BatchSampler, Partition, Stream, derive_seed, load_splits, partition
from .loop import Callback, NonFiniteLossError, Trainer, TrainResult, train

__all__ = [
    "BatchSampler",
    "Callback",
    "NonFiniteLossError",
    "Partition",
    "Stream",
    "TrainResult",
    "Trainer",
    "derive_seed",
    "load_splits",
    "partition",
    "train",
]

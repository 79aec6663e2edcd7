"""Training: the run loop (:mod:`.loop`), its data (:mod:`.data`), resume (:mod:`.resume`), the
run directory (:mod:`.rundir`, :mod:`.runlog`), stopping on signals and the weight average."""

from .averaging import WeightAverage
from .data import BatchSampler, Partition, Stream, derive_seed, load_splits, partition
from .loop import Callback, NonFiniteLossError, Trainer, TrainResult, train
from .stopping import TrainingInterrupted

__all__ = [
    "BatchSampler",
    "Callback",
    "NonFiniteLossError",
    "Partition",
    "Stream",
    "TrainResult",
    "Trainer",
    "TrainingInterrupted",
    "WeightAverage",
    "derive_seed",
    "load_splits",
    "partition",
    "train",
]

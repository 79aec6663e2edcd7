"""Training data: splits from the registry or memory, the paired/unpaired partition, batches.

Every random choice comes from a ``torch.Generator`` whose state is checkpointed, so a
resumed run draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..config import ConfigError, DataConfig
from ..domain import Domain, PairedSplit
from ..plugins import get_dataset

__all__ = [
    "derive_seed",
    "load_splits",
    "Partition",
    "partition",
    "Stream",
    "BatchSampler",
]


def derive_seed(seed: int, *keys: object) -> int:
    """An independent 63-bit seed for each purpose (``derive_seed(seed, "batches")``), so that
    changing how one stream of randomness is used leaves the others alone."""
    digest = hashlib.sha256(repr((seed, *keys)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _oriented(split: PairedSplit, flip: bool) -> PairedSplit:
    if not flip:
        return split
    return PairedSplit(split.b, split.a, split.meta, split.unpaired_b, split.unpaired_a)


def load_splits(
    config: DataConfig,
    names: tuple[str, str],
    train: PairedSplit | None = None,
    val: PairedSplit | None = None,
) -> tuple[PairedSplit, PairedSplit | None]:
    """The training split and the validation split (or ``None``), with ``a`` items belonging
    to domain ``names[0]``.

    In-memory splits win over the configured dataset; a dataset whose domains are listed the
    other way round (``("image", "text")`` for a = text) is flipped.
    """
    if train is not None:
        return train, val
    if not config.dataset:
        raise ConfigError(
            "no training data: set [data] dataset = NAME (flowbridge plugins lists the "
            "registered datasets) or pass train_data=PairedSplit(...) to the trainer"
        )
    dataset = get_dataset(config.dataset, **config.options)
    pair = tuple(dataset.domains)
    if pair not in (names, names[::-1]):
        raise ConfigError(
            f"dataset {config.dataset!r} pairs domains {pair}, but the config's domains are "
            f"a = {names[0]!r}, b = {names[1]!r}; set [domains.a] and [domains.b] to these two"
        )
    flip = pair != names
    for split_name in (config.train_split, config.val_split):
        if split_name and split_name not in dataset.splits:
            raise ConfigError(
                f"dataset {config.dataset!r} has no split {split_name!r}; its splits are "
                f"{dataset.splits} (set data.train_split / data.val_split, '' for no validation)"
            )
    train = _oriented(dataset.split(config.train_split), flip)
    val = _oriented(dataset.split(config.val_split), flip) if config.val_split else None
    return train, val


@dataclass
class Partition:
    """Training items after :func:`partition`: pairs, and items with no partner."""

    a: list
    b: list
    unpaired_a: list
    unpaired_b: list


def partition(split: PairedSplit, paired_fraction: float, seed: int) -> Partition:
    """Keep a random ``paired_fraction`` of the pairs (at least one); the others lose their
    link, each side joining the split's own unpaired items of its domain."""
    n = len(split)
    if n == 0:
        raise ValueError("the training split has no pairs; the shared map learns from pairs")
    keep = max(1, round(paired_fraction * n))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    kept, freed = sorted(order[:keep]), sorted(order[keep:])
    return Partition(
        a=[split.a[i] for i in kept],
        b=[split.b[i] for i in kept],
        unpaired_a=[split.a[i] for i in freed] + list(split.unpaired_a),
        unpaired_b=[split.b[i] for i in freed] + list(split.unpaired_b),
    )


class Stream:
    """The items of one domain, collated once up front or batch by batch.

    Args:
        domain: collates the items.
        items: the items.
        upfront: collate everything now (batches are then index lookups).
    """

    def __init__(self, domain: Domain, items: Sequence[Any], upfront: bool = True):
        self.domain = domain
        self.size = len(items)
        self._items = list(items)
        self._collated = self._collate(self._items) if upfront and self.size else None

    def _collate(self, items: list) -> torch.Tensor:
        batch = self.domain.collate(items)
        if not isinstance(batch, torch.Tensor) or batch.shape[:1] != (len(items),):
            shape = list(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
            raise TypeError(
                f"domain {self.domain.name!r}: collate() of {len(items)} items must return a "
                f"tensor whose first dimension is {len(items)}, got {shape}"
            )
        return batch

    def take(self, indices: torch.Tensor) -> torch.Tensor:
        """The batch of the items at ``indices [n]``."""
        if self._collated is not None:
            return self._collated[indices]
        return self._collate([self._items[i] for i in indices.tolist()])


class BatchSampler:
    """Draws batches of indices into ``size`` items: a fresh permutation each epoch, a batch
    running on into the next epoch when the current one ends.

    The generator is shared by all samplers of a run and checkpointed with them.
    """

    def __init__(self, size: int, generator: torch.Generator):
        if size < 1:
            raise ValueError(f"cannot draw batches from {size} items")
        self.size = size
        self.generator = generator
        self.order = torch.empty(0, dtype=torch.long)
        self.cursor = 0

    def next(self, n: int) -> torch.Tensor:
        """Indices ``[n]`` of the next batch."""
        parts = []
        while n > 0:
            if self.cursor == len(self.order):
                self.order = torch.randperm(self.size, generator=self.generator)
                self.cursor = 0
            part = self.order[self.cursor : self.cursor + n]
            self.cursor += len(part)
            n -= len(part)
            parts.append(part)
        return torch.cat(parts)

    def state_dict(self) -> dict[str, Any]:
        return {"order": self.order, "cursor": self.cursor}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        order = state["order"]
        if order.numel() and int(order.max()) >= self.size:
            raise ValueError(
                f"the saved batch order indexes {int(order.max()) + 1} items, the data has "
                f"{self.size}: resume with the data the run started with"
            )
        self.order, self.cursor = order.clone(), int(state["cursor"])

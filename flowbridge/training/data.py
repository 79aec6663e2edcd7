"""Training data: splits from the registry or memory, the paired/unpaired partition, batches.

Every random choice comes from a ``torch.Generator`` whose state is checkpointed, so a
resumed run draws exactly the batches the uninterrupted run would have drawn.

An item that a domain refuses (its ``fit`` or ``collate`` raises ``TypeError`` or
``ValueError``) is reported as the same kind of error, prefixed with where the item is in
the user's split, e.g. ``train_data.unpaired_b[1]``: the partition mixes and reorders the
split's lists, so the domain's own index would point elsewhere.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import torch

from .._warnings import warn
from ..checks import add_note, noted
from ..config import ConfigError, DataConfig
from ..domain import Domain, PairedSplit
from ..plugins import PluginError, UnknownNameError, get_dataset

__all__ = [
    "derive_seed",
    "load_splits",
    "Partition",
    "partition",
    "fit_domain",
    "spot_indices",
    "Stream",
    "UPFRONT_WARNING_BYTES",
    "paired_streams",
    "BatchSampler",
    "validation_split_note",
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
    domains: tuple[Domain, Domain],
    train: PairedSplit | None = None,
    val: PairedSplit | None = None,
) -> tuple[PairedSplit, PairedSplit | None]:
    """The training split and the validation split (or ``None``), with ``a`` items belonging
    to ``domains[0]``.

    In-memory splits win over the configured dataset (``val`` only together with ``train``);
    a dataset whose domains are listed the other way round (``("image", "text")`` for
    a = text) is flipped. A configured dataset checks the domains
    (:meth:`PairedDataset.check_domains`) before it reads a split.
    """
    names = (domains[0].name, domains[1].name)
    if train is not None:
        return train, val
    if val is not None:
        raise ValueError(
            "val_data was given without train_data: in-memory validation pairs go with "
            "in-memory training pairs; pass train_data too, or set data.val_split to validate "
            "on a split of the configured dataset"
        )
    if not config.dataset:
        raise ConfigError(
            "no training data: set [data] dataset = NAME (flowbridge plugins lists the "
            "registered datasets) or pass train_data=PairedSplit(...) to the trainer"
        )
    try:
        dataset = get_dataset(config.dataset, **config.options)
    except (TypeError, ValueError) as exc:
        # The constructor's own refusal ("train_size must be an int") names no table.
        if not isinstance(exc, (UnknownNameError, ConfigError)):
            add_note(exc, f"(data.options of dataset {config.dataset!r})")
        raise
    pair = tuple(dataset.domains)
    if pair not in (names, names[::-1]):
        raise ConfigError(
            f"dataset {config.dataset!r} pairs domains {pair}, but the config's domains are "
            f"a = {names[0]!r}, b = {names[1]!r}; set [domains.a] and [domains.b] to these two"
        )
    flip = pair != names
    dataset.check_domains(*(domains[::-1] if flip else domains))
    for split_name in (config.train_split, config.val_split):
        if split_name and split_name not in dataset.splits:
            raise ConfigError(
                f"dataset {config.dataset!r} has no split {split_name!r}; its splits are "
                f"{dataset.splits} (set data.train_split / data.val_split, '' for no validation)"
            )

    def split(name: str) -> PairedSplit:
        got = dataset.split(name)
        if not isinstance(got, PairedSplit):
            raise PluginError(
                f"dataset {config.dataset!r} ({type(dataset).__qualname__}).split({name!r}) "
                f"must return a flowbridge.PairedSplit, got {type(got).__name__}"
            )
        return _oriented(got, flip)

    train = split(config.train_split)
    if not config.val_split:
        return train, None
    # Data with no validation split of their own (a folder of pairs) fail here, after the
    # training split loaded: say how to train without one.
    with noted(lambda: validation_split_note(config.val_split)):
        return train, split(config.val_split)


def validation_split_note(name: str) -> str:
    """The note on an error reading validation split ``name``: how to train without one."""
    return (
        f"(reading the validation split, data.val_split = {name!r}; if the data have no "
        f'validation split, data.val_split = "" trains without one)'
    )


@dataclass
class Partition:
    """Training items after :func:`partition`: pairs, and items with no partner.

    ``kept`` and ``freed`` are the split's pair indices behind ``a``/``b`` and behind the
    first ``len(freed)`` items of ``unpaired_a``/``unpaired_b`` (the split's own unpaired
    items follow them).
    """

    a: list
    b: list
    unpaired_a: list
    unpaired_b: list
    kept: list[int]
    freed: list[int]

    def origin(self, field: str, i: int) -> tuple[str, int]:
        """The split's list and index that ``getattr(self, field)[i]`` came from, e.g.
        ``("a", 37)`` or ``("unpaired_b", 1)``."""
        if field in ("a", "b"):
            return field, self.kept[i]
        if i < len(self.freed):
            return field.removeprefix("unpaired_"), self.freed[i]
        return field, i - len(self.freed)


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
        kept=kept,
        freed=freed,
    )


def _in_context(exc: Exception, where: str, hint: str = "") -> TypeError | ValueError:
    """A domain's ``exc`` as the same kind of error, saying ``where`` it arose."""
    kind = TypeError if isinstance(exc, TypeError) else ValueError
    return kind(f"{where}: {exc}{hint}")


def fit_domain(
    domain: Domain,
    items: Partition,
    split: PairedSplit,
    side: str,
    source: str,
    other_domain: str,
) -> None:
    """Fit ``domain`` on the training items of ``side`` (``"a"`` or ``"b"``), paired and
    unpaired alike.

    If the domain refuses them, each of ``split``'s lists of that side is fitted alone, and
    the first one that fails gives the error, named (``source`` is the split's name, e.g.
    ``"train_data"``), with the first item of a type the domain refuses:
    ``train_data.unpaired_b[1] (items for domain 'text'): text items must be str, got Tensor
    at index 1``, the domain's own index now being the one in that list. If the
    domain would take the other side's pairs instead, and that side has another domain
    (``other_domain``), the error asks whether ``a`` and ``b`` are swapped.
    """
    try:
        domain.fit(getattr(items, side) + getattr(items, f"unpaired_{side}"))
    except (TypeError, ValueError) as exc:
        _raise_fit_error(domain, split, side, source, other_domain, exc)


def _raise_fit_error(
    domain: Domain,
    split: PairedSplit,
    side: str,
    source: str,
    other_domain: str,
    exc: Exception,
) -> NoReturn:
    for field in (side, f"unpaired_{side}"):
        alone = _fit_error(domain, getattr(split, field))
        if alone is None:
            continue
        other, hint = "b" if side == "a" else "a", ""
        if (
            field == side
            and other_domain != domain.name
            and _fit_error(domain, getattr(split, other)) is None
        ):
            hint = f" ({source}.{other} would suit domain {domain.name!r}: are a and b swapped?)"
        index = (
            _first_refused(domain, getattr(split, field)) if isinstance(alone, TypeError) else None
        )
        at = "" if index is None else f"[{index}]"
        where = f"{source}.{field}{at} (items for domain {domain.name!r})"
        raise _in_context(alone, where, hint) from alone
    where = f"{source}.{side} and {source}.unpaired_{side} together (domain {domain.name!r})"
    raise _in_context(exc, where) from exc


def _first_refused(domain: Domain, items: Sequence[Any]) -> int | None:
    """The index of the first item whose type ``domain.fit`` refuses on its own (``None``:
    none is refused alone). Only for a ``TypeError``: an item of the wrong type fails alone as
    it fails in the list, whereas a ``ValueError`` may be about the list as a whole (too few
    words to build a vocabulary) and would blame its first item."""
    return next(
        (i for i, item in enumerate(items) if isinstance(_fit_error(domain, [item]), TypeError)),
        None,
    )


def _fit_error(domain: Domain, items: Sequence[Any]) -> TypeError | ValueError | None:
    """What ``domain.fit`` raises on ``items`` alone (``None``: it takes them, or they are
    none)."""
    if not len(items):
        return None
    try:
        domain.fit(list(items))
    except (TypeError, ValueError) as exc:
        return exc
    return None


def spot_indices(size: int, spots: int) -> torch.Tensor:
    """Up to ``spots`` evenly spaced indices into ``size`` items, first and last included (all
    of them when there are no more than ``spots``)."""
    return torch.linspace(0, size - 1, min(spots, size)).round().long().unique()


def paired_streams(
    make: Callable[[Domain, str], Stream],
    domains: tuple[Domain, Domain],
    items: Partition,
    source: str,
) -> tuple[Stream, Stream]:
    """The paired streams ``make(domains[0], "a")`` and ``make(domains[1], "b")``.

    Where one fails to collate and each side's first pair would collate in the other side's
    domain (of another name), the error asks whether ``a`` and ``b`` are swapped, as
    :func:`fit_domain`'s does for a domain that is fitted.
    """
    try:
        return make(domains[0], "a"), make(domains[1], "b")
    except (TypeError, ValueError) as exc:
        a, b = domains
        if a.name == b.name or not (_collates(a, items.b[:1]) and _collates(b, items.a[:1])):
            raise
        hint = (
            f" ({source}.b would suit domain {a.name!r} and {source}.a domain {b.name!r}: are "
            f"a and b swapped?)"
        )
        raise type(exc)(f"{exc}{hint}") from exc


def _collates(domain: Domain, items: Sequence[Any]) -> bool:
    try:
        domain.collate(list(items))
    except (TypeError, ValueError):
        return False
    return True


#: Collating more than this many bytes of items up front warns first (:class:`Stream`).
UPFRONT_WARNING_BYTES = 2 * 1024**3


class Stream:
    """The items of one domain, collated once up front or batch by batch.

    An item the domain refuses (``TypeError``, ``ValueError``) is found by collating the
    items on their own, and the error names it: ``train_data.a[37] (domain 'image',
    collated on its own): item 0 must have shape ...``.

    Args:
        domain: collates the items.
        items: the items.
        upfront: collate everything now (batches are then index lookups).
        name: the name of ``items[i]`` in errors, e.g. ``"train_data.a[37]"`` (default:
            ``"item i"``).
    """

    def __init__(
        self,
        domain: Domain,
        items: Sequence[Any],
        upfront: bool = True,
        name: Callable[[int], str] | None = None,
    ):
        self.domain = domain
        self.size = len(items)
        self._items = list(items)
        self._name = name or (lambda i: f"item {i}")
        self._collated = None
        if upfront and self.size:
            self._warn_if_large()
            self._collated = self._collate(range(self.size))

    def _warn_if_large(self) -> None:
        """Warn before collating every item at once where that would take more than
        :data:`UPFRONT_WARNING_BYTES`, judged by the first item collated alone: collated
        pixels are 4-byte floats, so 113k COCO images of 64 px with 5 captions each (a 1.4 GB
        uint8 cache) would be 28 GB, and the process is killed for its memory before a
        message could say why."""
        try:
            one = self.domain.collate([self._items[0]])
        except (TypeError, ValueError):
            return  # the collation itself names the item
        if not isinstance(one, torch.Tensor):
            return
        total = one.element_size() * one.numel() * self.size
        if total > UPFRONT_WARNING_BYTES:
            warn(
                f"collating the {self.size} items of domain {self.domain.name!r} up front "
                f"takes at least {total / 1e9:.1f} GB of memory; train.collate_upfront = false "
                f"collates each batch from the items instead",
            )

    def _collate(self, positions: Sequence[int]) -> torch.Tensor:
        items = [self._items[i] for i in positions]
        try:
            batch = self.domain.collate(items)
        except (TypeError, ValueError) as exc:
            self._raise_named(positions, exc)
        if not isinstance(batch, torch.Tensor) or batch.shape[:1] != (len(items),):
            shape = list(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__
            raise TypeError(
                f"domain {self.domain.name!r}: collate() of {len(items)} items must return a "
                f"tensor whose first dimension is {len(items)}, got {shape}"
            )
        # Data are constants: items computed by a network of the user's (features from a
        # backbone called without no_grad) must neither be backpropagated into nor collect
        # gradients of the bridge's loss.
        return batch.detach()

    def _raise_named(self, positions: Sequence[int], exc: Exception) -> NoReturn:
        """Raise ``exc``, which collating the items at ``positions`` gave, as an error that
        names the first of them the domain refuses on its own (or, if none, the batch)."""
        where = f"domain {self.domain.name!r}"
        for i in positions:
            try:
                self.domain.collate([self._items[i]])
            except (TypeError, ValueError) as alone:
                raise _in_context(
                    alone, f"{self._name(i)} ({where}, collated on its own)"
                ) from alone
        others = f"{self._name(positions[0])} and {len(positions) - 1} other items"
        raise _in_context(exc, f"{others}, collated together ({where})") from exc

    def take(self, indices: torch.Tensor) -> torch.Tensor:
        """The batch of the items at ``indices [n]``."""
        if self._collated is not None:
            return self._collated[indices]
        return self._collate(indices.tolist())

    def fingerprint(self, spots: int = 256) -> dict[str, Any]:
        """The number of items and a SHA-256 of up to ``spots`` of them, evenly spaced, as
        collated (dtype and shape included): what a resumed run checks to be training on the
        data it started with. A spot check, so that a large split costs no more than a batch."""
        if not self.size:
            return {"items": 0, "digest": ""}
        batch = self.take(spot_indices(self.size, spots)).detach().cpu().contiguous()
        digest = hashlib.sha256(f"{batch.dtype} {list(batch.shape)}".encode())
        digest.update(batch.view(-1).view(torch.uint8).numpy().tobytes())
        return {"items": self.size, "digest": digest.hexdigest()}


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

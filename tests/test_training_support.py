"""Shared pieces of the training, checkpoint, CLI and DDP tests (no tests of its own).

A tiny plugin registers two vector domains (``vector``: 4 features, ``other``: 6), a domain
whose loss can be poisoned with NaN, a vector domain that checks its items as real domains do
(``checked-vector``), a vector domain with a discriminator (``critic-vector``,
paired with ``other`` in ``toy-critic-pairs``), a ``words`` domain whose items are strings and whose
vocabulary is fitted on the training items, and two in-memory paired datasets: ``toy-pairs``
(vector, other; both sides share a 2-dimensional cause) and ``toy-words`` (words, vector).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F
from toy_domains import (
    CriticVectorDomain,
    VectorDecoder,
    VectorDomain,
    VectorEncoder,
    make_domain_class,
)

from flowbridge import Domain, hookimpl
from flowbridge.config import load_run_config
from flowbridge.domain import PairedDataset, PairedSplit
from flowbridge.files import suffixed
from flowbridge.plugins import register, unregister

PLUGIN_NAME = "flowbridge-training-tests"
Other = make_domain_class("other")


class Poisonable(VectorDomain):
    """A vector domain whose reconstruction loss turns NaN once ``poisoned`` is set."""

    name = "poisonable"
    poisoned = False

    def reconstruction_loss(self, output, x):
        loss = super().reconstruction_loss(output, x)
        return loss * float("nan") if self.poisoned else loss


class CheckedVector(VectorDomain):
    """A vector domain whose collate refuses items of the wrong shape or with NaN, naming
    each by its index in the list it was given (as the image domain does)."""

    name = "checked-vector"

    def collate(self, items):
        for i, item in enumerate(items):
            if item.shape != (self.features,):
                raise ValueError(
                    f"item {i} must have shape [{self.features}], got {list(item.shape)}"
                )
            if not torch.isfinite(item).all():
                raise ValueError(f"item {i} contains NaN or Inf values")
        return super().collate(items)


class Words(Domain):
    """Single words; the vocabulary is fitted on the training items (sorted, so reproducible)."""

    name = "words"
    default_residual_features = 1

    def __init__(self, hidden: int = 16):
        self.hidden = hidden
        self.options = {"hidden": hidden}
        self.vocabulary: list[str] = []

    def fit(self, items):
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise TypeError(f"words must be str, got {type(item).__name__} at index {i}")
        self.vocabulary = sorted(set(items))

    def state_dict(self):
        return {"vocabulary": list(self.vocabulary)}

    def load_state_dict(self, state):
        self.vocabulary = list(state["vocabulary"])

    def build_encoder(self, spec):
        return VectorEncoder(len(self.vocabulary), spec, self.hidden)

    def build_decoder(self, spec):
        return VectorDecoder(len(self.vocabulary), spec, self.hidden)

    def reconstruction_loss(self, output, x):
        return F.cross_entropy(output, x.argmax(dim=1), reduction="none")

    def generate(self, decoder, shared, residual, **options):
        return [self.vocabulary[i] for i in decoder(shared, residual).argmax(dim=1).tolist()]

    def collate(self, items):
        if not self.vocabulary:
            raise ValueError("the words domain has no vocabulary: fit it first")
        index = torch.tensor([self.vocabulary.index(item) for item in items])
        return F.one_hot(index, len(self.vocabulary)).float()

    def example_batch(self, n, generator):
        index = torch.randint(len(self.vocabulary), (n,), generator=generator)
        return F.one_hot(index, len(self.vocabulary)).float()

    def read_item(self, source):
        if source not in self.vocabulary:
            raise ValueError(f"unknown word {source!r}; known: {self.vocabulary}")
        return source

    def write_items(self, items, path):
        path = suffixed(path, ".md")
        path.write_text("".join(f"- {', '.join(row)}\n" for row in items), encoding="utf-8")
        return path


COLOURS = ("blue", "green", "red")


class WordPairs(PairedDataset):
    """A colour word and a 4-vector: one-hot of the colour (3 dims) plus free noise."""

    name = "toy-words"
    domains = ("words", "vector")

    def __init__(self, size: int = 48):
        self.size = size
        self.options = {"size": size}

    def split(self, name):
        g = torch.Generator().manual_seed({"train": 4, "val": 5, "test": 6}[name])
        n = self.size if name == "train" else 12
        index = torch.randint(3, (n,), generator=g)
        vectors = torch.cat((F.one_hot(index, 3).float(), torch.randn(n, 1, generator=g)), 1)
        return PairedSplit([COLOURS[i] for i in index.tolist()], list(vectors))


@pytest.fixture
def plugin():
    with toy_plugin():
        yield


def toy_split(n: int, seed: int) -> PairedSplit:
    """Pairs of a 4-vector and a 6-vector that share a 2-dimensional cause."""
    g = torch.Generator().manual_seed(seed)
    cause = torch.randn(n, 2, generator=g)
    a = torch.cat((cause, torch.randn(n, 2, generator=g)), dim=1)
    b = torch.cat((cause, cause, 0.1 * torch.randn(n, 2, generator=g)), dim=1)
    return PairedSplit(list(a), list(b), meta=[{"i": i} for i in range(n)])


class ToyPairs(PairedDataset):
    name = "toy-pairs"
    domains = ("vector", "other")

    def __init__(self, size: int = 48, flipped: bool = False):
        self.size, self.flipped = size, flipped
        self.options = {"size": size, "flipped": flipped}
        if flipped:  # the same data with the domains listed the other way round
            self.domains = ("other", "vector")

    def split(self, name):
        seed = {"train": 1, "val": 2, "test": 3}[name]
        split = toy_split(self.size if name == "train" else 16, seed)
        if self.flipped:
            split = PairedSplit(split.b, split.a, split.meta)
        return split

    def check_domains(self, a, b):
        vector, other = (b, a) if self.flipped else (a, b)
        for domain, width in ((vector, 4), (other, 6)):
            if domain.features != width:
                raise ValueError(
                    f"toy-pairs has {domain.name} items of {width} features, but the "
                    f"{domain.name} domain's features is {domain.features}"
                )


class CriticPairs(ToyPairs):
    """``toy-pairs`` with a discriminator on the ``a`` side."""

    name = "toy-critic-pairs"
    domains = ("critic-vector", "other")


class ToyPlugin:
    @hookimpl
    def flowbridge_register_domains(self, register):
        register(VectorDomain)
        register(Other)
        register(Poisonable)
        register(CheckedVector)
        register(Words)
        register(CriticVectorDomain)

    @hookimpl
    def flowbridge_register_datasets(self, register):
        register(ToyPairs)
        register(WordPairs)
        register(CriticPairs)


@contextlib.contextmanager
def toy_plugin():
    """Register the toy plugin for the duration of a ``with`` block."""
    register(ToyPlugin(), name=PLUGIN_NAME)
    try:
        yield
    finally:
        unregister(PLUGIN_NAME)


def toy_settings(out, **train) -> dict:
    """A tiny run on ``toy-pairs`` as the dict a TOML file would give."""
    settings = {
        "data": {"dataset": "toy-pairs"},
        "domains": {"a": {"name": "vector"}, "b": {"name": "other", "options": {"features": 6}}},
        "model": {
            "shared_features": 3,
            "shared_steps": 2,
            "shared_hidden": 16,
            "residual_steps": 2,
            "residual_hidden": 16,
        },
        "train": {
            "steps": 6,
            "batch_size": 8,
            "lr": 3e-3,
            "log_every": 2,
            "out": str(out),
            "progress": False,
            **train,
        },
    }
    return settings


def toy_config(out, **train):
    return load_run_config(toy_settings(out, **train))


def adversarial_settings(out, **train) -> dict:
    """``toy_settings`` with a discriminator on side a and the adversarial term on."""
    settings = toy_settings(out, **train)
    settings["data"]["dataset"] = "toy-critic-pairs"
    settings["domains"]["a"]["name"] = "critic-vector"
    settings["model"].update(adversarial_on="both", weights={"adversarial": 0.5})
    return settings


def parameters(bridge) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in bridge.state_dict().items()}


def run_ranks(worker: Callable[..., None], *args, ranks: int = 2, seconds: float = 120) -> None:
    """Run ``worker(rank, port, *args)`` in ``ranks`` spawned processes, as a data-parallel
    run's ranks (``port``: a free one for their process group); fail the test if they have not
    finished within ``seconds`` (a rank that waits for another forever), or if one failed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.start_processes(
        worker, args=(port, *args), nprocs=ranks, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + seconds
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the data-parallel workers did not finish within {seconds:.0f} s")

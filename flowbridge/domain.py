r"""The contract a domain plugin implements, and the paired-dataset contract.

A *domain* (image, text, audio, ...) tells flowbridge how to turn its data into tensors, how
to encode a batch into a latent split into a **shared** and a **residual** part, how to decode
a latent back, how to score a reconstruction and how to turn decoder outputs into data a
person can look at. The core never imports a domain: it only calls the methods below.

Data flows through four representations:

* **item**: one raw example as a user holds it (a ``str`` caption, an image tensor...);
* **batch** ``x``: the tensor :meth:`Domain.collate` makes from a list of items (first
  dimension = batch);
* **latent**: :class:`EncoderOutput` of the encoder, ``shared [batch, d_s]`` and
  ``residual [batch, d_r]`` (``d_r`` may be 0);
* **decoder output**: whatever :meth:`Domain.reconstruction_loss` and :meth:`Domain.generate`
  understand (logits, pixel means...).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

__all__ = ["LatentSpec", "EncoderOutput", "Domain", "PairedSplit", "PairedDataset"]


@dataclass(frozen=True)
class LatentSpec:
    """Latent sizes a domain's encoder and decoder must use.

    Attributes:
        shared: shared code size ``d_s`` (the same in both domains of a bridge).
        residual: residual size ``d_r`` of this domain (0 for a deterministic domain).
        learned_variance: if true, the encoder also returns a log-variance for the whole
            latent (posterior mode ``"learned"``); otherwise it returns ``None`` there.
    """

    shared: int
    residual: int
    learned_variance: bool = False

    @property
    def total(self) -> int:
        """Latent size ``d_s + d_r``."""
        return self.shared + self.residual

    @property
    def encoder_features(self) -> int:
        """Width of an encoder's flat output that :meth:`EncoderOutput.from_flat` splits:
        ``d_s + d_r``, doubled when the variance is learned (one log-variance per latent
        dimension). Size an encoder's last layer with it."""
        return self.total * (2 if self.learned_variance else 1)


class EncoderOutput(NamedTuple):
    """What an encoder returns: ``shared [batch, d_s]``, ``residual [batch, d_r]`` and
    ``log_var [batch, d_s + d_r]`` (or ``None`` when the posterior variance is fixed)."""

    shared: torch.Tensor
    residual: torch.Tensor
    log_var: torch.Tensor | None = None

    @classmethod
    def from_flat(cls, h: torch.Tensor, spec: LatentSpec) -> EncoderOutput:
        """Split an encoder's flat output ``h [batch, spec.encoder_features]`` in this order:
        ``shared [batch, d_s]``, ``residual [batch, d_r]`` (``d_r`` may be 0), then, when
        ``spec.learned_variance``, ``log_var [batch, d_s + d_r]`` (else ``None``). The parts
        are views of ``h``.

        Raises:
            ValueError: ``h`` is not ``[batch, spec.encoder_features]``.
        """
        if h.ndim != 2 or h.shape[1] != spec.encoder_features:
            raise ValueError(
                f"an encoder's flat output must have shape [batch, {spec.encoder_features}] "
                f"for {spec} (LatentSpec.encoder_features), got {list(h.shape)}"
            )
        log_var = None
        if spec.learned_variance:
            h, log_var = h.chunk(2, dim=1)
        shared, residual = h.split((spec.shared, spec.residual), dim=1)
        return cls(shared, residual, log_var)


class Domain(abc.ABC):
    """Base class of every domain plugin.

    Subclasses set the class attributes and implement the abstract methods:
    :meth:`build_encoder`, :meth:`build_decoder`, :meth:`reconstruction_loss`,
    :meth:`generate`, :meth:`collate`, :meth:`example_batch`, :meth:`read_item` and
    :meth:`write_items`; the others have defaults (no fitting, no state, no critic, a batch
    tensor passes unchecked). A domain instance
    holds its options (``__init__`` keyword arguments, JSON-compatible, saved in checkpoints:
    ``type(domain)(**domain.options)`` must rebuild it) and any state fitted on data (a
    vocabulary), exposed through :meth:`state_dict`. Every ``__init__`` option has a default,
    and a default-constructed domain must pass :func:`flowbridge.testing.check_domain`.

    Class attributes:
        name: registry name, e.g. ``"image"``; lowercase letters, digits, ``_`` and ``-``, not
            starting with ``_`` or ``-``.
        default_residual_features: residual size used when a config does not give one (an
            int >= 0).
    """

    name: ClassVar[str]
    default_residual_features: ClassVar[int] = 8

    def __init__(self, **options: Any):
        if options:
            raise TypeError(f"domain {self.name!r} takes no options, got {sorted(options)}")
        self.options: dict[str, Any] = {}

    # -- model parts ---------------------------------------------------------------------
    @abc.abstractmethod
    def build_encoder(self, spec: LatentSpec) -> nn.Module:
        """A module ``x -> EncoderOutput`` with sizes from ``spec``.

        Most encoders end in one layer of ``spec.encoder_features`` outputs and return
        :meth:`EncoderOutput.from_flat` of it."""

    @abc.abstractmethod
    def build_decoder(self, spec: LatentSpec) -> nn.Module:
        """A module ``(shared, residual, x=None) -> output``.

        ``x`` is the batch being reconstructed, for decoders that need it during training
        (teacher forcing); decoders that do not simply ignore it.
        """

    @abc.abstractmethod
    def reconstruction_loss(self, output: Any, x: torch.Tensor) -> torch.Tensor:
        """Per-sample reconstruction loss ``[batch]`` (a negative log-likelihood, summed over
        the example's elements, e.g. tokens or pixels)."""

    @abc.abstractmethod
    def generate(
        self, decoder: nn.Module, shared: torch.Tensor, residual: torch.Tensor, **options: Any
    ) -> list:
        """Decode latents ``[n, d_s]``, ``[n, d_r]`` into ``n`` items (the domain's item type).

        Runs batched; ``options`` are domain-specific (text: ``method``, ``beam_size``,
        ``max_length``...). A domain whose decoding draws random numbers declares a
        ``generator`` keyword: :meth:`Bridge.translate` passes it the generator that drew the
        latents (any device: draw on :func:`flowbridge.flows.draw_device` and move the result).
        """

    def build_discriminator(self, spec: LatentSpec) -> nn.Module | None:
        """Optional adversarial critic ``(x, shared) -> score [batch]``, e.g. the original
        text-to-image projection discriminator. ``None`` (the default): no GAN term.

        ``x`` is a batch as :meth:`collate` makes it, or :meth:`output_to_batch` of decoder
        output; ``shared [batch, d_s]`` is the code it is scored for. The bridge trains it
        with a hinge loss (:mod:`flowbridge.adversarial`) when ``weights.adversarial > 0``.
        A domain that returns a critic must implement :meth:`output_to_batch`.
        """
        return None

    def output_to_batch(self, output: Any) -> torch.Tensor:
        """Decoder output as a batch like :meth:`collate` makes (the critic's input), e.g. the
        sigmoid of pixel logits; it must stay differentiable, since the adversarial term's
        gradient reaches the decoder through it. Only needed with a discriminator."""
        raise NotImplementedError(
            f"domain {self.name!r} does not turn decoder output into a batch: implement "
            f"output_to_batch(output) to train its discriminator"
        )

    # -- data ----------------------------------------------------------------------------
    def fit(self, items: Sequence) -> None:
        """Fit preprocessing state (e.g. a vocabulary) on training items. Default: nothing."""

    @abc.abstractmethod
    def collate(self, items: Sequence) -> torch.Tensor:
        """Turn a list of items into one batch tensor (first dimension = ``len(items)``)."""

    def check_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Check a batch tensor handed over in place of items (:meth:`Bridge.translate`,
        ``encode``, ``reconstruct``, ``loss``) as :meth:`collate` checks items, and return it.

        Such a tensor is the model's input as :meth:`collate` makes it, not raw data: any
        preprocessing (normalising with fitted statistics, tokenising) has been done. So
        ``check_batch`` may only convert another form of the same batch (the image domain
        turns uint8 pixels into floats in [0, 1]), and must return a batch that ``collate``
        made unchanged; :func:`~flowbridge.testing.check_domain` checks this on
        :meth:`example_batch`. Raise ``TypeError``/``ValueError`` saying what is wrong and how
        to fix it. Training batches come from :meth:`collate` and skip it. Default: ``x`` must
        have as many dimensions as :meth:`example_batch`'s batches (one item handed over as if
        it were a batch is the usual slip; its encoder would fail far from the cause)."""
        rank = self.__dict__.get("_example_rank")
        if rank is None:  # example_batch may cost something: once per domain
            rank = self._example_rank = self.example_batch(1, torch.Generator()).dim()
        if x.dim() != rank:
            raise ValueError(
                f"a {self.name} batch tensor has {rank} dimensions, the first the batch's; got "
                f"shape {list(x.shape)}: one item is x[None] (or pass a list of items)"
            )
        return x

    @abc.abstractmethod
    def example_batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """A valid batch of ``n`` random examples, for tests (deterministic given the
        generator's seed: draw every random number from ``generator``). It must also work
        before :meth:`fit`, e.g. with a small built-in vocabulary."""

    def state_dict(self) -> dict[str, Any]:
        """Fitted state to save with a model; only tensors, numbers, strings, lists, dicts
        (it is loaded with ``torch.load(weights_only=True)``)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    # -- files a person reads --------------------------------------------------------------
    @abc.abstractmethod
    def read_item(self, source: str) -> Any:
        """Read one item from a command-line argument (text: the string itself; image: a
        file path). Raise ``ValueError`` naming ``source`` if it cannot be read."""

    @abc.abstractmethod
    def write_items(self, items: Sequence[Sequence], path: Path) -> Path:
        """Write ``items[i][k]`` (sample k of input i) to a file a person can open (a PNG
        grid, a Markdown list...) at ``path`` plus a suitable suffix
        (:func:`flowbridge.files.suffixed`); return the path."""

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({options})"


@dataclass
class PairedSplit:
    """One split of a paired dataset: ``a[i]`` and ``b[i]`` are a pair.

    Attributes:
        a, b: items of the dataset's first and second domain, paired by index.
        meta: optional per-pair metadata (e.g. the attributes behind a testbed pair).
        unpaired_a, unpaired_b: extra items that have no partner (semi-supervised training).
    """

    a: Sequence
    b: Sequence
    meta: Sequence[dict] | None = None
    unpaired_a: Sequence = field(default_factory=list)
    unpaired_b: Sequence = field(default_factory=list)

    def __post_init__(self):
        if len(self.a) != len(self.b):
            raise ValueError(
                f"a paired split needs as many a-items as b-items, got {len(self.a)} and "
                f"{len(self.b)}"
            )
        if self.meta is not None and len(self.meta) != len(self.a):
            raise ValueError(f"meta has {len(self.meta)} entries for {len(self.a)} pairs")

    def __len__(self) -> int:
        return len(self.a)


class PairedDataset(abc.ABC):
    """Base class of dataset plugins: pairs of items from two named domains.

    Subclasses set the class attributes and implement :meth:`split`. Like a domain, a dataset
    takes keyword options with defaults (a run config's ``data.options``) and keeps them in
    ``self.options``.

    Class attributes:
        name: registry name, e.g. ``"shapes"`` (same rules as :attr:`Domain.name`).
        domains: the two domain names, e.g. ``("image", "text")``; they may be equal, and
            may be registered by other plugins.
        splits: the split names :meth:`split` accepts.
    """

    name: ClassVar[str]
    domains: ClassVar[tuple[str, str]]
    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")

    def __init__(self, **options: Any):
        if options:
            raise TypeError(f"dataset {self.name!r} takes no options, got {sorted(options)}")
        self.options: dict[str, Any] = {}

    @abc.abstractmethod
    def split(self, name: str) -> PairedSplit:
        """Return the split called ``name`` (one of :attr:`splits`)."""

    def check_domains(self, a: Domain, b: Domain, /) -> None:
        """Check that this dataset's items fit the two domains a run built for it (``a`` and
        ``b`` in the order of :attr:`domains`), before any item is read. They are passed by
        position: an override may name them after its domains (shapes and coco: ``image``,
        ``text``), so a keyword call would not reach every dataset. Training calls it,
        so a setting the two must share (an image size, a feature width) is named at once
        rather than by the domain's check of the first item. Raise ``ValueError`` naming the
        dataset's option and the domain's. Default: nothing to check."""

"""The ``"image"`` domain: images (or precomputed image features) for flowbridge."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from flowbridge.domain import Domain, LatentSpec
from flowbridge.files import atomic_write, suffixed
from flowbridge.plugins import options_signature, refuse_unknown_options

from .decoders import ConvDecoder, FeatureDecoder
from .discriminator import ProjectionDiscriminator
from .encoders import ConvEncoder, FeatureEncoder
from .files import load_image, save_image_grid
from .items import to_feature_tensor, to_image_tensor
from .losses import RECONSTRUCTION_LOSSES, edge_map
from .options import ImageOptions, check_guidance

__all__ = ["ImageDomain"]

_OPTION_NAMES = [f.name for f in fields(ImageOptions)]


def _stack(n: int, tensors: Iterator[torch.Tensor]) -> torch.Tensor:
    """The ``n`` converted items ``[C, S, S]`` (or ``[feature_dim]``) as one batch ``[n, ...]``,
    each copied into place as it is converted.

    A list of every converted item before :func:`torch.stack` would hold the batch twice at
    its peak: collating a split up front (``train.collate_upfront``) turns uint8 pixels into
    4-byte floats, and 566k COCO pairs at 32 px are 7 GB of them.
    """
    first = next(tensors)
    # On the items' device, as torch.stack would: a batch of CUDA rows stays there.
    batch = torch.empty((n, *first.shape), dtype=first.dtype, device=first.device)
    batch[0] = first
    del first  # the batch holds its values now
    for i, tensor in enumerate(tensors, 1):
        batch[i] = tensor
    return batch


class ImageDomain(Domain):
    """Images ``[C, S, S]`` in [0, 1], or precomputed feature vectors, as a flowbridge domain.

    Options are those of :class:`~flowbridge_image.options.ImageOptions` (``encoder``,
    ``size``, ``channels``, ``loss``, ``edge_weight``, ``shared_dropout``, ``guidance``,
    ``hidden``, ``feature_dim``, ``adversarial``);
    ``self.options`` holds them resolved, so ``ImageDomain(**domain.options)`` rebuilds the
    same domain.

    * ``encoder="conv"``: :class:`~flowbridge_image.encoders.ConvEncoder` and the
      FiLM-conditioned :class:`~flowbridge_image.decoders.ConvDecoder`; the decoder outputs
      logits (``bce``) or pixel values (``l1``, ``l2``); :meth:`generate` returns images in
      [0, 1]; :meth:`read_item` reads PNG/JPEG files; :meth:`write_items` writes a PNG grid.
    * ``encoder="features"``: items are feature vectors ``[feature_dim]`` a user extracted
      from any backbone (the original captioning model used VGG16 fc7). The domain is meant as
      the *source* of image→text: its decoder reconstructs the feature vector (``l2``), which
      only anchors the encoder; :meth:`read_item` reads ``.npy`` or ``.pt`` vectors and
      :meth:`write_items` writes ``[inputs, samples, feature_dim]`` to a ``.npy`` file.

    Example:
        >>> domain = ImageDomain(size=16, channels=1, hidden=4)
        >>> x = domain.example_batch(2, torch.Generator().manual_seed(0))
        >>> x.shape
        torch.Size([2, 1, 16, 16])
    """

    name = "image"
    default_residual_features = 16

    def __init__(self, **options: Any):
        where = "domains.a.options or domains.b.options"
        refuse_unknown_options("image domain", options, _OPTION_NAMES, where)
        self.config = ImageOptions(**options)
        self.options = self.config.as_dict()

    # The options by name and default, for `flowbridge plugins --all` and the registry's check.
    __init__.__signature__ = options_signature(ImageOptions)

    @property
    def features_mode(self) -> bool:
        return self.config.encoder == "features"

    # -- model parts ---------------------------------------------------------------------
    def build_encoder(self, spec: LatentSpec) -> nn.Module:
        c = self.config
        if self.features_mode:
            return FeatureEncoder(spec, c.feature_dim, c.hidden)
        return ConvEncoder(spec, c.channels, c.size, c.hidden)

    def build_decoder(self, spec: LatentSpec) -> nn.Module:
        c = self.config
        if self.features_mode:
            return FeatureDecoder(spec, c.feature_dim, c.hidden)
        return ConvDecoder(spec, c.channels, c.size, c.hidden, c.shared_dropout)

    def build_discriminator(self, spec: LatentSpec) -> nn.Module | None:
        """A :class:`~flowbridge_image.discriminator.ProjectionDiscriminator` when
        ``adversarial=True``, else ``None``. Feed it real batches and
        :meth:`output_to_batch` of decoder outputs."""
        c = self.config
        if not c.adversarial:
            return None
        return ProjectionDiscriminator(spec, c.channels, c.size, c.hidden)

    def reconstruction_loss(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The configured loss summed over pixels (or features): ``[batch]``."""
        if not isinstance(output, torch.Tensor) or output.shape != x.shape:
            shape = list(output.shape) if isinstance(output, torch.Tensor) else type(output)
            raise ValueError(
                f"decoder output must have the batch's shape {list(x.shape)}, got {shape}"
            )
        # Pixels on the target's edges weigh up to 1 + edge_weight (losses.py says why).
        weights = 1 + self.config.edge_weight * edge_map(x) if self.config.edge_weight else None
        return RECONSTRUCTION_LOSSES[self.config.loss](output, x, weights)

    def output_to_batch(self, output: torch.Tensor) -> torch.Tensor:
        """Decoder output as a (differentiable) batch like real ones: ``sigmoid`` of ``bce``
        logits, the values themselves otherwise (not clamped, so gradients flow)."""
        return torch.sigmoid(output) if self.config.loss == "bce" else output

    def generate(
        self, decoder: nn.Module, shared: torch.Tensor, residual: torch.Tensor, **options: Any
    ) -> list[torch.Tensor]:
        """Decode ``shared [n, d_s]``, ``residual [n, d_r]`` into ``n`` items on the CPU:
        images ``[C, S, S]`` in [0, 1] (sigmoid for ``bce``, clamped otherwise) or feature
        vectors. One option: ``guidance``, the domain's ``guidance`` option for this call."""
        unknown = sorted(set(options) - {"guidance"})
        if unknown:
            raise TypeError(f"image generate takes one option, guidance; got {unknown}")
        weight = options.get("guidance", self.config.guidance)
        weight = check_guidance(weight, self.config.shared_dropout, "image generate's guidance")
        with torch.no_grad():
            output = (
                decoder.guided(shared, residual, weight) if weight else decoder(shared, residual)
            )
            batch = self.output_to_batch(output)
        if not self.features_mode:
            batch = batch.clamp(0, 1)
        return list(batch.cpu().unbind(0))

    # -- data ----------------------------------------------------------------------------
    def _to_tensor(self, item: Any, what: str) -> torch.Tensor:
        c = self.config
        if self.features_mode:
            return to_feature_tensor(item, c.feature_dim, what)
        return to_image_tensor(item, c.channels, c.size, what)

    def check_batch(self, x: torch.Tensor) -> torch.Tensor:
        """A batch ``[batch, C, S, S]`` (or ``[batch, feature_dim]``) checked and converted row
        by row as :meth:`collate` does items: uint8 pixels become floats in [0, 1]; values
        outside [0, 1], NaNs and wrong shapes are refused with what to do."""
        c = self.config
        item = [c.feature_dim] if self.features_mode else [c.channels, c.size, c.size]
        if x.dim() != len(item) + 1:
            hint = (
                "; for a single item add a batch dimension with x[None]"
                if x.dim() == len(item)
                else ""
            )
            layout = "feature_dim" if self.features_mode else "C, S, S"
            raise ValueError(
                f"an {self.name} batch must have shape [batch, {', '.join(map(str, item))}] "
                f"([batch, {layout}]), got {list(x.shape)}{hint}"
            )
        if len(x) == 0:
            raise ValueError(f"an {self.name} batch needs at least one row, got {list(x.shape)}")
        return _stack(len(x), (self._to_tensor(row, f"batch row {i}") for i, row in enumerate(x)))

    def collate(self, items: Iterable) -> torch.Tensor:
        """Stack items (see :mod:`flowbridge_image.items` for the accepted kinds) into
        ``[batch, C, S, S]`` (or ``[batch, feature_dim]``)."""
        items = list(items)
        if not items:
            raise ValueError("collate needs at least one item, got none")
        return _stack(
            len(items), (self._to_tensor(item, f"item {i}") for i, item in enumerate(items))
        )

    def example_batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Random smooth images (uniform 4x4 noise, bilinearly upsampled; still in [0, 1]) or
        random non-negative feature vectors, ``[n, ...]``."""
        c = self.config
        if self.features_mode:
            return torch.rand(n, c.feature_dim, generator=generator)
        coarse = torch.rand(n, c.channels, 4, 4, generator=generator)
        return F.interpolate(coarse, size=(c.size, c.size), mode="bilinear", align_corners=False)

    # -- files a person reads --------------------------------------------------------------
    def read_item(self, source: str) -> torch.Tensor:
        """An image file converted to the domain's channels and size (see
        :func:`~flowbridge_image.files.load_image`: centre crop, bicubic resize), or a
        ``.npy``/``.pt`` feature vector in features mode."""
        if self.features_mode:
            return self._to_tensor(_read_vector(source), f"feature file {source!r}")
        return load_image(source, self.config.channels, self.config.size)

    def write_items(self, items: Sequence[Sequence], path: str | os.PathLike) -> Path:
        """Write ``items[i][k]`` as a PNG grid (row i = input i, column k = sample k) at
        ``path`` with suffix ``.png``, or as a ``.npy`` array ``[inputs, samples,
        feature_dim]`` in features mode."""
        rows = [
            [self._to_tensor(item, f"items[{i}][{k}]") for k, item in enumerate(row)]
            for i, row in enumerate(items)
        ]
        if not rows or len({len(row) for row in rows}) != 1 or not rows[0]:
            raise ValueError(
                f"write_items needs the same, non-zero number of samples for every input, got "
                f"row lengths {[len(row) for row in rows]}"
            )
        grid = torch.stack([torch.stack(row) for row in rows])
        if self.features_mode:
            array = grid.cpu().numpy()
            return atomic_write(suffixed(path, ".npy"), lambda file: np.save(file, array))
        return save_image_grid(grid, suffixed(path, ".png"))


def _read_vector(source: str) -> Any:
    """Load a ``.npy`` (no pickles) or ``.pt`` (``weights_only``) file's content."""
    suffix = Path(source).suffix
    if suffix not in (".npy", ".pt"):
        raise ValueError(f"cannot read feature file {source!r}: expected a .npy or .pt file")
    try:
        if suffix == ".npy":
            return np.load(source, allow_pickle=False)
        return torch.load(source, weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"cannot read feature file {source!r}: no such file") from None
    except Exception as exc:  # numpy and torch raise many kinds for a corrupt file
        raise ValueError(f"cannot read feature file {source!r}: {exc}") from None

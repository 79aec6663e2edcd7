"""The image domain's options: validated once, with mode-dependent defaults resolved.

Two encoder modes share one domain:

* ``"conv"``: items are images ``[C, H, W]`` in [0, 1]; a strided conv encoder and a
  FiLM-conditioned conv decoder. Options ``size``, ``channels``; loss ``l1`` (default, as the
  original LNFMM), ``l2`` or ``bce``.
* ``"features"``: items are precomputed feature vectors ``[feature_dim]`` (e.g. VGG16 fc7, 4096
  dims, extracted by the user); an MLP encoder as the original captioning model. Such a domain
  is the *source* of image→text, so its decoder only has to give the encoder a reconstruction
  target: it reconstructs the feature vector (``l2`` by default, or ``l1``). ``bce`` and the
  adversarial term need pixels and are refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ImageOptions", "ENCODERS", "LOSSES"]

ENCODERS = ("conv", "features")
LOSSES = ("l1", "l2", "bce")

# Mode-dependent defaults; an option that does not apply to a mode stays None.
_DEFAULTS = {
    "conv": {"size": 32, "channels": 3, "loss": "l1", "hidden": 32},
    "features": {"feature_dim": 4096, "loss": "l2", "hidden": 2048},
}


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"image option {name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"image option {name} must be >= {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class ImageOptions:
    """Options of :class:`~flowbridge_image.ImageDomain` (all JSON-compatible).

    Attributes:
        encoder: ``"conv"`` (images) or ``"features"`` (precomputed feature vectors).
        size: image side ``H = W`` in pixels, a multiple of 8 and >= 16 (conv; default 32).
        channels: 1 (grayscale) or 3 (RGB) (conv; default 3).
        loss: ``"l1"``, ``"l2"`` or ``"bce"``, summed over an example's elements
            (default ``"l1"`` for conv, ``"l2"`` for features).
        edge_weight: w ≥ 0; each pixel's loss is weighed by 1 + w·e, e ∈ [0, 1] how far the
            target pixel differs from its four neighbours
            (:func:`~flowbridge_image.losses.edge_map`), so the decoder learns outlines and
            corners sooner (conv only; default 0, every pixel alike).
        hidden: base conv width, doubled at each lower resolution up to 8x (conv; default 32),
            or the MLP width (features; default 2048, as the original).
        feature_dim: length of a feature vector (features; default 4096, VGG16 fc7).
        adversarial: add a projection discriminator (conv only; default False).
    """

    encoder: str = "conv"
    size: int | None = None
    channels: int | None = None
    loss: str | None = None
    edge_weight: float = 0.0
    hidden: int | None = None
    feature_dim: int | None = None
    adversarial: bool = False

    def __post_init__(self):
        if self.encoder not in ENCODERS:
            raise ValueError(
                f"image option encoder must be one of {list(ENCODERS)}, got {self.encoder!r}"
            )
        defaults = _DEFAULTS[self.encoder]
        for name in ("size", "channels", "feature_dim"):
            if name not in defaults and getattr(self, name) is not None:
                other = next(e for e in ENCODERS if e != self.encoder)
                raise ValueError(
                    f"image option {name} applies to encoder={other!r} only, but "
                    f"encoder={self.encoder!r}; leave {name} out"
                )
        for name, value in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        self._validate()

    def _validate(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"image option loss must be one of {list(LOSSES)}, got {self.loss!r}")
        _check_int(self.hidden, "hidden", 1)
        weight = self.edge_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise TypeError(
                f"image option edge_weight must be a number, got {type(weight).__name__} {weight!r}"
            )
        if not 0 <= weight < float("inf"):
            raise ValueError(f"image option edge_weight must be a finite number >= 0, got {weight}")
        if not isinstance(self.adversarial, bool):
            raise TypeError(
                f"image option adversarial must be a bool, got {type(self.adversarial).__name__}"
            )
        if self.encoder == "features":
            _check_int(self.feature_dim, "feature_dim", 1)
            if self.loss == "bce":
                raise ValueError(
                    "image option loss='bce' needs pixels in [0, 1], but encoder='features' "
                    "reconstructs feature vectors; use loss='l2' or 'l1'"
                )
            if self.adversarial:
                raise ValueError(
                    "image option adversarial=True needs images, but encoder='features' has "
                    "feature vectors; use encoder='conv' or adversarial=False"
                )
            if self.edge_weight:
                raise ValueError(
                    "image option edge_weight weighs pixels on an image's edges, but "
                    "encoder='features' has feature vectors; leave edge_weight at 0"
                )
            return
        _check_int(self.size, "size", 16)
        if self.size % 8:
            raise ValueError(f"image option size must be a multiple of 8, got {self.size}")
        if _check_int(self.channels, "channels", 1) not in (1, 3):
            raise ValueError(
                f"image option channels must be 1 (grayscale) or 3 (RGB), got {self.channels!r}"
            )

    def as_dict(self) -> dict[str, Any]:
        """The resolved options; ``ImageOptions(**as_dict())`` rebuilds the same options."""
        return asdict(self)

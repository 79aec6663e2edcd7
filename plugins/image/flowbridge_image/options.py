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

__all__ = ["ImageOptions", "ENCODERS", "LOSSES", "check_guidance"]

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


def _check_number(value: Any, what: str) -> float:
    """``value`` if it is a finite number >= 0 (not a bool), else a TypeError or ValueError
    naming it as ``what``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    if not 0 <= value < float("inf"):
        raise ValueError(f"{what} must be a finite number >= 0, got {value}")
    return value


def check_guidance(weight: Any, shared_dropout: float, what: str) -> float:
    """``weight``, checked as a guidance weight (``what`` names it in an error) for a decoder
    trained with ``shared_dropout``: a finite number >= 0, and 0 unless that dropout is > 0."""
    if _check_number(weight, what) and not shared_dropout:
        raise ValueError(
            f"{what} {weight} needs a decoder trained with image option shared_dropout > 0 "
            f"(guidance contrasts each image with the decoder's image of no shared code, "
            f"which this one never learnt to draw); set shared_dropout, e.g. 0.15, and train"
        )
    return weight


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
        shared_dropout: p in [0, 1); in training, each row's shared code enters the decoder
            as zeros with probability p, so the decoder also learns to draw an image from its
            residual alone, the reference ``guidance`` steers away from (conv only; default 0).
        guidance: w ≥ 0; :meth:`~flowbridge_image.ImageDomain.generate` decodes
            :math:`D(s, r) + w (D(s, r) - D(0, r))` instead of :math:`D(s, r)`, classifier-free
            guidance (Ho & Salimans, 2022) between a shared code and none: where the residual
            and the shared code disagree (a sampled residual of another colour than the caption
            states), the image follows the shared code. Needs ``shared_dropout`` > 0: a decoder
            never trained on a zero code draws nothing meaningful from one (conv only; default
            0, the decoder's output as it is).
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
    shared_dropout: float = 0.0
    guidance: float = 0.0
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
        _check_number(self.edge_weight, "image option edge_weight")
        if not _check_number(self.shared_dropout, "image option shared_dropout") < 1:
            raise ValueError(
                f"image option shared_dropout must be < 1 (the share of rows decoded without "
                f"their shared code), got {self.shared_dropout}"
            )
        check_guidance(self.guidance, self.shared_dropout, "image option guidance")
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
            for name in ("edge_weight", "shared_dropout", "guidance"):
                if getattr(self, name):
                    raise ValueError(
                        f"image option {name} applies to images, but encoder='features' has "
                        f"feature vectors; leave {name} at 0"
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

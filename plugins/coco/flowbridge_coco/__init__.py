"""flowbridge-coco: COCO captioning and text-to-image data and evaluation for flowbridge.

* :class:`CocoDataset` (registered as ``"coco"``): the Karpathy split or official captions
  files, with images from a folder (resized, cached) or precomputed features;
* evaluation as in LNFMM: K captions per image, oracle and consensus re-ranked scores,
  diversity; K images per caption, PNG grids and feature-based FID / precision / recall.
"""

from typing import TYPE_CHECKING

from flowbridge._lazy import lazy_exports

# Imported on first use, so that ``flowbridge-coco --help`` and Ctrl-C need no torch.
_EXPORTS = {
    ".annotations": ("CocoImage", "read_annotations", "read_karpathy", "read_official"),
    ".cider": ("CiderD",),
    ".consensus": ("consensus_order", "nearest_neighbours"),
    ".dataset": ("CocoDataset", "CocoImages"),
    ".errors": ("CocoDataError", "CocoFileNotFoundError"),
    ".evaluation": (
        "CaptioningResult",
        "CaptioningSettings",
        "TextToImageSettings",
        "evaluate_captioning",
        "evaluate_text_to_image",
    ),
    ".features": ("FeatureTable",),
    ".image_metrics": ("frechet_distance", "image_feature_scores", "precision_recall"),
    ".images": ("load_images",),
    ".options": ("CocoOptions",),
    ".report": ("markdown", "write_results"),
}

if TYPE_CHECKING:
    from .annotations import CocoImage, read_annotations, read_karpathy, read_official
    from .cider import CiderD
    from .consensus import consensus_order, nearest_neighbours
    from .dataset import CocoDataset, CocoImages
    from .errors import CocoDataError, CocoFileNotFoundError
    from .evaluation import (
        CaptioningResult,
        CaptioningSettings,
        TextToImageSettings,
        evaluate_captioning,
        evaluate_text_to_image,
    )
    from .features import FeatureTable
    from .image_metrics import frechet_distance, image_feature_scores, precision_recall
    from .images import load_images
    from .options import CocoOptions
    from .report import markdown, write_results

__all__ = [
    "CaptioningResult",
    "CaptioningSettings",
    "CiderD",
    "CocoDataError",
    "CocoDataset",
    "CocoFileNotFoundError",
    "CocoImage",
    "CocoImages",
    "CocoOptions",
    "FeatureTable",
    "TextToImageSettings",
    "consensus_order",
    "evaluate_captioning",
    "evaluate_text_to_image",
    "frechet_distance",
    "image_feature_scores",
    "load_images",
    "markdown",
    "nearest_neighbours",
    "precision_recall",
    "read_annotations",
    "read_karpathy",
    "read_official",
    "write_results",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""flowbridge-coco: COCO captioning and text-to-image data and evaluation for flowbridge.

* :class:`CocoDataset` (registered as ``"coco"``): the Karpathy split or official captions
  files, with images from a folder (resized, cached) or precomputed features;
* evaluation as in LNFMM: K captions per image, oracle and consensus re-ranked scores,
  diversity; K images per caption, PNG grids and feature-based FID / precision / recall.
"""

from .annotations import CocoImage, read_annotations, read_karpathy, read_official
from .dataset import CocoDataset, CocoImages
from .errors import CocoDataError, CocoFileNotFoundError
from .features import FeatureTable
from .images import load_images
from .options import CocoOptions

__all__ = [
    "CocoDataError",
    "CocoDataset",
    "CocoFileNotFoundError",
    "CocoImage",
    "CocoImages",
    "CocoOptions",
    "FeatureTable",
    "load_images",
    "read_annotations",
    "read_karpathy",
    "read_official",
]

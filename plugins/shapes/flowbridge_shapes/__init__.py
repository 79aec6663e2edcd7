"""flowbridge-shapes: an offline many-to-many image/caption testbed with an oracle.

* :class:`ShapesDataset` ("shapes"): rendered images of one object and underspecified captions;
* the oracle: :func:`parse_caption` (caption -> claims) and :func:`read_image` (image ->
  attributes);
* samplers of the data's own distribution: :func:`sample_captions`, :func:`sample_images`;
* testbed metrics: :func:`caption_metrics` (with :func:`caption_diversity`, the captioning
  literature's diversity metrics from :mod:`flowbridge.metrics`), :func:`image_metrics` and
  their ceilings.
"""

from .attributes import ATTRIBUTES, all_combinations
from .captions import claims_hold, parse_caption, sample_caption, sample_captions
from .dataset import ShapesDataset
from .metrics import (
    caption_ceiling,
    caption_diversity,
    caption_metrics,
    caption_reconstruction,
    captions_by_image,
    image_ceiling,
    image_metrics,
    image_reconstruction,
    one_pair_per_image,
    sample_images,
)
from .oracle import read_image, read_images
from .render import render

__all__ = [
    "ATTRIBUTES",
    "ShapesDataset",
    "all_combinations",
    "caption_ceiling",
    "caption_diversity",
    "caption_metrics",
    "captions_by_image",
    "caption_reconstruction",
    "claims_hold",
    "image_ceiling",
    "image_metrics",
    "image_reconstruction",
    "one_pair_per_image",
    "parse_caption",
    "read_image",
    "read_images",
    "render",
    "sample_caption",
    "sample_captions",
    "sample_images",
]

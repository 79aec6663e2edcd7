"""flowbridge-image: the ``"image"`` domain plugin for flowbridge.

Images ``[C, H, W]`` in [0, 1] through a strided conv encoder and a decoder conditioned on the
shared code at every resolution (FiLM), or precomputed feature vectors through an MLP; an
optional projection discriminator; PNG readers and grid writers for reports.
"""

from .decoders import ConvDecoder, FeatureDecoder
from .discriminator import ProjectionDiscriminator
from .domain import ImageDomain
from .encoders import ConvEncoder, FeatureEncoder
from .files import image_grid, load_image, save_image_grid
from .losses import RECONSTRUCTION_LOSSES, bce_loss, l1_loss, l2_loss
from .options import ImageOptions

__all__ = [
    "ConvDecoder",
    "ConvEncoder",
    "FeatureDecoder",
    "FeatureEncoder",
    "ImageDomain",
    "ImageOptions",
    "ProjectionDiscriminator",
    "RECONSTRUCTION_LOSSES",
    "bce_loss",
    "image_grid",
    "l1_loss",
    "l2_loss",
    "load_image",
    "save_image_grid",
]

"""CIDEr-D similarities for consensus re-ranking: :class:`flowbridge.metrics.CiderD`, which
self-CIDEr shares, under this plugin's name (``flowbridge_coco.CiderD``)."""

from flowbridge.metrics.cider import CiderD

__all__ = ["CiderD"]

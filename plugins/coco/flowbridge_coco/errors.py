"""The errors the COCO plugin raises for bad files and options (all of them ``ValueError``)."""

from __future__ import annotations

__all__ = ["CocoDataError", "CocoFileNotFoundError"]


class CocoDataError(ValueError):
    """A COCO file (annotations, images, features, cache) is missing, unreadable or malformed;
    the message names the file and the field."""


class CocoFileNotFoundError(CocoDataError, FileNotFoundError):
    """A file the dataset needs does not exist (both a ``ValueError`` and a
    ``FileNotFoundError``); the message says which option points to it."""

"""Reading COCO caption annotations: the Karpathy split file and the official captions JSON.

Two formats carry the same thing, images with their reference captions:

* the **Karpathy split** file (``dataset_coco.json``, the split every captioning paper since
  2015 uses, LNFMM included)::

      {"images": [{"cocoid": 391895, "filepath": "val2014",
                   "filename": "COCO_val2014_000000391895.jpg", "split": "test",
                   "sentences": [{"raw": "A man riding a bike.", "tokens": ["a", "man", ...]},
                                 ...]},
                  ...]}

  ``split`` is ``train``, ``restval``, ``val`` or ``test``; a sentence needs ``raw`` or
  ``tokens`` (``raw`` wins); ``filepath`` may be absent (the file then sits in the image
  folder itself).

* the **official** captions file (``annotations/captions_train2014.json``)::

      {"images": [{"id": 391895, "file_name": "COCO_val2014_000000391895.jpg", ...}, ...],
       "annotations": [{"image_id": 391895, "caption": "A man riding a bike.", ...}, ...]}

  It has no split of its own: the caller names one per file. A 2014 file name
  ``COCO_<set>_<id>.jpg`` is looked for in the folder ``<set>/`` (as COCO unpacks), images
  without any caption are left out.

Every problem raises :class:`~flowbridge_coco.errors.CocoDataError` naming the file and the
field, e.g. ``dataset_coco.json: images[3] has no 'split'``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath
from typing import Any

from .errors import CocoDataError, CocoFileNotFoundError

__all__ = ["CocoImage", "read_karpathy", "read_official", "read_annotations"]

# COCO 2014 file names carry their folder: COCO_train2014_000000000009.jpg -> train2014/.
_SET_IN_NAME = re.compile(r"COCO_([A-Za-z]+\d*)_\d+\.\w+")


@dataclass(frozen=True)
class CocoImage:
    """One annotated image.

    Attributes:
        id: the COCO image id (``cocoid`` / ``id``).
        split: the split the annotations put it in (``"train"``, ``"restval"``... or the
            name the caller gave an official file).
        file: its path relative to the image folder, in normal form (no ``.`` or ``..``, ``/``
            between folders), e.g. ``"val2014/COCO_val2014_...jpg"``.
        captions: its reference captions, in file order (stripped of surrounding spaces).
    """

    id: int
    split: str
    file: str
    captions: tuple[str, ...]


def _load_json(path: Path, option: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        # A relative root is read from the current folder: name it, for a run or an
        # evaluation started elsewhere (evaluate's --data-root points it anywhere).
        where = "" if path.is_absolute() else f", read from the current folder {Path.cwd()}"
        raise CocoFileNotFoundError(
            f"{path}: no such file (coco option {option!r}{where}); point it to the annotation "
            f"file, e.g. dataset_coco.json from the Karpathy split or annotations/captions_*.json"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CocoDataError(f"{path}: cannot be read as UTF-8 text ({exc})") from None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:  # or nested thousands deep
        raise CocoDataError(f"{path}: not valid JSON ({exc}); is the file complete?") from None


def _field(record: Any, key: str, kind: type | tuple[type, ...], where: str, name: str) -> Any:
    """``record[key]`` checked to be of ``kind`` (bool is never an int here)."""
    if not isinstance(record, dict):
        raise CocoDataError(f"{name}: {where} must be a JSON object, got {type(record).__name__}")
    if key not in record:
        raise CocoDataError(f"{name}: {where} has no {key!r}")
    value = record[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) or not isinstance(value, kinds):
        wanted = " or ".join(k.__name__ for k in kinds)
        raise CocoDataError(
            f"{name}: {where}.{key} must be {wanted}, got {type(value).__name__} ({value!r:.60})"
        )
    return value


def _top_level_list(data: Any, key: str, name: str, layout: str) -> list:
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        found = sorted(data)[:6] if isinstance(data, dict) else type(data).__name__
        raise CocoDataError(
            f"{name}: expected a JSON object with a {key!r} list ({layout}), got {found}"
        )
    return data[key]


def _inside_folder(file: str, where: str, name: str, system: type[PurePath] = PurePath) -> str:
    """``file`` as a path inside the image folder, in normal form (``a/../a/x.jpg`` is
    ``a/x.jpg``), read as ``system`` (this machine's paths) reads it. An annotation file from
    elsewhere could name any image on the machine (``/home/me/photo.jpg``,
    ``../../photo.jpg``) for the run to read into its cache and grids, so a name is refused
    when it is absolute on either system (``/x.jpg``, ``C:\\x.jpg``, ``\\\\server\\share``: an
    annotation file does not name files outside its image folder on any system), anchored on
    this one (on Windows ``C:x.jpg`` and ``\\x.jpg``, which start from a drive; on POSIX they
    are file names like any other), or when its ``..`` climb out of the folder.

    The name is normalised by its text, without following symbolic links, and the image is
    read at the normalised path (folder / the returned name), so no ``..`` is ever handed to
    the system. A link inside the folder that points outside it is followed, by decision: it
    is the folder owner's choice (``train2014 -> /mnt/disk2/train2014`` keeps the images on
    another disk, as COCO set-ups often do), which an annotation file can use but not make;
    and a ``..`` after it (``train2014/../x.jpg``) stays in the folder (``x.jpg``) instead of
    climbing out of the link's target, as the system's reading of the raw name would.
    """
    path = system(file)
    parts: list[str] = []
    outside = bool(
        PurePosixPath(file).is_absolute() or PureWindowsPath(file).is_absolute() or path.anchor
    )
    for part in () if outside else path.parts:
        if part != "..":
            parts.append(part)
        elif parts:
            parts.pop()
        else:  # climbs above the folder
            outside = True
            break
    if not outside:
        return "/".join(parts)
    raise CocoDataError(
        f"{name}: {where} names the image file {file!r}, which is not inside the image "
        f"folder; files are named relative to it, e.g. val2014/COCO_val2014_000000391895.jpg"
    )


def _caption(sentence: Any, where: str, name: str) -> str:
    if not isinstance(sentence, dict):
        raise CocoDataError(f"{name}: {where} must be a JSON object, got {type(sentence).__name__}")
    if "raw" in sentence:
        caption = _field(sentence, "raw", str, where, name).strip()
    elif "tokens" in sentence:
        tokens = _field(sentence, "tokens", list, where, name)
        if not all(isinstance(t, str) for t in tokens):
            raise CocoDataError(f"{name}: {where}.tokens must be a list of str")
        caption = " ".join(tokens).strip()
    else:
        raise CocoDataError(f"{name}: {where} has neither 'raw' nor 'tokens'")
    if not caption:
        raise CocoDataError(f"{name}: {where} is an empty caption")
    return caption


def _check_unique(images: list[CocoImage], name: str) -> list[CocoImage]:
    seen: dict[int, int] = {}
    for index, image in enumerate(images):
        if image.id in seen:
            raise CocoDataError(
                f"{name}: image id {image.id} appears twice (images[{seen[image.id]}] and "
                f"images[{index}]); every image must be listed once"
            )
        seen[image.id] = index
    return images


def read_karpathy(path: str | os.PathLike) -> list[CocoImage]:
    """The images of a Karpathy split file (``dataset_coco.json``), in file order.

    Raises:
        CocoDataError: the file is missing, not JSON, or a field is missing or mistyped.
    """
    path = Path(path)
    return _karpathy_images(_load_json(path, "annotations"), path.name)


def _karpathy_images(data: Any, name: str) -> list[CocoImage]:
    records = _top_level_list(data, "images", name, "the Karpathy split format")
    if not records:
        raise CocoDataError(f"{name}: the 'images' list is empty")
    images = []
    for i, record in enumerate(records):
        where = f"images[{i}]"
        split = _field(record, "split", str, where, name)
        image_id = _field(record, "cocoid", int, where, name)
        filename = _field(record, "filename", str, where, name)
        folder = _field(record, "filepath", str, where, name) if "filepath" in record else ""
        sentences = _field(record, "sentences", list, where, name)
        if not sentences:
            raise CocoDataError(f"{name}: {where}.sentences is empty; every image needs a caption")
        captions = tuple(
            _caption(s, f"{where}.sentences[{k}]", name) for k, s in enumerate(sentences)
        )
        file = _inside_folder(f"{folder}/{filename}" if folder else filename, where, name)
        images.append(CocoImage(image_id, split, file, captions))
    return _check_unique(images, name)


def read_official(path: str | os.PathLike, split: str) -> list[CocoImage]:
    """The captioned images of an official COCO captions file, all in split ``split``, in the
    order of its ``images`` list.

    Raises:
        CocoDataError: the file is missing, not JSON, a field is missing or mistyped, or a
            caption names an image the file does not list.
    """
    path = Path(path)
    return _official_images(_load_json(path, f"annotations.{split}"), path.name, split)


def _official_images(data: Any, name: str, split: str) -> list[CocoImage]:
    layout = "the official COCO captions format"
    records = _top_level_list(data, "images", name, layout)
    annotations = _top_level_list(data, "annotations", name, layout)
    files: dict[int, str] = {}
    for i, record in enumerate(records):
        image_id = _field(record, "id", int, f"images[{i}]", name)
        if image_id in files:
            raise CocoDataError(f"{name}: images[{i}] repeats image id {image_id}")
        file_name = _field(record, "file_name", str, f"images[{i}]", name)
        files[image_id] = _inside_folder(file_name, f"images[{i}]", name)
    captions: dict[int, list[str]] = {}
    for j, annotation in enumerate(annotations):
        where = f"annotations[{j}]"
        image_id = _field(annotation, "image_id", int, where, name)
        caption = _field(annotation, "caption", str, where, name).strip()
        if image_id not in files:
            raise CocoDataError(
                f"{name}: {where} has image_id {image_id}, which is not in the file's 'images' list"
            )
        if not caption:
            raise CocoDataError(f"{name}: {where}.caption is empty")
        captions.setdefault(image_id, []).append(caption)
    if not captions:
        raise CocoDataError(f"{name}: no captions: the 'annotations' list is empty")
    images = []
    for image_id, file_name in files.items():
        if image_id not in captions:
            continue  # an uncaptioned image can be neither a pair nor a test input
        match = _SET_IN_NAME.fullmatch(file_name)
        file = f"{match.group(1)}/{file_name}" if match else file_name
        images.append(CocoImage(image_id, split, file, tuple(captions[image_id])))
    return images


def _is_official(data: Any) -> bool:
    """Whether parsed annotations are in the official format (else: Karpathy)."""
    return isinstance(data, dict) and "annotations" in data


def read_annotations(
    annotations: str | os.PathLike | Mapping[str, str | os.PathLike], root: str | os.PathLike = "."
) -> list[CocoImage]:
    """Read the images of the ``annotations`` option (paths relative to ``root``).

    Args:
        annotations: the path of a Karpathy split file, or a table ``{split: path}`` of
            official captions files (``{"train": "annotations/captions_train2014.json", "test":
            "annotations/captions_val2014.json"}``), each file's images put in that split.
        root: the folder relative paths start from.

    Raises:
        CocoDataError: a file is missing or malformed, an official file is given without a
            split, or an image id appears in two files.
    """
    root = Path(root)
    if isinstance(annotations, Mapping):
        if not annotations:
            raise CocoDataError(
                "coco option annotations is an empty table; give {split = path} entries"
            )
        images: list[CocoImage] = []
        for split, relative in annotations.items():
            path = root / relative
            data = _load_json(path, f"annotations.{split}")
            if not _is_official(data):
                raise CocoDataError(
                    f"{path.name} (annotations.{split}) has no 'annotations' list, so it is not "
                    f"an official COCO captions file; give a Karpathy split file as a single "
                    f"path: annotations = {str(relative)!r}"
                )
            images.extend(_official_images(data, path.name, split))
        return _check_unique(images, "annotations")
    if not isinstance(annotations, (str, os.PathLike)):
        raise TypeError(
            f"coco option annotations must be a path or a table {{split = path}}, got "
            f"{type(annotations).__name__}"
        )
    path = root / annotations
    data = _load_json(path, "annotations")
    if _is_official(data):
        raise CocoDataError(
            f"{path.name} is an official COCO captions file, which has no splits: give "
            f"annotations as a table mapping split names to files, e.g. annotations = "
            f'{{train = "annotations/captions_train2014.json", test = '
            f'"annotations/captions_val2014.json"}}, or use the Karpathy split file '
            f"dataset_coco.json"
        )
    return _karpathy_images(data, path.name)

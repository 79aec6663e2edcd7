"""A tiny synthetic COCO on disk, for tests and for smoke-testing a set-up without COCO.

18 images of one coloured shape on white (40x48 pixels, so loading has to crop and resize),
as COCO lays them out: ``images/train2014/COCO_train2014_<id>.jpg`` and
``images/val2014/COCO_val2014_<id>.jpg`` (one of them a PNG). Each image has 5 captions
(one has 6) naming its colour and shape. The Karpathy split puts 10 in train, 2 in restval,
3 in val and 3 in test; the official files hold train2014 and val2014 captions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["TinyCoco", "write_tiny_coco", "COLOURS", "SHAPES"]

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220)}
SHAPES = ("square", "circle")
SPLITS = ["train"] * 10 + ["restval"] * 2 + ["val"] * 3 + ["test"] * 3
TEMPLATES = (
    "A {c} {s}.",
    "a {s} that is {c}",
    "There is a {c} {s} on white.",
    "one {c} {s} in the middle",
    "a picture of a {c} {s}",
    "the {s} is {c} .",
)


@dataclass(frozen=True)
class TinyCoco:
    """Where the tiny COCO lies and what it holds."""

    root: Path
    ids: list[int]
    splits: list[str]
    colours: list[str]
    shapes: list[str]
    captions: list[list[str]]
    files: list[str]
    features: np.ndarray  # [n + 1, 8]: rows in shuffled order, one extra image
    feature_ids: list[int]


def _draw(colour: str, shape: str, index: int) -> Image.Image:
    image = Image.new("RGB", (48, 40), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    box = (10 + index % 5, 6, 38 + index % 5, 34)
    fill = COLOURS[colour]
    (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=fill)
    return image


def write_tiny_coco(root: Path, force: bool = False) -> TinyCoco:
    """Write the tiny COCO under ``root`` (a new or empty folder) and describe it.

    Args:
        root: the folder; created if missing.
        force: write even if ``root`` already holds files (those of the tiny COCO are
            replaced, others kept).

    Raises:
        FileExistsError: ``root`` already holds files and ``force`` is false: writing would
            replace a ``dataset_coco.json`` there, such as a real Karpathy file.
    """
    existing = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    if existing and not force:
        shown = ", ".join(existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise FileExistsError(
            f"{root} is not empty (it holds {shown}); the tiny COCO would overwrite its "
            f"dataset_coco.json and images. Give a new or empty folder, or overwrite with "
            f"flowbridge-coco tiny --force (write_tiny_coco(..., force=True))"
        )
    rng = np.random.default_rng(0)
    ids, colours, shapes, captions, files, records = [], [], [], [], [], []
    for i, split in enumerate(SPLITS):
        image_id = 1000 + 7 * i
        colour, shape = list(COLOURS)[i % 3], SHAPES[(i // 3) % 2]
        folder = "train2014" if split == "train" else "val2014"
        suffix = ".png" if i == 4 else ".jpg"
        filename = f"COCO_{folder}_{image_id:012d}{suffix}"
        path = root / "images" / folder / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        _draw(colour, shape, i).save(path, quality=95)
        texts = [t.format(c=colour, s=shape) for t in TEMPLATES[: 6 if i == 2 else 5]]
        ids.append(image_id)
        colours.append(colour)
        shapes.append(shape)
        captions.append(texts)
        files.append(f"{folder}/{filename}")
        sentences = [{"raw": text, "tokens": text.lower().split()} for text in texts]
        if i == 1:  # a sentence with tokens only, as some preprocessed copies have
            sentences[0] = {"tokens": texts[0].lower().split()}
            captions[-1][0] = texts[0].lower()
        records.append(
            {
                "cocoid": image_id,
                "filepath": folder,
                "filename": filename,
                "split": split,
                "sentences": sentences,
            }
        )
    (root / "dataset_coco.json").write_text(json.dumps({"images": records}), encoding="utf-8")

    for folder in ("train2014", "val2014"):
        chosen = [k for k, f in enumerate(files) if f.startswith(folder)]
        images = [{"id": ids[k], "file_name": files[k].split("/")[1]} for k in chosen]
        images.append({"id": 999, "file_name": f"COCO_{folder}_000000000999.jpg"})  # no caption
        annotations = [
            {"id": 10 * ids[k] + j, "image_id": ids[k], "caption": text}
            for k in chosen
            for j, text in enumerate(captions[k])
        ]
        out = root / "annotations" / f"captions_{folder}.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps({"images": images, "annotations": annotations}), encoding="utf-8")

    # Features: colour and shape one-hot plus noise, rows shuffled, one row of an unused image.
    order = rng.permutation(len(ids) + 1)
    feature_ids = [(ids + [5])[k] for k in order]
    rows = []
    for k in order:
        vector = rng.normal(0, 0.1, 8)
        if k < len(ids):
            vector[list(COLOURS).index(colours[k])] += 1
            vector[3 + SHAPES.index(shapes[k])] += 1
        rows.append(vector)
    features = np.stack(rows).astype(np.float32)
    np.save(root / "features.npy", features)
    (root / "feature_ids.txt").write_text("".join(f"{i}\n" for i in feature_ids), encoding="utf-8")
    return TinyCoco(
        root, ids, list(SPLITS), colours, shapes, captions, files, features, feature_ids
    )

"""Reading the tiny COCO: both annotation formats, image folders with a cache, feature files,
and the errors a malformed file gives."""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import PurePosixPath, PureWindowsPath

import numpy as np
import pytest
import torch

import flowbridge.plugins
import flowbridge_coco.images
import flowbridge_coco.plugin
from flowbridge.plugins import UnknownOptionError
from flowbridge_coco import (
    CocoDataError,
    CocoDataset,
    CocoFileNotFoundError,
    read_annotations,
    read_karpathy,
)
from flowbridge_coco.annotations import _inside_folder
from flowbridge_coco.testing import COLOURS, TinyCoco


def _dataset(coco: TinyCoco, **options) -> CocoDataset:
    return CocoDataset(root=str(coco.root), **{"size": 16, "workers": 2, **options})


# -- annotations -----------------------------------------------------------------------------------
def test_karpathy_file_gives_images_in_file_order(tiny_coco):
    images = read_karpathy(tiny_coco.root / "dataset_coco.json")
    assert [i.id for i in images] == tiny_coco.ids
    assert [i.split for i in images] == tiny_coco.splits
    assert [i.file for i in images] == tiny_coco.files
    assert [list(i.captions) for i in images] == tiny_coco.captions


def test_official_files_by_split_match_the_karpathy_captions(tiny_coco):
    images = read_annotations(
        {
            "train": "annotations/captions_train2014.json",
            "test": "annotations/captions_val2014.json",
        },
        tiny_coco.root,
    )
    by_id = {i.id: i for i in images}
    assert sorted(by_id) == sorted(tiny_coco.ids)  # image 999 has no caption: left out
    for k, image_id in enumerate(tiny_coco.ids):
        image = by_id[image_id]
        assert image.file == tiny_coco.files[k]  # the set folder comes from the file name
        assert image.split == ("train" if tiny_coco.splits[k] == "train" else "test")
        assert list(image.captions) == tiny_coco.captions[k]


def _rewrite(path, edit):
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data), encoding="utf-8")


KARPATHY_ERRORS = [
    (lambda d: d["images"][3].pop("split"), "dataset_coco.json: images[3] has no 'split'"),
    (lambda d: d["images"][0].update(cocoid="12"), "images[0].cocoid must be int, got str"),
    (
        lambda d: d["images"][2]["sentences"][1].clear(),
        "images[2].sentences[1] has neither 'raw' nor 'tokens'",
    ),
    (lambda d: d["images"][5].update(sentences=[]), "images[5].sentences is empty"),
    (lambda d: d["images"][6].update(cocoid=1000), "image id 1000 appears twice"),
    (lambda d: d.pop("images"), "expected a JSON object with a 'images' list"),
    (lambda d: d["images"][1].pop("filename"), "images[1] has no 'filename'"),
    # A file outside the image folder (any image on the machine) is not read into the cache.
    (
        lambda d: d["images"][0].update(filepath="../../private"),
        "images[0] names the image file '../../private/",
    ),
    (
        lambda d: d["images"][2].update(filepath="", filename="/home/me/photo.jpg"),
        "images[2] names the image file '/home/me/photo.jpg', which is not inside the image",
    ),
]


@pytest.mark.parametrize(("edit", "message"), KARPATHY_ERRORS)
def test_malformed_karpathy_file_names_file_and_field(tiny_coco, edit, message):
    path = tiny_coco.root / "dataset_coco.json"
    _rewrite(path, edit)
    with pytest.raises(CocoDataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_annotations("dataset_coco.json", tiny_coco.root)


OFFICIAL_ERRORS = [
    (
        lambda d: d["annotations"][4].update(image_id=77),
        r"captions_val2014.json: annotations\[4\] has image_id 77, which is not in",
    ),
    (
        lambda d: d["annotations"][0].pop("caption"),
        r"captions_val2014.json: annotations\[0\] has no 'caption'",
    ),
    (lambda d: d["images"][1].pop("id"), r"captions_val2014.json: images\[1\] has no 'id'"),
    (
        lambda d: d["images"][0].update(file_name="val2014/../../x.jpg"),
        r"images\[0\] names the image file 'val2014/../../x.jpg', which is not inside",
    ),
    (
        lambda d: d["images"][1].update(file_name="C:\\Users\\me\\x.jpg"),
        r"images\[1\] names the image file 'C:.*x.jpg', which is not inside",
    ),
    (
        lambda d: d["images"][1].update(file_name="\\\\server\\share\\x.jpg"),
        r"images\[1\] names the image file '.*server.*share.*x.jpg', which is not inside",
    ),
    (
        lambda d: d["images"][0].update(file_name="val2014/../val2014/../../x.jpg"),
        r"images\[0\] names the image file 'val2014/\.\./val2014/\.\./\.\./x.jpg', which is not",
    ),
]


@pytest.mark.parametrize(("edit", "message"), OFFICIAL_ERRORS)
def test_malformed_official_file_names_file_and_field(tiny_coco, edit, message):
    _rewrite(tiny_coco.root / "annotations" / "captions_val2014.json", edit)
    with pytest.raises(CocoDataError, match=message):
        read_annotations({"test": "annotations/captions_val2014.json"}, tiny_coco.root)


def _name_images(tiny_coco, *names):
    """The test split's official file with its first images named ``names``; its images, read."""

    def rename(data):
        for record, name in zip(data["images"], names, strict=False):  # the first ones
            record["file_name"] = name

    _rewrite(tiny_coco.root / "annotations" / "captions_val2014.json", rename)
    images = read_annotations({"test": "annotations/captions_val2014.json"}, tiny_coco.root)
    return images[: len(names)]


def test_names_that_stay_inside_the_image_folder_are_read_at_their_normal_form(tiny_coco):
    first, second = [f.split("/")[1] for f in tiny_coco.files if f.startswith("val2014")][:2]
    images = _name_images(tiny_coco, f"val2014/../val2014/{first}", f"./val2014//{second}")
    assert [i.file for i in images] == [f"val2014/{first}", f"val2014/{second}"]
    loaded = flowbridge_coco.images.load_images(images, tiny_coco.root / "images", 16, workers=1)
    assert loaded.shape == (2, 3, 16, 16)


@pytest.mark.skipif(os.name == "nt", reason="file names that only POSIX takes as names")
def test_names_with_a_drive_or_a_backslash_are_plain_file_names_on_posix(tiny_coco):
    # On Windows C:x.jpg starts from drive C's current folder; on POSIX both are names.
    folder = tiny_coco.root / "images"
    source = folder / tiny_coco.files[0]
    for name in ("c:x.jpg", "\\x.jpg"):
        (folder / name).write_bytes(source.read_bytes())
    images = _name_images(tiny_coco, "c:x.jpg", "\\x.jpg")
    assert [i.file for i in images] == ["c:x.jpg", "\\x.jpg"]
    assert flowbridge_coco.images.load_images(images, folder, 16, workers=1).shape[0] == 2


@pytest.mark.skipif(os.name != "nt", reason="names that only Windows reads as a drive's")
@pytest.mark.parametrize("name", ["C:x.jpg", "\\x.jpg", "val2014\\..\\..\\x.jpg"])
def test_names_from_a_drive_are_refused_on_windows(tiny_coco, name):
    with pytest.raises(CocoDataError, match=r"images\[0\] names the image file .* not inside"):
        _name_images(tiny_coco, name)


@pytest.mark.parametrize(
    ("name", "posix", "windows"),
    [
        ("a/../a/x.jpg", "a/x.jpg", "a/x.jpg"),
        ("c:x.jpg", "c:x.jpg", None),
        ("\\x.jpg", "\\x.jpg", None),
        ("a\\..\\..\\x.jpg", "a\\..\\..\\x.jpg", None),
        ("a\\..\\b\\x.jpg", "a\\..\\b\\x.jpg", "b/x.jpg"),
        ("C:\\x.jpg", None, None),
        ("C:/x.jpg", None, None),
        ("//server/share/x.jpg", None, None),
        ("/x.jpg", None, None),
        ("../x.jpg", None, None),
        ("a/../../x.jpg", None, None),
    ],
)
def test_each_system_reads_a_name_as_its_paths_do(name, posix, windows):
    # Run on one system, the test reads names as both would.
    for system, expected in ((PurePosixPath, posix), (PureWindowsPath, windows)):
        if expected is None:
            with pytest.raises(CocoDataError, match="which is not inside the image folder"):
                _inside_folder(name, "images[0]", "f.json", system)
        else:
            assert _inside_folder(name, "images[0]", "f.json", system) == expected


def test_a_link_inside_the_image_folder_is_followed_and_dot_dot_stays_in_the_folder(
    tiny_coco, tmp_path
):
    # The folder's owner may keep a set folder elsewhere (another disk) behind a link: its
    # images are read. A ".." after the link names the image folder, not the link's target's.
    folder = tiny_coco.root / "images"
    elsewhere = tmp_path / "disk2" / "val2014"
    elsewhere.parent.mkdir()
    (folder / "val2014").rename(elsewhere)
    try:
        (folder / "val2014").symlink_to(elsewhere, target_is_directory=True)
    except OSError as exc:  # Windows without the privilege to make links
        pytest.skip(f"cannot make a symbolic link here ({exc})")
    first = next(f.split("/")[1] for f in tiny_coco.files if f.startswith("val2014"))
    (elsewhere.parent / "outside.jpg").write_bytes((elsewhere / first).read_bytes())
    images = _name_images(tiny_coco, f"val2014/{first}", "val2014/../outside.jpg")
    assert [i.file for i in images] == [f"val2014/{first}", "outside.jpg"]
    assert flowbridge_coco.images.load_images(images[:1], folder, 16, workers=1).shape[0] == 1
    with pytest.raises(CocoFileNotFoundError, match=r"no file at .*images.outside\.jpg"):
        flowbridge_coco.images.load_images(images[1:], folder, 16, workers=1)


def test_annotation_file_problems_say_what_to_do(tiny_coco):
    with pytest.raises(CocoFileNotFoundError, match="nope.json: no such file"):
        read_annotations("nope.json", tiny_coco.root)
    (tiny_coco.root / "broken.json").write_text('{"images": [', encoding="utf-8")
    # By its whole path: two splits' files may share a name in different folders.
    broken = re.escape(str(tiny_coco.root / "broken.json"))
    with pytest.raises(CocoDataError, match=f"^{broken}: not valid JSON"):
        read_annotations("broken.json", tiny_coco.root)
    (tiny_coco.root / "deep.json").write_text("[" * 10**5 + "]" * 10**5, encoding="utf-8")
    with pytest.raises(CocoDataError, match="deep.json: not valid JSON \\(maximum recursion"):
        read_annotations("deep.json", tiny_coco.root)
    with pytest.raises(CocoDataError, match="official COCO captions file, which has no splits"):
        read_annotations("annotations/captions_train2014.json", tiny_coco.root)
    with pytest.raises(CocoDataError, match="not an official COCO captions file"):
        read_annotations({"train": "dataset_coco.json"}, tiny_coco.root)


# -- the dataset, images mode ----------------------------------------------------------------------
def test_images_split_pairs_every_caption_with_its_shared_image(tiny_coco):
    dataset = _dataset(tiny_coco)
    train = dataset.split("train")
    chosen = [k for k, s in enumerate(tiny_coco.splits) if s in ("train", "restval")]
    # captions_per_image = 5 by default: image 2's sixth caption is no pair, but a reference.
    assert len(train) == 5 * len(chosen)
    assert train.b == [c for k in chosen for c in tiny_coco.captions[k][:5]]
    ids = [m["image_id"] for m in train.meta]
    assert ids == [tiny_coco.ids[k] for k in chosen for _ in range(5)]
    assert train.meta[10]["references"] == tiny_coco.captions[2]  # all six
    first = train.a[0]
    assert first.dtype == torch.uint8 and first.shape == (3, 16, 16)
    assert all(item.data_ptr() == first.data_ptr() for item in train.a[:5])  # one image, shared
    assert len(dataset.split("val")) == 15 and len(dataset.split("test")) == 15


def test_images_are_cropped_resized_and_keep_their_colour(tiny_coco):
    test = _dataset(tiny_coco).images("test")
    assert test.data.shape == (3, 3, 16, 16)
    for k, image in enumerate(test.data.float() / 255):
        colour = tiny_coco.colours[tiny_coco.ids.index(test.ids[k])]
        centre = image[:, 6:10, 6:10].mean(dim=(1, 2))  # the shape covers the centre
        expected = torch.tensor(COLOURS[colour], dtype=torch.float) / 255
        assert torch.allclose(centre, expected, atol=0.08)
        assert image[:, 0, 0].min() > 0.9  # the white corner after the centre crop


def test_image_cache_is_reused_and_rebuilt_when_a_file_changes(tiny_coco, monkeypatch):
    first = _dataset(tiny_coco).images("val").data
    cache = tiny_coco.root / "cache" / "images-val-3-16px-3c.pt"
    assert cache.is_file()
    assert not list(cache.parent.glob("*.tmp"))  # written atomically, nothing left over

    def refuse(*args):
        raise AssertionError("decoded an image although the cache is valid")

    monkeypatch.setattr(flowbridge_coco.images, "_decode", refuse)
    assert torch.equal(_dataset(tiny_coco).images("val").data, first)

    changed = tiny_coco.root / "images" / tiny_coco.files[tiny_coco.splits.index("val")]
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="although the cache is valid"):
        _dataset(tiny_coco).images("val")
    monkeypatch.undo()
    assert torch.equal(_dataset(tiny_coco).images("val").data, first)  # rebuilt, same pixels

    # Bytes changed inside the cached pixels (the file's size unchanged): torch.load alone
    # reads them as other pixels; the archive's checksum tells, and the cache is rebuilt.
    with zipfile.ZipFile(cache) as archive:
        part = max(archive.infolist(), key=lambda info: info.file_size)
        pixels = archive.read(part)
    data = bytearray(cache.read_bytes())
    start = data.find(pixels[:64]) + len(pixels) // 2
    data[start : start + 8] = bytes(255 - byte for byte in data[start : start + 8])
    cache.write_bytes(bytes(data))
    assert not torch.equal(torch.load(cache, weights_only=True)["images"], first)
    assert torch.equal(_dataset(tiny_coco).images("val").data, first)
    assert torch.equal(torch.load(cache, weights_only=True)["images"], first)

    cache.write_bytes(b"not a torch file")  # a damaged cache is rebuilt, not an error
    assert torch.equal(_dataset(tiny_coco).images("val").data, first)
    assert cache.read_bytes()[:2] == b"PK"


def test_no_cache_and_missing_image_file(tiny_coco):
    dataset = _dataset(tiny_coco, cache="")
    dataset.images("test")
    assert not (tiny_coco.root / "cache").exists()
    missing = tiny_coco.root / "images" / tiny_coco.files[-1]
    missing.unlink()
    with pytest.raises(CocoFileNotFoundError, match=f"image {tiny_coco.ids[-1]} .*no file at"):
        _dataset(tiny_coco).images("test")
    with pytest.raises(CocoFileNotFoundError, match="image folder .* does not exist"):
        _dataset(tiny_coco, images="elsewhere").images("test")


def test_split_options_map_limit_and_filter(tiny_coco):
    splits = {"train": "train", "restval": "", "val": "val", "test": "test"}
    dataset = _dataset(tiny_coco, splits=splits, max_images=4, captions_per_image=2)
    train = dataset.split("train")
    assert [m["image_id"] for m in train.meta] == [i for i in tiny_coco.ids[:4] for _ in "12"]
    short = _dataset(tiny_coco, max_length=4, captions_per_image=0).split("test")
    assert short.b and all(len(c.split()) <= 4 for c in short.b)
    assert len(short) < 15
    restval = [k for k, s in enumerate(tiny_coco.splits) if s == "restval"]
    assert set(_dataset(tiny_coco).split("train").b) >= {
        c for k in restval for c in tiny_coco.captions[k][:5]
    }
    with pytest.raises(CocoDataError, match=r"splits \['restval'\] that the coco option splits"):
        _dataset(tiny_coco, splits={"train": "train", "val": "val", "test": "test"}).split("val")


def test_official_annotations_through_the_dataset(tiny_coco):
    dataset = _dataset(
        tiny_coco,
        annotations={"train2014": "annotations/captions_train2014.json",
                     "val2014": "annotations/captions_val2014.json"},
        splits={"train2014": "train", "val2014": "test"},
    )  # fmt: skip
    assert len(dataset.images("train")) == 10 and len(dataset.images("test")) == 8
    with pytest.raises(CocoDataError, match="the val split has no images"):
        dataset.split("val")


# -- features mode ---------------------------------------------------------------------------------
def _features(coco: TinyCoco, **options) -> CocoDataset:
    defaults = {"features": "features.npy", "feature_ids": "feature_ids.txt"}
    return CocoDataset(root=str(coco.root), mode="features", **{**defaults, **options})


def test_feature_rows_are_found_by_image_id(tiny_coco):
    test = _features(tiny_coco).split("test")
    for item, meta in zip(test.a, test.meta, strict=True):
        row = tiny_coco.feature_ids.index(meta["image_id"])
        assert torch.equal(item, torch.from_numpy(tiny_coco.features[row]))


@pytest.mark.parametrize("suffix", [".pt", ".json", ".npy"])
def test_feature_files_in_every_format(tiny_coco, suffix):
    ids = tiny_coco.root / f"ids{suffix}"
    if suffix == ".json":
        ids.write_text(json.dumps(tiny_coco.feature_ids), encoding="utf-8")
    elif suffix == ".npy":
        np.save(ids, np.array(tiny_coco.feature_ids))
    else:
        torch.save(torch.tensor(tiny_coco.feature_ids), ids)
    torch.save(torch.from_numpy(tiny_coco.features), tiny_coco.root / "features.pt")
    reference = _features(tiny_coco).images("val").data
    assert torch.equal(
        _features(tiny_coco, features="features.pt", feature_ids=ids.name).images("val").data,
        reference,
    )


def test_malformed_feature_files(tiny_coco):
    root = tiny_coco.root
    (root / "short.txt").write_text(
        "".join(f"{i}\n" for i in tiny_coco.feature_ids[:-1]), encoding="utf-8"
    )
    with pytest.raises(CocoDataError, match="short.txt lists 18 image ids but features.npy has 19"):
        _features(tiny_coco, feature_ids="short.txt").images("val")
    (root / "bad.txt").write_text("1000\nabc\n", encoding="utf-8")
    with pytest.raises(CocoDataError, match="bad.txt: line 2 is 'abc', not an image id"):
        _features(tiny_coco, feature_ids="bad.txt").images("val")
    without = [i for i in tiny_coco.feature_ids if i != tiny_coco.ids[-1]] + [4]
    (root / "other.txt").write_text("".join(f"{i}\n" for i in without), encoding="utf-8")
    message = f"have no feature row, e.g. ids \\[{tiny_coco.ids[-1]}"
    with pytest.raises(CocoDataError, match=message):
        _features(tiny_coco, feature_ids="other.txt").images("test")
    nan = tiny_coco.features.copy()
    nan[3, 2] = np.nan
    np.save(root / "nan.npy", nan)
    with pytest.raises(CocoDataError, match=r"nan.npy: rows \[3\] contain NaN"):
        _features(tiny_coco, features="nan.npy").images("val")
    np.save(root / "ints.npy", np.zeros((19, 8), dtype=np.int64))
    with pytest.raises(CocoDataError, match="must hold a float array"):
        _features(tiny_coco, features="ints.npy").images("val")
    with pytest.raises(CocoFileNotFoundError, match="missing.npy: no such file"):
        _features(tiny_coco, features="missing.npy").images("val")


# -- options and the plugin ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"mode": "pixels"}, ValueError, "mode must be one of"),
        ({"features": "f.npy"}, ValueError, "features applies to mode='features' only"),
        ({"mode": "features", "feature_ids": "i.txt"}, ValueError, "features is required"),
        ({"mode": "features", "features": "f.npy", "feature_ids": "i.txt", "size": 32},
         ValueError, "size applies to mode='images' only"),
        ({"size": 20}, ValueError, "multiple of 8"),
        ({"splits": {"restval": "training"}}, ValueError, "splits.restval must be one of"),
        ({"max_images": -1}, ValueError, "max_images must be >= 0"),
        ({"colour": True}, TypeError, r"unknown coco dataset options \['colour'\]"),
        (
            {"mdoe": "images"},
            UnknownOptionError,
            r"options \['mdoe' \(did you mean 'mode'\?\)\]; .*\(in a run config: data\.options\)",
        ),
    ],
)  # fmt: skip
def test_bad_options(options, error, message):
    with pytest.raises(error, match=message):
        CocoDataset(**options)


def test_registered_as_coco_and_options_rebuild_it(tiny_coco):
    with flowbridge.plugins.isolated(flowbridge_coco.plugin) as registry:
        dataset = registry.get_dataset("coco", root=str(tiny_coco.root), size=16)
    assert isinstance(dataset, CocoDataset) and dataset.domains == ("image", "text")
    assert CocoDataset(**dataset.options).options == dataset.options
    json.dumps(dataset.options)  # JSON-compatible, as checkpoints keep it

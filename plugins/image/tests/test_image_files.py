import os
import re

import numpy as np
import pytest
import torch
from PIL import Image

from flowbridge.files import atomic_write as write_atomic
from flowbridge_image import ImageDomain, image_grid, load_image, save_image_grid

# Writing to 8 bits rounds each value to the nearest of 256 levels.
QUANTISATION = 0.5 / 255 + 1e-6


@pytest.mark.parametrize("channels", [1, 3])
def test_png_round_trip_is_exact_up_to_8_bit_quantisation(tmp_path, channels):
    domain = ImageDomain(size=16, channels=channels)
    image = torch.rand(channels, 16, 16)
    path = save_image_grid(image, tmp_path / "one.png")
    loaded = domain.read_item(str(path))
    assert loaded.shape == (channels, 16, 16)
    assert (loaded - image).abs().max() <= QUANTISATION
    assert Image.open(path).mode == ("L" if channels == 1 else "RGB")


@pytest.mark.parametrize("channels", [1, 3])
def test_write_items_lays_out_inputs_as_rows_and_samples_as_columns(tmp_path, channels):
    domain = ImageDomain(size=16, channels=channels)
    rows, samples, side, padding = 2, 3, 16, 2
    items = [[torch.rand(channels, side, side) for _ in range(samples)] for _ in range(rows)]
    path = domain.write_items(items, tmp_path / "grid")
    assert path == tmp_path / "grid.png"
    grid = load_image(path)
    step = side + padding
    assert grid.shape == (channels, rows * step - padding, samples * step - padding)
    for i in range(rows):
        for k in range(samples):
            cell = grid[:, i * step : i * step + side, k * step : k * step + side]
            assert (cell - items[i][k]).abs().max() <= QUANTISATION, (i, k)
    # Black cells: what is white is the padding, exactly the gaps between rows and columns.
    black = [[torch.zeros(channels, side, side)] * samples] * rows
    grid = load_image(domain.write_items(black, tmp_path / "black"))
    white = torch.zeros(grid.shape[1:], dtype=torch.bool)
    for gap in range(1, rows):
        white[gap * step - padding : gap * step, :] = True
    for gap in range(1, samples):
        white[:, gap * step - padding : gap * step] = True
    assert torch.equal((grid == 1).all(0), white)


def test_save_image_grid_accepts_one_row_and_no_padding(tmp_path):
    images = torch.rand(4, 3, 8, 8)
    grid = load_image(save_image_grid(images, tmp_path / "row.png", padding=0))
    expected = torch.cat(list(images), dim=2)
    assert grid.shape == (3, 8, 32)
    assert (grid - expected).abs().max() <= QUANTISATION


def test_image_grid_shows_translates_lists_as_the_png_grid_does(tmp_path):
    # A notebook displays a Pillow image inline: translate's images[i][k] go in as they are.
    items = [[torch.rand(3, 8, 8) for _ in range(3)] for _ in range(2)]
    picture = image_grid(items)
    assert isinstance(picture, Image.Image) and picture.size == (3 * 10 - 2, 2 * 10 - 2)
    written = load_image(
        save_image_grid(torch.stack([torch.stack(r) for r in items]), tmp_path / "g.png")
    )
    shown = torch.from_numpy(np.array(picture)).permute(2, 0, 1).float() / 255
    assert torch.equal(shown, written)
    assert image_grid(items[0]).size == image_grid(torch.stack(items[0])).size == (28, 8)
    with pytest.raises(ValueError, match=r"row lengths \[3, 2\]"):
        image_grid([items[0], items[1][:2]])
    with pytest.raises(TypeError, match="must be \\[C, H, W\\] tensors, got str"):
        image_grid([["a red circle"]])
    with pytest.raises(TypeError, match="got ndarray in the list: convert with torch.as_tensor"):
        image_grid([np.zeros((3, 8, 8)), np.zeros((3, 8, 8))])


def test_write_items_accepts_any_item_kind_and_refuses_ragged_rows(tmp_path):
    domain = ImageDomain(size=16, channels=1)
    gray = np.full((16, 16), 51, dtype=np.uint8)
    path = domain.write_items([[gray, torch.zeros(1, 16, 16)]], tmp_path / "mixed.png")
    grid = load_image(path)
    torch.testing.assert_close(grid[:, :, :16], torch.full((1, 16, 16), 0.2))
    with pytest.raises(ValueError, match=r"row lengths \[2, 1\]"):
        domain.write_items([[gray, gray], [gray]], tmp_path / "ragged")
    with pytest.raises(ValueError, match=r"items\[0\]\[1\] must have shape \[1, 16, 16\]"):
        domain.write_items([[gray, torch.zeros(3, 16, 16)]], tmp_path / "bad")


def test_read_item_centre_crops_and_resizes(tmp_path):
    # A wide image: red | green | blue thirds. The centre square is all green.
    pixels = np.zeros((16, 48, 3), dtype=np.uint8)
    pixels[:, :16, 0] = pixels[:, 16:32, 1] = pixels[:, 32:, 2] = 255
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    image = ImageDomain(size=16, channels=3).read_item(str(tmp_path / "wide.png"))
    assert image.shape == (3, 16, 16)
    torch.testing.assert_close(image, torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1).expand(3, 16, 16))
    # Upsampling a constant image keeps it constant.
    Image.new("RGB", (8, 8), (255, 0, 0)).save(tmp_path / "small.png")
    image = ImageDomain(size=32, channels=3).read_item(str(tmp_path / "small.png"))
    assert image.shape == (3, 32, 32)
    torch.testing.assert_close(image[0], torch.ones(32, 32))


def test_read_item_reads_jpeg_and_converts_channels(tmp_path):
    Image.new("RGB", (16, 16), (200, 40, 90)).save(tmp_path / "pink.jpg", quality=95)
    rgb = ImageDomain(size=16, channels=3).read_item(str(tmp_path / "pink.jpg"))
    mean = rgb.mean(dim=(1, 2)) * 255
    assert (mean - torch.tensor([200.0, 40.0, 90.0])).abs().max() < 4  # JPEG is lossy
    gray = ImageDomain(size=16, channels=1).read_item(str(tmp_path / "pink.jpg"))
    # Pillow's luma: L = (299 R + 587 G + 114 B) / 1000.
    luma = (299 * 200 + 587 * 40 + 114 * 90) / 1000
    assert gray.shape == (1, 16, 16)
    assert abs(gray.mean().item() * 255 - luma) < 4


def test_load_image_keeps_the_files_channels_and_size_by_default(tmp_path):
    Image.new("L", (8, 8), 128).save(tmp_path / "gray.png")
    Image.new("P", (8, 8), 3).save(tmp_path / "palette.png")
    assert load_image(tmp_path / "gray.png").shape == (1, 8, 8)
    assert load_image(tmp_path / "palette.png").shape == (3, 8, 8)
    Image.new("L", (8, 4)).save(tmp_path / "wide.png")
    assert load_image(tmp_path / "wide.png").shape == (1, 4, 8)


def test_unreadable_or_missing_files_raise_naming_the_file(tmp_path):
    domain = ImageDomain(size=16)
    missing = str(tmp_path / "missing.png")
    with pytest.raises(ValueError, match=re.escape(repr(missing)) + ": no such file"):
        domain.read_item(missing)
    broken = tmp_path / "broken.png"
    broken.write_text("this is not a PNG", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(repr(str(broken))) + ".*PNG or JPEG"):
        domain.read_item(str(broken))
    with pytest.raises(ValueError, match="Is a directory"):
        domain.read_item(str(tmp_path))


def test_a_photo_is_turned_upright_as_its_exif_orientation_says(tmp_path):
    # 40 wide, 20 tall as stored, left half red; orientation 6: "rotate 90° clockwise to view".
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20, 0] = 255
    stored = Image.fromarray(pixels)
    exif = stored.getexif()
    exif[0x0112] = 6
    stored.save(tmp_path / "phone.png", exif=exif.tobytes())
    image = load_image(tmp_path / "phone.png")
    assert image.shape == (3, 40, 20)  # upright: 20 wide, 40 tall
    # Rotated clockwise, the stored left half is now the top half.
    assert image[0, :20].min() == 1 and image[0, 20:].max() == 0


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    levels = np.tile(np.array([0, 128, 1000, 32768, 65535], dtype=np.uint16), (16, 16 // 5 + 1))[
        :, :16
    ]
    Image.fromarray(levels).save(tmp_path / "depth.png")
    expected = torch.from_numpy(levels.astype(np.float32) / 65535)
    torch.testing.assert_close(load_image(tmp_path / "depth.png")[0], expected)
    rgb = load_image(tmp_path / "depth.png", channels=3)
    assert rgb.shape == (3, 16, 16) and torch.equal(rgb[0], rgb[2])
    resized = load_image(tmp_path / "depth.png", size=3)
    assert resized.shape == (1, 3, 3) and resized.min() >= 0 and resized.max() <= 1
    # The same for an in-memory PIL image handed to collate.
    domain = ImageDomain(size=16, channels=1)
    torch.testing.assert_close(domain.collate([Image.open(tmp_path / "depth.png")])[0, 0], expected)


@pytest.mark.parametrize("mode, dtype", [("I;16B", ">u2"), ("I;16", "<u2")])
def test_16_bit_grayscale_of_either_byte_order_reads_as_one_channel(tmp_path, mode, dtype):
    # A TIFF keeps its byte order: Pillow reopens a big-endian one as "I;16B" (a PNG comes back
    # as "I;16"), which channels=None once read as RGB.
    levels = (np.arange(48, dtype=np.uint16).reshape(6, 8) * 1365).astype(dtype)
    Image.frombytes(mode, (8, 6), levels.tobytes()).save(tmp_path / "depth.tiff")
    with Image.open(tmp_path / "depth.tiff") as stored:
        assert stored.mode == mode
    image = load_image(tmp_path / "depth.tiff")
    assert image.shape == (1, 6, 8)
    torch.testing.assert_close(image[0], torch.from_numpy(levels.astype(np.float32) / 65535))


def test_images_without_a_known_range_and_bad_arguments_are_refused(tmp_path):
    Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(ValueError, match=r"float.tiff'.*32-bit floating-point image .*'F'"):
        load_image(tmp_path / "float.tiff")
    Image.fromarray(np.ones((4, 4), dtype=np.uint8)).save(tmp_path / "one.png")
    for kwargs, error, match in [
        ({"channels": 2}, ValueError, "channels must be 1, 3 or None .*got 2"),
        ({"channels": "3"}, ValueError, "channels must be 1, 3 or None .*got '3'"),
        ({"size": 0}, ValueError, "size must be >= 1, got 0"),
        ({"size": 2.5}, TypeError, "size must be an int"),
    ]:
        with pytest.raises(error, match=match):
            load_image(tmp_path / "one.png", **kwargs)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got NoneType"):
        load_image(None)


@pytest.mark.parametrize(
    "images, error, match",
    [
        (torch.zeros(2, 2, 3, 8, 8, dtype=torch.uint8), TypeError, "got torch.uint8"),
        (np.zeros((8, 8, 3)), TypeError, "ndarray"),
        (torch.zeros(8, 8), ValueError, r"got \[8, 8\]"),
        (torch.zeros(1, 2, 2, 4, 8, 8), ValueError, r"got \[1, 2, 2, 4, 8, 8\]"),
        (torch.zeros(2, 2, 8, 8), ValueError, r"C = 1 or 3, got \[2, 2, 8, 8\]"),
        (torch.full((3, 8, 8), 1.5), ValueError, r"\[0, 1\]"),
        (torch.full((3, 8, 8), float("nan")), ValueError, "NaN"),
        (torch.zeros(0, 3, 8, 8), ValueError, r"at least one pixel, got shape \[0, 3, 8, 8\]"),
        (torch.zeros(2, 0, 3, 8, 8), ValueError, "at least one pixel"),
        (torch.zeros(3, 0, 8), ValueError, "at least one pixel"),
    ],
)
def test_save_image_grid_refuses_bad_tensors(tmp_path, images, error, match):
    with pytest.raises(error, match=match):
        save_image_grid(images, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_save_image_grid_refuses_negative_padding(tmp_path):
    with pytest.raises(ValueError, match="padding must be >= 0, got -1"):
        save_image_grid(torch.zeros(3, 8, 8), tmp_path / "bad.png", padding=-1)


def test_writes_are_atomic(tmp_path, monkeypatch):
    import flowbridge_image.files as files

    # The grid goes through the core's atomic_write (whose own guarantee is checked below).
    written = []

    def spy(path, write):
        written.append(path)
        return write_atomic(path, write)

    monkeypatch.setattr(files, "atomic_write", spy)
    target = tmp_path / "nested" / "grid.png"
    assert written == [save_image_grid(torch.zeros(3, 8, 8), target)] == [target]
    before = target.read_bytes()

    def fail(file):
        file.write(b"half a file")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(target, fail)
    assert target.read_bytes() == before
    assert os.listdir(target.parent) == ["grid.png"]  # no temporary file left behind

import math
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import flowbridge_image.plugin
from flowbridge import plugins
from flowbridge.domain import LatentSpec
from flowbridge_image import ImageDomain
from flowbridge_image.losses import edge_map


@pytest.fixture
def registered():
    name = plugins.register(flowbridge_image.plugin, name="image-test")
    yield
    plugins.unregister(name)


def test_plugin_registers_the_image_domain(registered):
    assert plugins.domains()["image"] is ImageDomain
    domain = plugins.get_domain("image", size=16, channels=1)
    assert domain.options["size"] == 16 and domain.name == "image"


@pytest.mark.parametrize(
    "loss, output, per_element",
    [
        ("l1", lambda x: x + 0.5, 0.5),
        ("l2", lambda x: x - 0.5, 0.25),
        # Zero logits say p = 1/2 for every pixel: -log(1/2) whatever the target.
        ("bce", lambda x: torch.zeros_like(x), math.log(2)),
    ],
)
def test_reconstruction_losses_are_per_sample_sums(loss, output, per_element):
    domain = ImageDomain(size=16, channels=3, loss=loss)
    x = domain.example_batch(2, torch.Generator().manual_seed(0))
    expected = torch.full((2,), per_element * 3 * 16 * 16)
    torch.testing.assert_close(domain.reconstruction_loss(output(x), x), expected)


def test_the_edge_map_marks_both_sides_of_every_edge():
    # One grey pixel (0.5 in the green channel only) on black, and a white right-hand column.
    x = torch.zeros(1, 3, 4, 5)
    x[0, 1, 1, 1] = 0.5
    x[0, :, :, 4] = 1.0
    expected = torch.tensor(
        [
            [0.0, 0.5, 0.0, 1.0, 1.0],
            [0.5, 0.5, 0.5, 1.0, 1.0],
            [0.0, 0.5, 0.0, 1.0, 1.0],
            [0.0, 0.0, 0.0, 1.0, 1.0],
        ]
    )
    torch.testing.assert_close(edge_map(x), expected[None, None])


@pytest.mark.parametrize("loss", ["l1", "l2", "bce"])
def test_edge_weight_weighs_each_pixels_loss_by_its_edge(loss):
    plain = ImageDomain(size=16, channels=3, loss=loss)
    weighted = ImageDomain(size=16, channels=3, loss=loss, edge_weight=3.0)
    x = plain.example_batch(2, torch.Generator().manual_seed(0))
    output = torch.rand(x.shape, generator=torch.Generator().manual_seed(1))
    # By hand: the same per-pixel terms, each times 1 + 3 e (e broadcast over the channels).
    per_pixel = {
        "l1": (output - x).abs(),
        "l2": (output - x).square(),
        "bce": F.binary_cross_entropy_with_logits(output, x, reduction="none"),
    }[loss]
    expected = ((1 + 3.0 * edge_map(x)) * per_pixel).flatten(1).sum(dim=1)
    torch.testing.assert_close(weighted.reconstruction_loss(output, x), expected)
    assert (weighted.reconstruction_loss(output, x) > plain.reconstruction_loss(output, x)).all()
    # A flat image has no edges: the weighted loss is the plain one.
    flat = torch.full_like(x, 0.3)
    torch.testing.assert_close(
        weighted.reconstruction_loss(output, flat), plain.reconstruction_loss(output, flat)
    )


def test_bce_loss_is_smallest_at_the_targets_logits():
    domain = ImageDomain(size=16, channels=1, loss="bce")
    x = domain.example_batch(1, torch.Generator().manual_seed(0)).clamp(0.01, 0.99)
    best = domain.reconstruction_loss(torch.logit(x), x)
    assert (domain.reconstruction_loss(torch.logit(x) + 0.3, x) > best).all()


def test_reconstruction_loss_refuses_a_mismatched_output():
    domain = ImageDomain(size=16, channels=3)
    with pytest.raises(ValueError, match=r"batch's shape \[2, 3, 16, 16\], got \[2, 1, 16, 16\]"):
        domain.reconstruction_loss(torch.zeros(2, 1, 16, 16), torch.zeros(2, 3, 16, 16))


@pytest.mark.parametrize("loss", ["l1", "l2", "bce"])
def test_generate_returns_images_in_the_unit_range(loss):
    domain = ImageDomain(size=16, channels=3, hidden=4, loss=loss)
    spec = LatentSpec(shared=4, residual=2)
    decoder = domain.build_decoder(spec)
    with torch.no_grad():  # make outputs reach far outside [0, 1]
        decoder.blocks[-1].conv.bias.fill_(3.0)
        decoder.blocks[-1].conv.bias[0] = -3.0
    shared, residual = torch.randn(5, 4), torch.randn(5, 2)
    images = domain.generate(decoder, shared, residual)
    assert len(images) == 5
    for image in images:
        assert image.shape == (3, 16, 16) and image.dtype == torch.float32
        assert image.min() >= 0 and image.max() <= 1 and not image.requires_grad
    raw = decoder(shared, residual).detach()
    expected = torch.sigmoid(raw) if loss == "bce" else raw.clamp(0, 1)
    torch.testing.assert_close(torch.stack(images), expected)
    with pytest.raises(TypeError, match="takes one option, guidance"):
        domain.generate(decoder, shared, residual, beam_size=2)


def test_shared_dropout_decodes_rows_from_a_zero_code_in_training_only():
    domain = ImageDomain(size=16, channels=3, hidden=4, shared_dropout=0.5)
    decoder = domain.build_decoder(LatentSpec(shared=4, residual=2))
    shared, residual = torch.randn(64, 4), torch.randn(64, 2)
    torch.manual_seed(0)
    dropped = decoder(shared, residual)
    torch.manual_seed(0)
    keep = torch.rand(64, 1) >= 0.5
    # Each row is decoded from its own code or from zeros, as the draw says; about half each.
    expected = decoder._decode(torch.where(keep, shared, 0.0), residual)
    torch.testing.assert_close(dropped, expected)
    assert 16 < int(keep.sum()) < 48
    decoder.eval()  # no dropout outside training
    torch.testing.assert_close(decoder(shared, residual), decoder._decode(shared, residual))


def test_guidance_leans_each_image_from_the_residual_alone_towards_the_shared_code():
    domain = ImageDomain(size=16, channels=3, hidden=4, loss="bce", shared_dropout=0.2)
    decoder = domain.build_decoder(LatentSpec(shared=4, residual=2)).eval()
    shared, residual = torch.randn(3, 4), torch.randn(3, 2)
    with torch.no_grad():
        with_code = decoder(shared, residual)
        without = decoder(torch.zeros_like(shared), residual)
        torch.testing.assert_close(decoder.guided(shared, residual, 0.0), with_code)
        guided = decoder.guided(shared, residual, 1.5)
    torch.testing.assert_close(guided, with_code + 1.5 * (with_code - without))
    # generate: the domain's own weight (0 here), or the call's.
    plain = torch.stack(domain.generate(decoder, shared, residual))
    torch.testing.assert_close(plain, torch.sigmoid(with_code))
    steered = torch.stack(domain.generate(decoder, shared, residual, guidance=1.5))
    torch.testing.assert_close(steered, torch.sigmoid(guided))
    guiding = ImageDomain(**{**domain.options, "guidance": 1.5})
    torch.testing.assert_close(torch.stack(guiding.generate(decoder, shared, residual)), steered)


def test_guidance_is_refused_for_a_decoder_trained_without_shared_dropout():
    domain = ImageDomain(size=16, channels=3, hidden=4)
    decoder = domain.build_decoder(LatentSpec(shared=4, residual=2)).eval()
    with pytest.raises(ValueError, match="guidance 1.0 needs a decoder trained with image option"):
        domain.generate(decoder, torch.zeros(1, 4), torch.zeros(1, 2), guidance=1.0)


def test_output_to_batch_keeps_gradients():
    logits = torch.randn(2, 1, 16, 16, requires_grad=True)
    bce = ImageDomain(size=16, channels=1, loss="bce").output_to_batch(logits)
    torch.testing.assert_close(bce, torch.sigmoid(logits))
    assert ImageDomain(size=16, channels=1).output_to_batch(logits) is logits
    bce.sum().backward()
    assert logits.grad.abs().sum() > 0


def test_collate_accepts_every_documented_item_kind():
    domain = ImageDomain(size=16, channels=3)
    pixels = np.random.default_rng(0).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    expected = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    batch = domain.collate(
        [
            expected,  # float [C, H, W] in [0, 1]
            torch.from_numpy(pixels).permute(2, 0, 1).contiguous(),  # uint8 [C, H, W]
            pixels,  # uint8 numpy [H, W, C]
            Image.fromarray(pixels),  # PIL RGB
            Image.fromarray(pixels).convert("RGBA"),  # alpha is dropped
            expected.double(),  # float64 becomes the default dtype
        ]
    )
    assert batch.shape == (6, 3, 16, 16) and batch.dtype == torch.float32
    for image in batch:
        torch.testing.assert_close(image, expected)


def test_an_empty_batch_is_refused_in_words():
    # Not the StopIteration of an empty row generator, which a map() over batches swallows.
    with pytest.raises(ValueError, match=r"batch needs at least one row, got \[0, 3, 16, 16\]"):
        ImageDomain(size=16).check_batch(torch.zeros(0, 3, 16, 16))


def test_collate_fills_the_batch_without_holding_every_converted_item(monkeypatch):
    # Collated up front, a split's uint8 pixels become 4-byte floats: a list of every
    # converted item before stacking would hold the whole split twice.
    domain = ImageDomain(size=16)
    convert, converted = domain._to_tensor, []

    def tracked(item, what):
        alive = sum(ref() is not None for ref in converted)
        assert alive <= 1, f"{alive} converted items alive while converting {what}"
        tensor = convert(item, what)
        converted.append(weakref.ref(tensor))
        return tensor

    monkeypatch.setattr(domain, "_to_tensor", tracked)
    items = [torch.full((3, 16, 16), k, dtype=torch.uint8) for k in range(6)]
    batch = domain.collate(items)
    assert torch.equal(batch, torch.stack([item.float() / 255 for item in items]))
    converted.clear()
    assert torch.equal(domain.check_batch(torch.stack(items)), batch)


def test_collate_converts_to_grayscale_and_accepts_2d_arrays():
    domain = ImageDomain(size=16, channels=1)
    rgb = np.random.default_rng(1).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    batch = domain.collate([Image.fromarray(rgb), gray, gray[:, :, None]])
    expected = torch.from_numpy(gray.copy()).float().div(255).unsqueeze(0)
    for image in batch:
        torch.testing.assert_close(image, expected)


@pytest.mark.parametrize(
    "item, error, match",
    [
        (torch.rand(3, 32, 32), ValueError, r"item 1 must have shape \[3, 16, 16\]"),
        (
            torch.rand(1, 16, 16),
            ValueError,
            r"item 1 must have shape \[3, 16, 16\] .*; convert it to 3 channels \(load_image",
        ),
        (
            torch.rand(16, 16, 3),
            ValueError,
            r"got \[16, 16, 3\]; it looks like \[H, W, C\]: .*permute",
        ),
        (torch.rand(16, 17, 3), ValueError, r"got \[16, 17, 3\]; resize it"),
        (torch.ones(3, 16, 16, dtype=torch.int64), TypeError, "got dtype torch.int64"),
        (torch.full((3, 16, 16), 255.0), ValueError, r"\[0, 1\], got min 255 and max 255"),
        (torch.full((3, 16, 16), -0.5), ValueError, r"\(x \+ 1\) / 2"),
        (torch.full((3, 16, 16), float("nan")), ValueError, "NaN"),
        (torch.zeros(3, 16, 16, dtype=torch.uint8)[:1], ValueError, r"\[3, 16, 16\]"),
        (
            np.zeros((16, 16, 3)),
            TypeError,
            r"must be uint8 .* got dtype float64.*permute\(2, 0, 1\)",
        ),
        (np.zeros((3, 16, 16), dtype=np.uint8), ValueError, r"\[H, W, 3\] .* got \[3, 16, 16\]"),
        (np.zeros((16, 16), dtype=np.uint8), ValueError, r"\[H, W, 3\] .* got \[16, 16\]"),
        (np.zeros((32, 32, 3), dtype=np.uint8), ValueError, r"\[3, 16, 16\] .* got \[3, 32, 32\]"),
        (Image.new("RGB", (32, 16)), ValueError, "16x16 pixels, got 32x16"),
        ([[0.0] * 16] * 16, TypeError, "got list"),
        ("cat.png", TypeError, "got str"),
    ],
)
def test_collate_refuses_bad_items_naming_what_was_expected(item, error, match):
    domain = ImageDomain(size=16, channels=3)
    good = torch.rand(3, 16, 16)
    with pytest.raises(error, match=match):
        domain.collate([good, item])


def test_a_batch_tensor_is_checked_and_converted_as_its_rows_would_be():
    domain = ImageDomain(size=16, channels=3)
    pixels = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    torch.testing.assert_close(domain.check_batch(pixels), pixels.float() / 255)
    images = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(domain.check_batch(images), images)
    with pytest.raises(ValueError, match=r"^batch row 0 values must lie in \[0, 1\].* x / 255"):
        domain.check_batch(images * 255)
    with pytest.raises(ValueError, match="^batch row 1 contains NaN"):
        domain.check_batch(torch.stack([images[0], torch.full((3, 16, 16), float("nan"))]))
    with pytest.raises(ValueError, match=r"got \[3, 16, 16\]; for a single item .* x\[None\]"):
        domain.check_batch(images[0])
    with pytest.raises(ValueError, match=r"^batch row 0 .*looks like \[H, W, C\]"):
        domain.check_batch(images.permute(0, 2, 3, 1))
    features = ImageDomain(encoder="features", feature_dim=5)
    vectors = torch.rand(3, 5)
    torch.testing.assert_close(features.check_batch(vectors), vectors)
    with pytest.raises(ValueError, match=r"\[batch, 5\] \(\[batch, feature_dim\]\), got \[5\]"):
        features.check_batch(vectors[0])


def test_collate_refuses_an_empty_list():
    with pytest.raises(ValueError, match="at least one item"):
        ImageDomain(size=16).collate([])


def test_example_batch_is_a_deterministic_valid_batch():
    domain = ImageDomain(size=32, channels=3)
    first = domain.example_batch(4, torch.Generator().manual_seed(7))
    assert first.shape == (4, 3, 32, 32)
    assert first.min() >= 0 and first.max() <= 1
    torch.testing.assert_close(first, domain.example_batch(4, torch.Generator().manual_seed(7)))
    assert not torch.allclose(first, domain.example_batch(4, torch.Generator().manual_seed(8)))
    torch.testing.assert_close(domain.collate(list(first)), first)


def test_fit_keeps_no_state():
    domain = ImageDomain(size=16)
    domain.fit([torch.rand(3, 16, 16)])
    assert domain.state_dict() == {}


def test_features_mode_items(tmp_path):
    domain = ImageDomain(encoder="features", feature_dim=6, hidden=8)
    vectors = [torch.randn(6), np.random.default_rng(0).normal(size=6)]
    batch = domain.collate(vectors)
    assert batch.shape == (2, 6) and batch.dtype == torch.float32
    torch.testing.assert_close(batch[1], torch.from_numpy(vectors[1]).float())
    with pytest.raises(ValueError, match=r"item 0 must have shape \[6\] \(feature_dim\)"):
        domain.collate([torch.randn(5)])
    with pytest.raises(TypeError, match="1-D float tensor or numpy array"):
        domain.collate([torch.rand(3, 16, 16).to(torch.uint8)])
    with pytest.raises(ValueError, match="NaN"):
        domain.collate([torch.full((6,), float("inf"))])


def test_features_mode_generates_unclamped_vectors():
    domain = ImageDomain(encoder="features", feature_dim=6, hidden=8)
    decoder = domain.build_decoder(LatentSpec(shared=3, residual=1))
    with torch.no_grad():
        decoder.net[-1].bias.fill_(-5.0)
    vectors = domain.generate(decoder, torch.randn(2, 3), torch.randn(2, 1))
    assert [v.shape for v in vectors] == [(6,), (6,)]
    assert torch.stack(vectors).min() < -1


def test_features_mode_files(tmp_path):
    domain = ImageDomain(encoder="features", feature_dim=6, hidden=8)
    vector = np.arange(6, dtype=np.float32)
    np.save(tmp_path / "a.npy", vector)
    torch.save(torch.from_numpy(vector), tmp_path / "a.pt")
    for name in ("a.npy", "a.pt"):
        torch.testing.assert_close(domain.read_item(str(tmp_path / name)), torch.arange(6.0))
    rows = [[torch.zeros(6), torch.ones(6), torch.full((6,), 2.0)], [torch.ones(6)] * 3]
    path = domain.write_items(rows, tmp_path / "samples")
    assert path == tmp_path / "samples.npy"
    np.testing.assert_array_equal(np.load(path), torch.stack([torch.stack(r) for r in rows]))
    (tmp_path / "bad.npy").write_text("not numpy", encoding="utf-8")
    for source, match in [
        ("missing.npy", r"missing\.npy.*: no such file"),
        ("bad.npy", "cannot read feature file"),
        ("a.png", r"expected a \.npy or \.pt file"),
    ]:
        with pytest.raises(ValueError, match=match):
            domain.read_item(str(tmp_path / source))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cuda_batch_is_checked_and_collated_where_it_is():
    domain = ImageDomain(size=16)
    batch = torch.rand(3, 3, 16, 16, device="cuda")
    assert domain.check_batch(batch).device == batch.device
    assert domain.collate(list(batch)).device == batch.device
    assert torch.equal(domain.check_batch(batch), batch)

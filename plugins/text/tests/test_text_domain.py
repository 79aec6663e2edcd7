"""TextDomain data handling: options, fit, collate, bad inputs, state, files, registration."""

from __future__ import annotations

import io
import json
import unicodedata
from importlib import metadata

import pytest
import torch

import flowbridge_text.plugin
from flowbridge import plugins
from flowbridge_text import BOS, EOS, PAD, UNK, NotFittedError, TextDomain


# -- options -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"embedding": 0}, ValueError, "embedding must be >= 1"),
        ({"hidden": 2.5}, TypeError, "hidden must be an int"),
        ({"layers": -1}, ValueError, "layers must be >= 1"),
        ({"max_length": True}, TypeError, "max_length must be an int"),
        ({"min_count": 0}, ValueError, "min_count must be >= 1"),
        ({"max_size": 4}, ValueError, "max_size > 4"),
        ({"word_dropout": 1.5}, ValueError, r"word_dropout must be in \[0, 1\]"),
        ({"embedding_dropout": "0.5"}, TypeError, "embedding_dropout must be a number"),
        ({"encoder_dropout": -0.1}, ValueError, r"encoder_dropout must be in \[0, 1\]"),
        ({"colour": 1}, TypeError, "colour"),
    ],
)
def test_bad_options_raise(options, error, match):
    with pytest.raises(error, match=match):
        TextDomain(**options)


def test_defaults_are_the_original_sizes_and_options_are_json():
    domain = TextDomain()
    assert domain.options == {
        "embedding": 300,
        "hidden": 1024,
        "decoder_hidden": 512,
        "layers": 2,
        "decoder_layers": 1,
        "max_length": 40,
        "min_count": 4,
        "max_size": None,
        "word_dropout": 0.8,
        "embedding_dropout": 0.5,
        "encoder_dropout": 0.0,
    }
    assert json.loads(json.dumps(domain.options)) == domain.options


# -- fit and collate -----------------------------------------------------------------------
def test_use_before_fit_raises_not_fitted(spec):
    domain = TextDomain(embedding=4, hidden=4, decoder_hidden=4)
    assert not domain.fitted
    for call in (
        lambda: domain.collate(["a dog"]),
        lambda: domain.build_encoder(spec),
        lambda: domain.build_decoder(spec),
    ):
        with pytest.raises(NotFittedError, match="call fit"):
            call()
    assert domain.state_dict() == {}


def test_fit_applies_min_count_and_max_size():
    texts = ["a dog runs", "a dog sits", "a cat"]
    domain = TextDomain(min_count=2)
    domain.fit(texts)
    assert domain.vocabulary.words[4:] == ["a", "dog"]
    domain = TextDomain(min_count=1, max_size=6)
    domain.fit(texts)
    assert domain.vocabulary.words[4:] == ["a", "dog"]


def test_fit_without_any_kept_word_raises():
    with pytest.raises(ValueError, match="lower min_count"):
        TextDomain(min_count=3).fit(["a dog", "a cat"])


def test_collate_layout(domain):
    x = domain.collate(["a red circle", "A RED circle at the top left."])
    ids = domain.vocabulary.encode
    expected = torch.tensor(
        [
            [BOS, *ids(["a", "red", "circle"]), EOS, *[PAD] * 5],
            [BOS, *ids(["a", "red", "circle", "at", "the", "top", "left", "."]), EOS],
        ]
    )
    assert x.dtype == torch.long
    assert torch.equal(x, expected)
    assert domain.to_text(x) == ["a red circle", "a red circle at the top left."]


def test_empty_and_blank_texts_are_bos_eos(domain):
    assert torch.equal(domain.collate(["", "  \n"]), torch.tensor([[BOS, EOS], [BOS, EOS]]))
    assert domain.to_text(domain.collate([""])) == [""]


def test_unknown_words_become_unk(domain):
    x = domain.collate(["zebras gallop", "a zebra"])
    assert x[0].tolist() == [BOS, UNK, UNK, EOS]
    assert x[1].tolist() == [BOS, domain.vocabulary.encode(["a"])[0], UNK, EOS]
    assert domain.to_text(x) == ["<unk> <unk>", "a <unk>"]


def test_spellings_of_one_word_get_one_id():
    domain = TextDomain(min_count=1)
    domain.fit(["café au lait, don't"])
    x = domain.collate(["café au lait, don't", unicodedata.normalize("NFD", "Café au lait, don’t")])
    assert torch.equal(x[0], x[1]) and UNK not in x
    assert domain.to_text(x[1:]) == ["café au lait, don't"]


def test_over_long_text_keeps_first_max_length_words_and_eos(captions):
    domain = TextDomain(max_length=3, min_count=1)
    domain.fit(captions)
    x = domain.collate(["a red circle at the top left", "a red"])
    assert x.shape == (2, 5)
    assert x[0, -1] == EOS and x[1, -2:].tolist() == [EOS, PAD]
    assert domain.to_text(x) == ["a red circle", "a red"]


@pytest.mark.parametrize(
    "items, error, match",
    [
        (["a dog", 3], TypeError, "got int at index 1"),
        ([None], TypeError, "got NoneType at index 0"),
        ("a dog", TypeError, "wrap a single text in a list"),
        ([], ValueError, "at least one text"),
    ],
)
def test_collate_and_fit_reject_bad_items(domain, items, error, match):
    with pytest.raises(error, match=match):
        domain.collate(items)
    with pytest.raises(error, match=match):
        TextDomain().fit(items)


# -- example batch, state --------------------------------------------------------------------
def test_example_batch_before_fit_installs_builtin_vocabulary(spec):
    domain = TextDomain(embedding=4, hidden=4, decoder_hidden=4)
    x = domain.example_batch(16, torch.Generator().manual_seed(3))
    y = domain.example_batch(16, torch.Generator().manual_seed(3))
    assert domain.fitted and torch.equal(x, y)
    assert x.shape[0] == 16 and (x[:, 0] == BOS).all()
    assert ((x == EOS).sum(dim=1) == 1).all()
    # Every row is valid collate output: re-collating its text gives the row back.
    assert torch.equal(domain.collate(domain.to_text(x)), x)
    encoded = domain.build_encoder(spec)(x)
    assert encoded.shared.shape == (16, spec.shared)


def test_example_batch_uses_fitted_vocabulary(domain):
    x = domain.example_batch(32, torch.Generator().manual_seed(0))
    assert int(x.max()) < len(domain.vocabulary)
    assert torch.equal(domain.collate(domain.to_text(x)), x)


def test_state_dict_round_trips_through_torch_save(domain):
    buffer = io.BytesIO()
    torch.save(domain.state_dict(), buffer)
    buffer.seek(0)
    restored = TextDomain(**domain.options)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    texts = ["a red circle", "zebras at the top left!"]
    assert torch.equal(restored.collate(texts), domain.collate(texts))
    restored.load_state_dict({})
    assert not restored.fitted


# -- files ---------------------------------------------------------------------------------
def test_read_item_returns_the_string(domain):
    assert domain.read_item("A dog.") == "A dog."
    with pytest.raises(TypeError, match="must be a str"):
        domain.read_item(3)


def test_write_items_writes_markdown_atomically(domain, tmp_path, monkeypatch):
    import flowbridge_text.markdown as markdown

    # Through the core's atomic_write_text, whose atomic_write tests/test_checkpoint.py checks.
    written = []
    atomic_write_text = markdown.atomic_write_text

    def spy(path, text):
        written.append(path)
        return atomic_write_text(path, text)

    monkeypatch.setattr(markdown, "atomic_write_text", spy)
    items = [["a red circle", "a <unk> square"], ["", "two\nlines *here*"]]
    path = domain.write_items(items, tmp_path / "sub" / "captions")
    assert path == tmp_path / "sub" / "captions.md"
    assert written == [path]
    assert path.read_text(encoding="utf-8").splitlines() == [
        "# Generated text",
        "",
        "## Input 1",
        "",
        "1. a red circle",
        r"2. a \<unk\> square",
        "",
        "## Input 2",
        "",
        "1. *(empty)*",
        r"2. two lines \*here\*",
    ]
    assert [p.name for p in path.parent.iterdir()] == ["captions.md"]  # no temp file left


def test_write_items_rejects_non_text(domain, tmp_path):
    with pytest.raises(TypeError, match=r"items\[0\]\[1\] must be a str"):
        domain.write_items([["a", 1]], tmp_path / "x")
    with pytest.raises(TypeError, match="lists of str"):
        domain.write_items(["a dog"], tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


# -- registration --------------------------------------------------------------------------
@pytest.fixture
def registered():
    # Whatever loaded "text" before (an entry point, another test) is set aside first.
    plugins.unregister("text")
    plugins.register(flowbridge_text.plugin, name="text")
    yield
    plugins.unregister("text")


def test_registered_through_the_hook(registered):
    assert plugins.domains()["text"] is TextDomain
    domain = plugins.get_domain("text", max_length=7)
    assert isinstance(domain, TextDomain) and domain.max_length == 7


def test_entry_point_is_declared():
    (entry,) = metadata.entry_points(group="flowbridge", name="text")
    assert entry.load() is flowbridge_text.plugin


def test_a_batch_tensor_must_be_collated_token_ids(domain):
    x = domain.collate(["a red circle", "a blue square"])
    assert domain.check_batch(x) is x
    for bad, error, message in [
        (x[0], ValueError, r"a text batch tensor must have shape \[batch >= 1, T >= 2\]"),
        (x.float(), TypeError, r"a text batch tensor must hold integer token ids"),
        (x + 1000, ValueError, r"a text batch tensor holds token ids in \[1001, "),
    ]:
        with pytest.raises(error, match=message):
            domain.check_batch(bad)

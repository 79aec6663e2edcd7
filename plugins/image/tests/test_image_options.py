import doctest
from dataclasses import fields

import pytest

import flowbridge_image.domain
import flowbridge_image.layers
import flowbridge_image.plugin
from flowbridge import plugins
from flowbridge_image import ImageDomain
from flowbridge_image.options import ImageOptions


def test_conv_defaults_are_resolved_and_rebuild_the_domain():
    domain = ImageDomain()
    assert domain.options == {
        "encoder": "conv",
        "size": 32,
        "channels": 3,
        "loss": "l1",
        "edge_weight": 0.0,
        "shared_dropout": 0.0,
        "guidance": 0.0,
        "hidden": 32,
        "feature_dim": None,
        "adversarial": False,
    }
    assert ImageDomain(**domain.options).options == domain.options


def test_features_defaults_follow_the_original_captioning_encoder():
    domain = ImageDomain(encoder="features")
    assert domain.options == {
        "encoder": "features",
        "size": None,
        "channels": None,
        "loss": "l2",
        "edge_weight": 0.0,
        "shared_dropout": 0.0,
        "guidance": 0.0,
        "hidden": 2048,
        "feature_dim": 4096,
        "adversarial": False,
    }
    assert ImageDomain(**domain.options).options == domain.options


@pytest.mark.parametrize("size", [16, 24, 32, 64, 128])
def test_every_multiple_of_8_from_16_is_a_valid_size(size):
    assert ImageDomain(size=size).options["size"] == size


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"size": 8}, ValueError, "size must be >= 16"),
        ({"size": 20}, ValueError, "multiple of 8"),
        ({"size": 32.0}, TypeError, "size must be an int"),
        ({"size": True}, TypeError, "size must be an int"),
        ({"channels": 2}, ValueError, "channels must be 1 .* or 3"),
        ({"channels": "rgb"}, TypeError, "channels must be an int"),
        ({"loss": "mse"}, ValueError, r"loss must be one of \['l1', 'l2', 'bce'\]"),
        ({"hidden": 0}, ValueError, "hidden must be >= 1"),
        ({"encoder": "vgg"}, ValueError, r"encoder must be one of \['conv', 'features'\]"),
        ({"adversarial": 1}, TypeError, "adversarial must be a bool"),
        ({"feature_dim": 512}, ValueError, "feature_dim applies to encoder='features' only"),
        ({"encoder": "features", "size": 32}, ValueError, "size applies to encoder='conv'"),
        ({"encoder": "features", "channels": 1}, ValueError, "channels applies to"),
        ({"encoder": "features", "feature_dim": 0}, ValueError, "feature_dim must be >= 1"),
        ({"encoder": "features", "loss": "bce"}, ValueError, "use loss='l2' or 'l1'"),
        ({"encoder": "features", "adversarial": True}, ValueError, "needs images"),
        ({"edge_weight": -1.0}, ValueError, "edge_weight must be a finite number >= 0, got -1"),
        ({"edge_weight": float("nan")}, ValueError, "edge_weight must be a finite number"),
        ({"edge_weight": "4"}, TypeError, "edge_weight must be a number, got str"),
        ({"encoder": "features", "edge_weight": 4}, ValueError, "leave edge_weight at 0"),
        ({"shared_dropout": 1.0}, ValueError, "shared_dropout must be < 1 .*got 1.0"),
        ({"shared_dropout": -0.1}, ValueError, "shared_dropout must be a finite number >= 0"),
        ({"shared_dropout": "0.1"}, TypeError, "shared_dropout must be a number, got str"),
        ({"guidance": 1.0}, ValueError, "guidance 1.0 needs a decoder trained with .*dropout > 0"),
        ({"guidance": -1, "shared_dropout": 0.1}, ValueError, "guidance must be a finite"),
        ({"guidance": True, "shared_dropout": 0.1}, TypeError, "guidance must be a number"),
        ({"encoder": "features", "shared_dropout": 0.1}, ValueError, "leave shared_dropout at"),
        (
            {"encoder": "features", "shared_dropout": 0.1, "guidance": 1},
            ValueError,
            "leave shared_dropout at 0",
        ),
        ({"colour": True}, TypeError, r"unknown image domain options \['colour'\]"),
        ({"sise": 32}, TypeError, r"options \['sise' \(did you mean 'size'\?\)\]; valid: \["),
    ],
)
def test_bad_options_are_refused_with_a_clear_error(options, error, match):
    with pytest.raises(error, match=match):
        ImageDomain(**options)


def test_the_registry_and_flowbridge_plugins_read_the_options_and_their_defaults():
    """ImageDomain takes **options, but its signature names them (flowbridge plugins --all
    lists them, and a config's misspelt option is refused before the domain is built)."""
    named, _ = plugins.constructor_options(ImageDomain)
    assert named == {f.name: f.default for f in fields(ImageOptions)}
    misspelt = pytest.raises(plugins.UnknownOptionError, match=r"no option 'sise' \(did you")
    with plugins.isolated(flowbridge_image.plugin), misspelt:
        plugins.get_domain("image", sise=32)


@pytest.mark.parametrize("module", [flowbridge_image.layers, flowbridge_image.domain])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0

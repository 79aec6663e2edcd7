"""Run configuration: TOML (and config.json) loading, presets, errors that name the dotted key."""

from __future__ import annotations

import json
import math
import re
import typing

import pytest
import torch
from test_training_support import toy_plugin, toy_settings
from toy_domains import VectorDomain, make_domain_class

from flowbridge import Bridge, BridgeConfig, LossWeights, Trainer
from flowbridge.checkpoint import CheckpointError
from flowbridge.config import (
    ConfigError,
    RunConfig,
    TrainConfig,
    from_dict,
    load_run_config,
    to_dict,
)
from flowbridge.flows import RESIDUAL_PRIORS, SCALE_ACTIVATIONS, SHARED_COUPLINGS, SHARED_PRIORS
from flowbridge.presets import PRESETS

TOML = """
preset = "small"
[data]
dataset = "shapes"
[data.options]
train_size = 100
[domains.a]
name = "image"
[domains.a.options]
size = 32
[domains.b]
name = "text"
[model]
shared_features = 24
[model.weights]
prior_a = 0.3
[train]
steps = 50
device = "auto"
grad_clip = 1
"""


def test_a_toml_file_loads_over_its_preset(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(TOML, encoding="utf-8")
    config = load_run_config(path)
    assert config.preset == "small"
    assert config.data.dataset == "shapes" and config.data.options == {"train_size": 100}
    assert (config.domains.a.name, config.domains.a.options) == ("image", {"size": 32})
    # The file names no text options: the small preset's sizes for the text domain apply.
    assert config.domains.b.name == "text"
    assert config.domains.b.options == PRESETS["small"]["domain_options"]["text"]
    # The file wins where it speaks; the preset fills in the rest, table by table.
    assert config.model.shared_features == 24
    assert config.model.shared_hidden == PRESETS["small"]["model"]["shared_hidden"]
    assert config.model.weights.prior_a == 0.3
    assert config.model.weights.prior_b == PRESETS["small"]["model"]["weights"]["prior_b"]
    assert config.train.steps == 50 and config.train.device == "auto"
    assert config.train.grad_clip == 1.0 and isinstance(config.train.grad_clip, float)
    assert config.train.batch_size == PRESETS["small"]["train"]["batch_size"]
    # A preset named by the caller overrides the file's own choice.
    assert load_run_config(path, preset="captioning").model.shared_features == 24
    assert load_run_config(path, preset="captioning").model.shared_steps == 12


def test_preset_domain_options_stay_with_their_domain():
    kept = load_run_config({"preset": "captioning", "domains": {"a": {"options": {"hidden": 8}}}})
    assert kept.domains.a.name == "text"
    assert kept.domains.a.options["hidden"] == 8 and kept.domains.a.options["embedding"] == 300
    other = {"name": "vector", "options": {"features": 5}}
    replaced = load_run_config({"preset": "captioning", "domains": {"a": other}})
    assert replaced.domains.a.options == {"features": 5}
    assert replaced.domains.b.options == PRESETS["captioning"]["domains"]["b"]["options"]


def test_a_preset_sizes_the_domains_it_names_on_either_side():
    small = PRESETS["small"]["domain_options"]["text"]
    for side, other in (("a", "b"), ("b", "a")):
        domains = {side: {"name": "text", "options": {"hidden": 256}}, other: {"name": "vector"}}
        config = load_run_config({"preset": "small", "domains": domains})
        text, vector = getattr(config.domains, side), getattr(config.domains, other)
        assert text.options == {**small, "hidden": 256}  # the file wins key by key
        assert vector.options == {}  # a domain the preset does not name keeps its own
    # Without the preset, the text plugin's own (the original's) defaults stand.
    bare = load_run_config({"domains": {"a": {"name": "text"}, "b": {"name": "vector"}}})
    assert bare.domains.a.options == {}
    # A malformed table still gets its own message, not an AttributeError from the merge.
    for domains in ([1], {"a": {"name": "text", "options": [1]}}):
        with pytest.raises(ConfigError, match="domains"):
            load_run_config({"preset": "small", "domains": domains})


def test_the_plain_dict_form_round_trips():
    config = load_run_config({"preset": "captioning"})
    assert from_dict(RunConfig, to_dict(config)) == config


def test_a_runs_config_json_loads_back_as_its_config_and_resumes_it(tmp_path):
    # Over a preset, with the settings that JSON holds as lists (adam_betas, weight_schedule).
    schedule = {"rec_a": [[0, 0.5], [4, 1.0]]}
    settings = toy_settings(tmp_path, steps=1, adam_betas=[0.5, 0.9], weight_schedule=schedule)
    config = load_run_config({**settings, "preset": "small"})
    with toy_plugin():
        Trainer(config).run()  # writes tmp_path/config.json
        saved = load_run_config(tmp_path / "config.json")
        assert saved == config
        # A resume with other settings points to that file, and the file resumes the run.
        settings["model"]["shared_hidden"] = 8
        other = load_run_config({**settings, "preset": "small"})
        with pytest.raises(CheckpointError, match=re.escape(str(tmp_path / "config.json"))):
            Trainer(other, resume=True)
        with pytest.warns(UserWarning, match="already trained 1 steps"):
            assert Trainer(saved, resume=True).run().step == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"train": {"stepz": 3}}, "unknown setting 'train.stepz'"),
        ({"train": {"steps": "ten"}}, "'train.steps' must be of type int"),
        ({"train": {"progress": 1}}, "'train.progress' must be of type bool"),
        ({"model": {"weights": {"prior_c": 1.0}}}, "unknown setting 'model.weights.prior_c'"),
        ({"domains": {"c": {"name": "x"}}}, "unknown setting 'domains.c'"),
        ({"domains": {"a": {"name": 3}}}, "'domains.a.name' must be of type str"),
        ({"data": {"options": 3}}, "'data.options' must be of type dict"),
        ({"train": {"device": "tpu"}}, "train: device must be"),
        ({"train": {"paired_fraction": 0.0}}, "paired_fraction must be in"),
        ({"train": {"grad_clip_mode": "max"}}, "grad_clip_mode must be one of"),
        ({"train": {"batch_size": 0}}, "batch_size must be >= 1"),
        ({"train": {"ema_decay": 1.0}}, r"ema_decay must be in \[0, 1\) .*got 1.0"),
        ({"train": {"ema_decay": -0.5}}, r"ema_decay must be in \[0, 1\)"),
        ({"train": {"ema_decay": float("nan")}}, r"ema_decay must be in \[0, 1\)"),
        ({"train": {"adam_betas": [0.9]}}, r"adam_betas must be two numbers in \[0, 1\)"),
        ({"train": {"adam_betas": [0.9, 1.0]}}, r"adam_betas .*got \[0.9, 1.0\]"),
        ({"train": {"adam_betas": [0.9, float("nan")]}}, "adam_betas must be two numbers"),
        ({"train": {"adam_betas": ["0.9", 0.99]}}, "adam_betas must be two numbers"),
        ({"train": {"adam_betas": 0.99}}, "'train.adam_betas' must be of type tuple"),
        ({"train": {"weight_schedule": {"rec_c": [[0, 1.0]]}}}, "'rec_c', which is not a loss"),
        ({"train": {"weight_schedule": {"rec_a": []}}}, r"\[step, factor\] pairs.*got \[\]"),
        ({"train": {"weight_schedule": {"rec_a": [0, 1.0]}}}, r"\[step, factor\] pairs"),
        ({"train": {"weight_schedule": {"rec_a": [[0.5, 1.0]]}}}, "steps whole numbers >= 0"),
        ({"train": {"weight_schedule": {"rec_a": [[-1, 1.0]]}}}, "steps whole numbers >= 0"),
        ({"train": {"weight_schedule": {"rec_a": [[0, -0.5]]}}}, "factors finite numbers >= 0"),
        ({"train": {"weight_schedule": {"rec_a": [[0, float("inf")]]}}}, "factors finite"),
        ({"train": {"weight_schedule": {"rec_a": [[9, 1.0], [3, 0.0]]}}}, r"got \[9, 3\]"),
        ({"train": {"weight_schedule": [["rec_a", 0, 1.0]]}}, "'train.weight_schedule' must be of"),
        ({"train": 5}, "train must be a table"),
        ({"model": {"posterior": "learned"}}, "posterior 'learned' needs a proper shared prior"),
        (
            {"model": {"contrastive_temperature": 0.0}},
            "contrastive_temperature must be a finite number > 0, got 0.0",
        ),
        ({"model": {"weights": {"contrastive": -1.0}}}, "contrastive must be a finite number"),
        ({"model": {"weights": {"prior_nce_a": -1.0}}}, "prior_nce_a must be a finite number"),
        ({"model": {"prior_nce_negatives": 0}}, "prior_nce_negatives must be >= 1, got 0"),
        ({"preset": "huge"}, "unknown preset 'huge'"),
        ({"preset": 3}, "'preset' must be of type str"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ConfigError, match=message):
        load_run_config(settings)


def test_file_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nsteps = 3", encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_run_config(bad)
    bad_json = tmp_path / "config.json"
    bad_json.write_text('{"train": {"steps": 3,}}', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config\.json is not valid JSON: .*line 1 column 23"):
        load_run_config(bad_json)
    # Nested past the parsers' recursion limit: a ConfigError too, not a RecursionError.
    bad_json.write_text('{"model": ' + "[" * 10**5 + "]" * 10**5 + "}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config\.json is not valid JSON: maximum recursion"):
        load_run_config(bad_json)
    bad.write_text("x = " + "[" * 10**5 + "]" * 10**5, encoding="utf-8")
    with pytest.raises(ConfigError, match="is not valid TOML: maximum recursion"):
        load_run_config(bad)
    # Shallow enough to parse, too deep to copy and check (options are free-form tables).
    deep = "{}"
    for _ in range(600):
        deep = '{"a": ' + deep + "}"
    bad_json.write_text(
        '{"domains": {"a": {"name": "text", "options": ' + deep + "}}}", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match=r"config\.json: tables nested too deep to read"):
        load_run_config(bad_json)
    bad_json.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config\.json must hold a JSON object .*got a list"):
        load_run_config(bad_json)


def test_a_directory_is_named_as_one_with_the_config_files_in_it(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"is a directory; give the path of a TOML"):
        load_run_config(tmp_path)
    (tmp_path / "run.toml").write_text(TOML, encoding="utf-8")
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    found = f"{tmp_path / 'config.json'}, {tmp_path / 'run.toml'}"
    with pytest.raises(
        IsADirectoryError, match=f"give a config file in it, e.g. {re.escape(found)}$"
    ):
        load_run_config(tmp_path)


def float_settings() -> list[str]:
    """The dotted key of every float setting of the model, its loss weights and training."""
    tables = {"model": BridgeConfig, "model.weights": LossWeights, "train": TrainConfig}
    return [
        f"{where}.{key}"
        for where, cls in tables.items()
        for key, hint in typing.get_type_hints(cls).items()
        if hint is float
    ]


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize("key", float_settings())
def test_every_float_setting_must_be_finite(key, value):
    where, _, name = key.rpartition(".")
    settings = {name: value}
    for table in reversed(where.split(".")):
        settings = {table: settings}
    with pytest.raises(ConfigError, match=rf"^{re.escape(where)}: {name} must be .*got {value}"):
        load_run_config(settings)


@pytest.mark.parametrize(
    ("preset", "prior_text", "prior_image", "rec_image", "image_size", "batch"),
    [("captioning", 5000, 200, 20, 64, 128), ("text-to-image", 2500, 10, 1, 256, 63)],
)
def test_paper_presets_convert_the_original_weights(
    preset, prior_text, prior_image, rec_image, image_size, batch
):
    config = load_run_config({"preset": preset})
    model, weights = config.model, config.model.weights
    assert (model.shared_features, model.residual_a, model.residual_b) == (992, 32, 64)
    assert (model.shared_steps, model.shared_hidden, model.residual_steps) == (12, 1024, 16)
    assert (model.residual_hidden_a, model.residual_hidden_b) == (1024, 512)
    assert (config.domains.a.name, config.domains.b.name) == ("text", "image")
    assert config.domains.b.options["size"] == image_size
    # bits per dim = nats / (d ln 2): the same loss for a residual NLL of x nats.
    nll_text, nll_image = 37.0, 91.0
    assert weights.prior_a * nll_text == pytest.approx(prior_text * nll_text / (32 * math.log(2)))
    assert weights.prior_b * nll_image == pytest.approx(
        prior_image * nll_image / (64 * math.log(2))
    )
    # 1000 · (−log|det J|) / (ln 2 · 992) with λ1 = 1.
    assert weights.shared * 5.0 == pytest.approx(1000 * 5.0 / (math.log(2) * 992))
    # The original's token NLL is summed over its batch: λ · (the batch's sum) here is a weight
    # on the batch's mean of per-sample sums.
    tokens = torch.rand(batch, 7)  # per-token NLLs of a batch
    original_text = 0.6 * tokens.sum()
    assert weights.rec_a * tokens.sum(dim=1).mean() == pytest.approx(float(original_text))
    assert weights.cross_a == weights.rec_a
    # Its image L1 is on pixels in [-1, 1], each sample's sum divided by the batch, averaged.
    image, decoded = torch.rand(batch, 3, 4, 4), torch.rand(batch, 3, 4, 4)
    summed = ((2 * image - 1) - (2 * decoded - 1)).abs().sum(dim=(1, 2, 3)) / batch
    ours = (image - decoded).abs().sum(dim=(1, 2, 3)).mean()
    assert weights.rec_b * ours == pytest.approx(float(rec_image * summed.mean()))
    assert weights.cross_b * ours == pytest.approx(float(1.5 * summed.mean()))
    assert (weights.cross, weights.align) == (0, 0)
    assert (config.train.lr, config.train.batch_size, config.train.seed) == (1e-4, 128, 149)
    assert (config.train.grad_clip, config.train.grad_clip_mode) == (1.0, "value")


def test_per_side_cross_weights_and_prior_widths_reach_the_bridge():
    Other = make_domain_class("other")
    weights = LossWeights(cross=0.5, cross_a=0.25, cross_b=2.0)
    config = BridgeConfig(
        shared_features=3,
        shared_hidden=8,
        residual_steps=1,
        residual_hidden=8,
        residual_hidden_b=12,
        weights=weights,
    )
    bridge = Bridge(VectorDomain(), Other(features=6), config)
    widths = {
        side: {m.out_features for m in bridge.priors[side].modules() if hasattr(m, "out_features")}
        for side in ("a", "b")
    }
    assert 8 in widths["a"] and 12 not in widths["a"]
    assert 12 in widths["b"] and 8 not in widths["b"]
    g = torch.Generator().manual_seed(0)
    terms = bridge.loss(torch.randn(5, 4, generator=g), torch.randn(5, 6, generator=g))
    torch.testing.assert_close(terms["cross"], terms["cross_a"] + terms["cross_b"])
    others = sum(getattr(weights, k) * terms[k] for k in ("shared", "prior_a", "prior_b"))
    others = others + terms["rec_a"] + terms["rec_b"]
    cross = 0.75 * terms["cross_a"] + 2.5 * terms["cross_b"]
    torch.testing.assert_close(terms["total"], others + cross)


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        ("shared_map", SHARED_COUPLINGS),
        ("shared_prior", SHARED_PRIORS),
        ("residual_prior", RESIDUAL_PRIORS),
        ("coupling_scale", tuple(SCALE_ACTIVATIONS)),
    ],
)
def test_the_model_choices_are_the_flow_modules_own(key, allowed):
    # The config refuses exactly what the flow modules cannot build, listing what they can.
    with pytest.raises(ConfigError, match=re.escape(f"{key} must be one of {allowed}")):
        BridgeConfig(**{key: "nonesuch"})


def test_configs_built_in_python_are_checked_as_dicts_are():
    # A table where a nested config belongs is built into it, as from a TOML file.
    config = BridgeConfig(weights={"align": 1.0})
    assert config.weights == LossWeights(align=1.0)
    assert BridgeConfig(base_scale=1).base_scale == 1.0 and isinstance(
        BridgeConfig(base_scale=1).base_scale, float
    )
    for build, message in (
        (
            lambda: BridgeConfig(shared_features=4.0),
            "'shared_features' must be of type int, got float",
        ),
        (lambda: BridgeConfig(residual_a="8"), "'residual_a' must be of type .*int.*, got str"),
        (lambda: LossWeights(align=True), "'align' must be of type float, got bool"),
        (lambda: BridgeConfig(weights={"algin": 1.0}), "unknown setting 'weights.algin'"),
        (lambda: TrainConfig(steps="5"), "'steps' must be of type int, got str"),
    ):
        with pytest.raises(ConfigError, match=message):
            build()


def test_numpy_numbers_fill_settings_as_pythons():
    import numpy as np

    config = load_run_config(
        {**toy_settings(""), "train": {"steps": np.int64(5), "lr": np.float32(0.5)}}
    )
    assert config.train.steps == 5 and type(config.train.steps) is int
    assert config.train.lr == 0.5 and type(config.train.lr) is float
    assert type(BridgeConfig(shared_features=np.int32(3)).shared_features) is int
    # Inside tuples and tables too, and arrays as lists.
    train = TrainConfig(
        adam_betas=np.array([0.9, 0.99]),
        weight_schedule={"rec_a": [[np.int64(0), np.float32(0.0)], [np.int64(10), 1.0]]},
        progress=np.bool_(False),
    )
    assert tuple(train.adam_betas) == (0.9, 0.99)
    assert train.weight_schedule == {"rec_a": ((0, 0.0), (10, 1.0))}
    assert train.progress is False
    with pytest.raises(ConfigError, match="'shared_features' must be of type int, got float"):
        BridgeConfig(shared_features=np.float64(3.0))


def test_a_path_fills_a_path_setting_as_its_string(tmp_path):
    config = load_run_config(toy_settings(tmp_path / "from-dict"))
    assert load_run_config(
        {**toy_settings(""), "train": {"out": tmp_path / "run"}}
    ).train.out == str(tmp_path / "run")
    # Set on a built config (which no check sees), then trained: converted by the trainer.
    config.train.out = tmp_path / "set-later"
    with toy_plugin():
        trainer = Trainer(config)
        assert trainer.config.train.out == str(tmp_path / "set-later")
        trainer.run()
    assert json.loads((tmp_path / "set-later" / "config.json").read_text(encoding="utf-8"))[
        "train"
    ]["out"] == str(tmp_path / "set-later")


def test_a_setting_changed_to_the_wrong_type_after_building_is_named_by_the_trainer(tmp_path):
    config = load_run_config(toy_settings(tmp_path / "run"))
    config.train.steps = "5"
    with (
        toy_plugin(),
        pytest.raises(ConfigError, match=r"setting 'train\.steps' must be of type int"),
    ):
        Trainer(config)
    assert not (tmp_path / "run").exists()


def test_a_checkpoint_given_as_the_config_is_named_as_one(tmp_path):
    with toy_plugin():
        Trainer(load_run_config(toy_settings(tmp_path, steps=1))).run()
    with pytest.raises(ConfigError, match=r"checkpoint\.pt is a checkpoint .*not a config file"):
        load_run_config(tmp_path / "checkpoint.pt")
    with pytest.raises(ConfigError, match=re.escape(f": {tmp_path / 'config.json'}")):
        load_run_config(tmp_path / "checkpoint.pt")

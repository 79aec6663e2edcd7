"""The testbed's accuracy-diversity trade-off: temperature sweeps and equal-diversity reads."""

import json
import math

import pytest
import torch

import flowbridge.plugins as plugins
from flowbridge import train
from flowbridge_image import plugin as image_plugin
from flowbridge_shapes import experiment
from flowbridge_shapes import plugin as shapes_plugin
from flowbridge_shapes.dataset import ShapesDataset
from flowbridge_shapes.experiment import (
    VARIANTS,
    EvaluateAt,
    at_equal_diversity,
    data_ceilings,
    evaluate,
    evaluate_split,
    inputs_scored,
    names,
    run_config,
    scoring,
    strict_json,
    summary,
    text_to_image_tradeoff,
)
from flowbridge_text import plugin as text_plugin


def _row(temperature, entropy, accuracy):
    return {"temperature": temperature, "unstated_entropy": entropy, "accuracy": accuracy}


FLOW = [_row(0.5, 0.6, 0.8), _row(1.0, 0.7, 0.6), _row(1.5, 0.9, 0.4)]
GAUSSIAN = [_row(0.5, 0.5, 0.5), _row(1.0, 0.8, 0.4)]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_is_a_valid_run_and_only_flow_priors_get_the_mixture(variant, tmp_path):
    model = run_config(variant, str(tmp_path)).model
    mixture = model.residual_prior == "flow" and variant != "lnfmm-single"
    assert (model.residual_components > 1) == mixture


def test_gains_where_the_diversities_overlap():
    # Overlap 0.6-0.8. The Gaussian at the flow's entropies 0.6 and 0.7: 0.5 - 0.1/3 and
    # 0.5 - 0.2/3; the flow at the Gaussian's 0.8: 0.5.
    read = at_equal_diversity(FLOW, GAUSSIAN)
    expected = [0.8 - (0.5 - 0.1 / 3), 0.6 - (0.5 - 0.2 / 3), 0.5 - 0.4]
    assert read["overlap"] == [0.6, 0.8]
    assert [e for e, _ in read["gains"]] == [0.6, 0.7, 0.8]
    assert [g for _, g in read["gains"]] == pytest.approx(expected)
    assert read["mean"] == pytest.approx(sum(expected) / 3)
    assert read["min"] == pytest.approx(0.1) and read["max"] == pytest.approx(expected[0])
    assert at_equal_diversity(GAUSSIAN, FLOW)["mean"] == pytest.approx(-read["mean"])


def test_no_overlap_no_reading_and_nan_rows_are_left_out():
    apart = [_row(1.0, 0.95, 0.1), _row(1.5, 0.99, 0.05)]
    assert at_equal_diversity(apart, GAUSSIAN) == {
        "overlap": None,
        "gains": [],
        "mean": None,
        "min": None,
        "max": None,
    }
    with_nan = [*FLOW, _row(2.0, math.nan, 0.1)]
    assert at_equal_diversity(with_nan, GAUSSIAN) == at_equal_diversity(FLOW, GAUSSIAN)
    # A model none of whose images was readable at any temperature: no reading, no error.
    unreadable = [_row(1.0, math.nan, 0.0)]
    assert at_equal_diversity(unreadable, GAUSSIAN) == at_equal_diversity(apart, GAUSSIAN)
    assert at_equal_diversity(GAUSSIAN, unreadable)["overlap"] is None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    with plugins.isolated(image_plugin, text_plugin, shapes_plugin):
        data = {"options": {"train_size": 40, "seed": 0}}
        config = run_config(
            "gaussian",
            str(tmp_path_factory.mktemp("run")),
            data=data,
            train={"steps": 2, "checkpoint_every": 0, "progress": False},
        )
        bridge = train(config).bridge
        yield bridge, ShapesDataset(**data["options"]).split("test")


def test_the_sweep_repeats_evaluate_at_temperature_one(tiny_run):
    bridge, test = tiny_run
    rows = text_to_image_tradeoff(bridge, test, [0.5, 1.0], samples=3, inputs=4, seed=2)
    assert [row["temperature"] for row in rows] == [0.5, 1.0]
    scores = evaluate(bridge, test, samples=3, inputs=4, seed=2, ceilings=False)
    assert rows[1] == {"temperature": 1.0, **scores["text_to_image"]}
    # Deterministic: the same call gives the same curve.
    assert text_to_image_tradeoff(bridge, test, [0.5], samples=3, inputs=4, seed=2) == rows[:1]
    # A known row is taken as given, not sampled again.
    marker = {"accuracy": -1.0, "unstated_entropy": -1.0, "readable": -1.0}
    reused = text_to_image_tradeoff(
        bridge, test, [0.5, 1.0], samples=3, inputs=4, seed=2, known={1.0: marker}
    )
    assert reused == [rows[0], {"temperature": 1.0, **marker}]


def test_evaluate_scores_caption_diversity_and_draws_the_ceiling_from_the_split_s_pool(
    tiny_run, monkeypatch
):
    bridge, test = tiny_run
    dataset = ShapesDataset(train_size=40, seed=0)
    pools = []

    def image_ceiling(meta, k, seed=0, image_size=32, combinations=None):
        pools.append(combinations)
        return real_image_ceiling(meta, k, seed, image_size, combinations)

    real_image_ceiling = experiment.image_ceiling
    monkeypatch.setattr(experiment, "image_ceiling", image_ceiling)
    training = [["a red circle", "a big disk"], ["a small square at the top"]]
    pool = dataset.combinations_of("test")
    scores = evaluate(
        bridge, test, samples=3, inputs=4, seed=2, training=training, combinations=pool
    )
    assert pools == [pool]
    diversity = {"div_1", "div_2", "mbleu_4", "unique", "novel", "self_cider"}
    assert diversity <= set(scores["image_to_text"])
    assert diversity <= set(scores["ceiling"]["image_to_text"])
    # Without the training captions, the testbed's own metrics alone, as before.
    plain = evaluate(bridge, test, samples=3, inputs=4, seed=2, ceilings=False)
    assert not diversity & set(plain["image_to_text"])


def test_scoring_gives_each_split_the_training_captions_and_its_own_combinations():
    dataset = ShapesDataset(train_size=40, seed=0)
    train_split = dataset.split("train")
    test, novel = scoring(dataset, "test"), scoring(dataset, "novel")
    # Every training caption once, grouped by its image, the same for every split.
    assert test["training"] == novel["training"]
    pairs = list(zip(train_split.b, train_split.meta, strict=True))
    assert test["training"] == [[c for c, m in pairs if m["image"] == i] for i in range(40)]
    assert test["combinations"] == dataset.combinations_of("test")
    assert novel["combinations"] == dataset.combinations_of("novel")
    with pytest.raises(ValueError, match="unknown split"):
        scoring(dataset, "training")


def test_evaluate_split_scores_the_named_split_with_its_own_scoring(monkeypatch):
    dataset = ShapesDataset(train_size=40, seed=0)
    calls = []
    monkeypatch.setattr(
        experiment, "evaluate", lambda *args, **kwargs: calls.append((args, kwargs))
    )
    evaluate_split("bridge", dataset, "novel", 3, 4, 2, ceilings=False)
    ((args, kwargs),) = calls
    assert args == ("bridge", dataset.split("novel"), 3, 4, 2)
    assert kwargs == {"ceilings": False, **scoring(dataset, "novel")}


def test_the_data_s_ceilings_without_a_model_are_those_evaluate_split_gives(tiny_run):
    bridge, _ = tiny_run
    dataset = ShapesDataset(train_size=40, seed=0)
    for split in ("test", "novel"):
        scored = evaluate_split(bridge, dataset, split, 3, 4, 2)
        assert data_ceilings(dataset, split, 3, 4, 2) == scored["ceiling"]
    # Other inputs, other ceilings: they are computed, not a constant.
    assert data_ceilings(dataset, "test", 3, 4, 2) != data_ceilings(dataset, "test", 3, 4, 5)


def _tiny_config(tmp_path, name):
    return run_config(
        "lnfmm",
        str(tmp_path / name),
        data={"options": {"train_size": 40, "seed": 0}},
        train={"steps": 4, "batch_size": 8, "checkpoint_every": 0, "progress": False},
    )


def test_the_sweep_can_hold_the_mixture_weights_at_a_temperature_of_their_own(
    tmp_path, tiny_run, monkeypatch
):
    with plugins.isolated(image_plugin, text_plugin, shapes_plugin):
        bridge = train(_tiny_config(tmp_path, "mixture")).bridge
    _, test = tiny_run
    # Four steps leave the image prior's mixture weights nearly equal, and tempering equal
    # weights changes no draw: make them unequal, so that τc visibly matters.
    base = bridge.priors["a"].base
    with torch.no_grad():
        base.net[-1].bias[: base.components] = torch.linspace(0.0, 4.0, base.components)
    drawn = []
    translate = bridge.translate

    def spy(*args, **options):
        rows = translate(*args, **options)
        drawn.append(
            (
                options["temperature"],
                options["component_temperature"],
                torch.stack([torch.stack(r) for r in rows]),
            )
        )
        return rows

    monkeypatch.setattr(bridge, "translate", spy)

    def sweep(**options):
        drawn.clear()
        text_to_image_tradeoff(bridge, test, [0.5, 1.0], samples=3, inputs=4, **options)
        return {(t, tc): images for t, tc, images in drawn}

    default, held = sweep(), sweep(component_temperature=1.0)
    # The sweep hands τc to the bridge unchanged at every τ.
    assert list(default) == [(0.5, None), (1.0, None)]
    assert list(held) == [(0.5, 1.0), (1.0, 1.0)]
    # Where τc equals τ the draws are the default's; elsewhere the weights are tempered apart.
    assert torch.equal(held[1.0, 1.0], default[1.0, None])
    assert not torch.equal(held[0.5, 1.0], default[0.5, None])
    # The Gaussian prior of tiny_run has no mixture, and says so.
    with pytest.raises(ValueError, match="has no mixture"):
        text_to_image_tradeoff(tiny_run[0], test, [1.0], 3, 4, component_temperature=1.0)


def test_the_sweep_can_keep_the_best_of_several_candidates(tiny_run, monkeypatch):
    bridge, test = tiny_run
    kept = []
    translate = bridge.translate

    def spy(*args, **options):
        rows = translate(*args, **options)
        kept.append((options["candidates"], torch.stack([torch.stack(row) for row in rows])))
        return rows

    monkeypatch.setattr(bridge, "translate", spy)
    plain = text_to_image_tradeoff(bridge, test, [1.0], samples=3, inputs=4)
    assert text_to_image_tradeoff(bridge, test, [1.0], 3, 4, candidates=1) == plain
    text_to_image_tradeoff(bridge, test, [1.0], 3, 4, candidates=2)
    (one, first), (_, again), (two, best) = kept
    assert (one, two) == (1, 2)
    assert torch.equal(first, again) and not torch.equal(first, best)


def test_evaluate_at_scores_the_chosen_steps_and_leaves_the_run_as_it_was(tmp_path, monkeypatch):
    def drawing_evaluate(*args, **kwargs):
        torch.rand(1)  # as a domain sampling from the global RNG would
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(experiment, "evaluate", drawing_evaluate)
    with plugins.isolated(image_plugin, text_plugin, shapes_plugin):
        test = ShapesDataset(train_size=0, test_size=4, val_size=0, novel_size=0).split("test")
        curve = EvaluateAt([2, 4], test, samples=2, inputs=3, seed=1)
        scored = train(_tiny_config(tmp_path, "scored"), callbacks=[curve])
        plain = train(_tiny_config(tmp_path, "plain"))
        # The evaluations draw samples, yet the run trains on the same random draws.
        assert scored.terms == plain.terms
        assert [row["step"] for row in curve.rows] == [2, 4]
        assert 0 <= curve.rows[0]["train_seconds"] <= curve.rows[1]["train_seconds"]
        # Each row is the summary of evaluate() on the model as it was at that step.
        scores = evaluate(scored.bridge, test, samples=2, inputs=3, seed=1)
        row = {k: v for k, v in curve.rows[1].items() if k not in ("step", "train_seconds")}
        assert row == pytest.approx(summary(scores), nan_ok=True)


@pytest.mark.parametrize("steps", [[], [0], [2.5]])
def test_evaluate_at_needs_positive_integer_steps(steps):
    with pytest.raises(ValueError, match="steps must be positive integers"):
        EvaluateAt(steps, split=None)


def test_evaluate_at_takes_known_ceilings_instead_of_computing_them(tmp_path, monkeypatch):
    asked = []

    def spying_evaluate(*args, **kwargs):
        asked.append(kwargs["ceilings"])
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(experiment, "evaluate", spying_evaluate)
    known = {"image_to_text": {"distinct_valid": 0.5}, "text_to_image": {"unstated_entropy": 0.5}}
    with plugins.isolated(image_plugin, text_plugin, shapes_plugin):
        test = ShapesDataset(train_size=0, test_size=4, val_size=0, novel_size=0).split("test")
        curve = EvaluateAt([1, 2], test, samples=2, inputs=3, ceiling=known)
        train(_tiny_config(tmp_path, "known"), callbacks=[curve])
        fresh = EvaluateAt([1, 2], test, samples=2, inputs=3)
        train(_tiny_config(tmp_path, "fresh"), callbacks=[fresh])
    assert asked == [False, False, True, False]  # the fresh one computes them once
    assert curve.ceiling is known and fresh.ceiling.keys() == known.keys()
    row = curve.rows[0]
    assert row["i2t_distinct_valid_of_ceiling"] == pytest.approx(
        row["i2t_distinct_valid"] / 0.5, abs=1e-3
    )


def test_strict_json_writes_what_cannot_be_measured_as_null():
    data = {"entropy": math.nan, "rows": [{"psnr": math.inf}, (1.5, -math.inf)], "n": 3}
    text = strict_json(data)
    assert json.loads(text) == {"entropy": None, "rows": [{"psnr": None}, [1.5, None]], "n": 3}
    assert "NaN" not in text and "Infinity" not in text


def test_a_ceiling_of_zero_gives_a_share_that_reads_nan_not_an_error():
    # K true images of one input can all repeat what the caption leaves open: entropy 0.
    result = {
        "image_to_text": {"accuracy": 1.0, "distinct_valid": 0.5},
        "text_to_image": {"accuracy": 1.0, "unstated_entropy": 0.0},
    }
    row = summary(result, result)
    assert row["i2t_distinct_valid_of_ceiling"] == 1.0
    assert math.isnan(row["t2i_entropy_of_ceiling"])


def test_names_are_checked_before_anything_trains():
    valid = ["lnfmm", "gaussian", "deterministic"]
    assert names(" lnfmm,gaussian", valid) == ["lnfmm", "gaussian"]
    for text, problem in [
        ("lnfmm,lnfmmm", "--variants: unknown name 'lnfmmm'"),
        ("lnfmm,", "--variants has an empty entry in 'lnfmm,'"),
        ("gaussian,lnfmm,gaussian", "--variants names 'gaussian' twice"),
    ]:
        with pytest.raises(ValueError) as error:
            names(text, valid)
        assert str(error.value) == f"{problem}; choose from: lnfmm, gaussian, deterministic"


def test_the_inputs_scored_are_at_most_the_split_s_images():
    test = ShapesDataset(train_size=0, test_size=5, val_size=0, novel_size=0).split("test")
    assert [inputs_scored(test, asked) for asked in (3, 5, 100)] == [3, 5, 5]

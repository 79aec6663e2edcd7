"""Weight averaging (``train.ema_decay``): the formula, and the run that validates, saves,
returns and resumes the average while Adam steps the raw weights."""

from __future__ import annotations

import json

import pytest
import torch
from test_training_support import parameters, plugin, toy_settings  # noqa: F401 (fixture)
from torch import nn

from flowbridge.checkpoint import load_bridge, load_checkpoint
from flowbridge.config import load_run_config
from flowbridge.training import Trainer, WeightAverage

pytestmark = pytest.mark.usefixtures("plugin")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.critic = nn.Linear(1, 1)
        self.register_buffer("count", torch.zeros((), dtype=torch.long))


def set_weights(net: Net, value: float) -> None:
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(value)
    net.count.fill_(int(value))


def test_the_average_is_the_mean_while_warming_up_then_an_exponential_average():
    model, average = Net(), Net()
    ema = WeightAverage(model, average, decay=0.5, copied=("critic.",))
    values = [4.0, 2.0, 8.0, 6.0]
    for step, value in enumerate(values, start=1):
        set_weights(model, value)
        ema.update(step)
    # beta_t = min(0.5, (t - 1) / t): 0 (a copy of 4), 1/2 (the mean 3), then 0.5 twice.
    expected = 0.5 * (0.5 * 3.0 + 0.5 * 8.0) + 0.5 * 6.0
    assert torch.allclose(average.layer.weight, torch.full((1, 2), expected))
    assert torch.allclose(average.layer.bias, torch.full((1,), expected))
    # Copied as they are: tensors under a copied prefix, and integer buffers.
    assert average.critic.weight.item() == 6.0 and average.count.item() == 6
    assert [ema.decay_at(t) for t in (1, 2, 3, 100)] == [0.0, 0.5, 0.5, 0.5]


def test_while_warming_up_the_average_is_the_plain_mean_of_the_steps():
    model, average = Net(), Net()
    ema = WeightAverage(model, average, decay=0.99)
    for step, value in enumerate([1.0, 2.0, 6.0, 3.0], start=1):
        set_weights(model, value)
        ema.update(step)
    assert torch.allclose(average.layer.weight, torch.full((1, 2), 3.0))


def test_bad_averages_are_refused():
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\), got 1.0"):
        WeightAverage(Net(), Net(), decay=1.0)
    with pytest.raises(ValueError, match="same parameters and buffers"):
        WeightAverage(Net(), nn.Linear(2, 1), decay=0.9)


def settings(out, steps, ema_decay=0.8, **train):
    return load_run_config(
        toy_settings(
            out,
            steps=steps,
            ema_decay=ema_decay,
            paired_fraction=0.5,
            unpaired_warmup=1,
            unpaired_batch_size=4,
            validate_every=3,
            checkpoint_every=3,
            log_every=1,
            **train,
        )
    )


def test_a_run_returns_saves_and_validates_the_average_of_the_weights_adam_steps(tmp_path):
    # Without averaging: the raw weights after each step.
    raw_steps = []
    Trainer(
        settings(tmp_path / "plain", 6, ema_decay=0.0),
        callbacks=[lambda trainer, step, terms: raw_steps.append(parameters(trainer.bridge))],
    ).run()
    assert len(raw_steps) == 6

    trainer = Trainer(settings(tmp_path / "averaged", 6))
    result = trainer.run()
    # Averaging does not change what Adam does: the raw weights are the plain run's.
    raw = parameters(trainer.bridge)
    for key, value in raw_steps[-1].items():
        assert torch.equal(raw[key], value), key
    # The run hands out the average: beta_t = min(0.8, (t - 1) / t) over the six steps.
    expected = {key: value.clone() for key, value in raw_steps[0].items()}
    for t, weights in enumerate(raw_steps[1:], start=2):
        beta = min(0.8, (t - 1) / t)
        for key, value in weights.items():
            if value.is_floating_point():
                expected[key] = beta * expected[key] + (1 - beta) * value
    assert result.bridge is trainer.evaluation_bridge and result.bridge is not trainer.bridge
    averaged = parameters(result.bridge)
    for key, value in expected.items():
        torch.testing.assert_close(averaged[key], value, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(averaged[key], raw[key]) for key in raw)

    # The checkpoint: the average where load_bridge reads, the raw weights for resume.
    checkpoint = load_checkpoint(result.checkpoint)
    for key, value in checkpoint["optimised_model"].items():
        assert torch.equal(value, raw[key]), key
    reloaded = parameters(load_bridge(result.checkpoint))
    assert all(torch.equal(reloaded[key], averaged[key]) for key in averaged)

    # Validation scores the average, not the raw weights.
    logged = [json.loads(line) for line in result.log.read_text(encoding="utf-8").splitlines()]
    last_val = [line for line in logged if line["split"] == "val"][-1]
    assert result.val_terms["total"] == last_val["total"] == trainer.validate()["total"]
    trainer.average = None  # the raw weights' validation differs
    assert trainer.validate()["total"] != result.val_terms["total"]


def test_half_an_averaged_run_plus_resume_equals_the_straight_run(tmp_path):
    straight = Trainer(settings(tmp_path / "straight", 8))
    straight.run()
    out = tmp_path / "halves"
    Trainer(settings(out, 4)).run()
    resumed = Trainer(settings(out, 8), resume=True)
    resumed.run()
    for ours, theirs in (
        (resumed.bridge, straight.bridge),
        (resumed.evaluation_bridge, straight.evaluation_bridge),
    ):
        expected, actual = parameters(theirs), parameters(ours)
        assert all(torch.equal(actual[key], expected[key]) for key in expected)


def test_a_run_resumed_with_averaging_starts_its_average_from_the_raw_weights(tmp_path):
    Trainer(settings(tmp_path, 3, ema_decay=0.0)).run()
    saved = load_checkpoint(tmp_path / "checkpoint.pt")
    assert saved["optimised_model"] is None
    # An older checkpoint has no such key at all; it resumes the same.
    del saved["optimised_model"]
    torch.save(saved, tmp_path / "checkpoint.pt")
    resumed = Trainer(settings(tmp_path, 6), resume=True)
    start = parameters(resumed.evaluation_bridge)
    assert all(torch.equal(start[key], saved["model"][key]) for key in start)
    assert resumed.run().step == 6
    # And back: a run that averaged resumes without averaging from its raw weights.
    raw = load_checkpoint(tmp_path / "checkpoint.pt")["optimised_model"]
    plain = Trainer(settings(tmp_path, 7, ema_decay=0.0), resume=True)
    assert plain.evaluation_bridge is plain.bridge
    weights = parameters(plain.bridge)
    assert all(torch.equal(weights[key], raw[key]) for key in raw)


def test_a_different_average_is_refused_naming_the_first_tensor_that_differs():
    with pytest.raises(ValueError, match="average's 'weight' vs model's 'layer.weight'"):
        WeightAverage(Net(), nn.Linear(2, 1), decay=0.9)
    # The average's list ends first: the model's next tensor is named against nothing.
    half = nn.Module()
    half.layer = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="average's nothing vs model's 'critic.weight'"):
        WeightAverage(Net(), half, decay=0.9)

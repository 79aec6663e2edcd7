"""The trainer end to end on tiny vector domains: learning, resume, interrupts, NaN safety."""

from __future__ import annotations

import json
import math
import signal
import threading
from types import SimpleNamespace

import pytest
import torch
from test_training_support import (  # noqa: F401 (fixtures)
    Poisonable,
    ToyPairs,
    adversarial_settings,
    parameters,
    plugin,
    toy_config,
    toy_settings,
    toy_split,
)

from flowbridge.checkpoint import CheckpointError, load_bridge, load_checkpoint
from flowbridge.config import ConfigError, load_run_config
from flowbridge.domain import PairedSplit
from flowbridge.training import (
    NonFiniteLossError,
    Trainer,
    TrainingInterrupted,
    loop,
    partition,
    resume,
    train,
)

pytestmark = pytest.mark.usefixtures("plugin")


def read_log(result):
    return [json.loads(line) for line in result.log.read_text(encoding="utf-8").splitlines()]


def test_a_tiny_run_learns_translates_and_reloads(tmp_path):
    config = toy_config(tmp_path, steps=90, validate_every=30, log_every=10)
    result = train(config)
    assert result.step == 90 and result.wall_time > 0
    log = read_log(result)
    train_lines = [line for line in log if line["split"] == "train"]
    val_lines = [line for line in log if line["split"] == "val"]
    assert [line["step"] for line in train_lines] == list(range(10, 100, 10))
    assert [line["step"] for line in val_lines] == [30, 60, 90]
    expected = {"total", "shared", "prior_a", "prior_b", "rec_a", "rec_b", "cross", "grad_norm"}
    assert expected <= set(train_lines[0])
    # Loss decreases: on training batches and on the held-out pairs.
    assert train_lines[-1]["total"] < train_lines[0]["total"] - 5
    assert val_lines[-1]["total"] < val_lines[0]["total"] - 3
    assert val_lines[-1]["rec_b"] < 0.5 * val_lines[0]["rec_b"]
    assert result.terms == {k: v for k, v in train_lines[-1].items() if k in result.terms}
    assert result.val_terms["total"] == val_lines[-1]["total"]
    assert (
        json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))["train"]["steps"] == 90
    )

    # K outputs of the right kind per input; the same translations after reloading.
    inputs = toy_split(5, seed=9).a
    outputs = result.bridge.translate(
        inputs, "vector", samples=3, generator=torch.Generator().manual_seed(4)
    )
    assert len(outputs) == 5 and all(len(row) == 3 for row in outputs)
    assert all(isinstance(x, torch.Tensor) and x.shape == (6,) for row in outputs for x in row)
    reloaded = load_bridge(result.checkpoint)
    assert not reloaded.training
    again = reloaded.translate(
        inputs, "vector", samples=3, generator=torch.Generator().manual_seed(4)
    )
    for row, row_again in zip(outputs, again, strict=True):
        torch.testing.assert_close(torch.stack(row), torch.stack(row_again), rtol=0, atol=0)


RESUMABLE = dict(
    paired_fraction=0.5,
    unpaired_warmup=1,
    unpaired_every=2,
    unpaired_batch_size=4,
    validate_every=3,
    checkpoint_every=3,
    log_every=1,
    grad_clip=0.5,
)


def _density_contrast_settings(out, **train) -> dict:
    """``toy_settings`` with the residual priors' density contrast on (its negatives are
    random draws: resume must continue them)."""
    settings = toy_settings(out, **train)
    settings["model"].update(
        weights={"prior_nce_a": 1.0, "prior_nce_b": 0.5}, prior_nce_negatives=3
    )
    return settings


@pytest.fixture(params=["plain", "adversarial", "density-contrast"])
def resumable(request):
    """The resume tests' config for ``(out, steps)``: the toy run, one that also trains a
    discriminator (whose parameters and optimiser state must resume exactly too), or one
    whose loss draws the density contrast's negatives."""
    settings = {
        "plain": toy_settings,
        "adversarial": adversarial_settings,
        "density-contrast": _density_contrast_settings,
    }[request.param]
    return lambda out, steps: load_run_config(settings(out, steps=steps, **RESUMABLE))


@pytest.fixture
def straight(tmp_path, resumable):
    """Parameters and log of 8 uninterrupted steps."""
    result = Trainer(resumable(tmp_path / "straight", 8)).run()
    return parameters(result.bridge), read_log(result)


def assert_same_parameters(bridge, expected):
    actual = parameters(bridge)
    assert actual.keys() == expected.keys()
    for key in expected:
        assert torch.equal(actual[key], expected[key]), f"{key} differs"


def test_half_run_plus_resume_equals_the_straight_run(tmp_path, resumable, straight):
    out = tmp_path / "halves"
    first = Trainer(resumable(out, 4)).run()
    assert load_checkpoint(first.checkpoint)["step"] == 4
    second = Trainer(resumable(out, 8), resume=True).run()
    assert second.step == 8
    assert_same_parameters(second.bridge, straight[0])
    # The resumed log continues the first: train lines 1..8 once each, with the same numbers
    # (the first half also validated at its end, step 4).
    lines = [line for line in read_log(second) if line["split"] == "train"]
    expected = [line for line in straight[1] if line["split"] == "train"]
    assert [line["step"] for line in lines] == list(range(1, 9))
    assert [line["total"] for line in lines] == [line["total"] for line in expected]
    assert [line.get("critic") for line in lines] == [line.get("critic") for line in expected]


def test_the_logs_time_counts_the_training_before_a_resume(tmp_path, monkeypatch):
    """A resumed run's "time" goes on from the seconds its checkpoint had trained, not from
    0; the time between invocations, and what a crash undid, are not counted. The clock
    here moves only when a step's callback advances it by 10 s."""
    clock = SimpleNamespace(now=1000.0)
    monkeypatch.setattr(loop, "time", SimpleNamespace(perf_counter=lambda: clock.now))

    def tick(trainer, step, terms):
        clock.now += 10.0

    def crash(trainer, step, terms):
        if step == 7:
            raise RuntimeError("crashed")

    out = tmp_path / "run"
    settings = toy_settings(out, steps=4, log_every=2, checkpoint_every=0)
    Trainer(load_run_config(settings), callbacks=[tick]).run()
    assert load_checkpoint(out / "checkpoint.pt")["training"]["seconds"] == 40.0
    clock.now += 500.0
    settings["train"].update(steps=8, checkpoint_every=2)
    with pytest.raises(RuntimeError, match="crashed"):
        Trainer(load_run_config(settings), resume=True, callbacks=[tick, crash]).run()
    # Step 6 was saved before its callback: at 40 + 10 s.
    assert load_checkpoint(out / "checkpoint.pt")["training"]["seconds"] == 50.0
    Trainer(load_run_config(settings), resume=True, callbacks=[tick]).run()
    log = [
        json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    # A record is written before its step's callback: step 2 at 10 s, step 4 at 30 s.
    assert [(line["step"], line["time"]) for line in log if line["split"] == "train"] == [
        (2, 10.0),
        (4, 30.0),
        (6, 50.0),
        (8, 60.0),
    ]


def test_resume_drops_a_log_line_cut_short_and_names_a_damaged_one(tmp_path):
    log = train(toy_config(tmp_path, steps=4, log_every=1)).log
    # A blank line, then a record cut short while it was written (a kill, a full disk).
    log.write_text(log.read_text(encoding="utf-8") + '\n{"step": 5, "spl', encoding="utf-8")
    resumed = train(toy_config(tmp_path, steps=6, log_every=1), resume=True)
    steps = [line["step"] for line in read_log(resumed) if line["split"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]
    lines = log.read_text(encoding="utf-8").splitlines()
    log.write_text("\n".join([*lines[:2], "{not a record", *lines[2:]]) + "\n", encoding="utf-8")
    with pytest.raises(
        ValueError, match=r"log\.jsonl, line 3, is not a log record .*'\{not a record'; delete"
    ):
        # (In run, once the directory is locked: building only reads the run directory.)
        Trainer(toy_config(tmp_path, steps=8), resume=True).run()


def test_an_interrupt_checkpoints_the_last_step_and_resume_continues(tmp_path, resumable, straight):
    out = tmp_path / "interrupted"

    def interrupt(trainer, step, terms):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(resumable(out, 8), callbacks=[interrupt]).run()
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 5
    resumed = Trainer(resumable(out, 8), resume=True).run()
    assert_same_parameters(resumed.bridge, straight[0])


def signal_after_the_update(trainer, at_step, *signals):
    """Send ``signals`` to this process right after the optimiser's update of step
    ``at_step``: where a plain ``KeyboardInterrupt`` would checkpoint the old step's counter
    with the new step's parameters."""
    update = trainer.optimizer.step

    def step(*args, **kwargs):
        result = update(*args, **kwargs)
        if trainer.step + 1 == at_step:
            for number in signals:
                signal.raise_signal(number)
        return result

    trainer.optimizer.step = step
    return trainer


@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_after_the_step_it_came_in_and_resume_continues(
    tmp_path, resumable, straight, number
):
    out = tmp_path / "signalled"
    trainer = signal_after_the_update(Trainer(resumable(out, 8)), 5, number)
    with pytest.raises(TrainingInterrupted) as stopped:
        trainer.run()
    assert (stopped.value.signal, stopped.value.step, stopped.value.checkpoint) == (number, 5, True)
    assert stopped.value.exit_code == 128 + number
    # What a notebook's traceback shows, since no command prints how to go on there.
    resume = (
        f"resume=True (train or Trainer) continues the run from {out / 'checkpoint.pt'} (step 5)"
    )
    assert getattr(stopped.value, "__notes__", [resume]) == [resume]
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 5
    log = [
        json.loads(line) for line in (out / "log.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    assert [line["step"] for line in log if line["split"] == "train"] == [1, 2, 3, 4, 5]
    resumed = Trainer(resumable(out, 8), resume=True).run()
    assert_same_parameters(resumed.bridge, straight[0])


def test_a_second_signal_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    out = tmp_path / "twice"
    config = load_run_config(toy_settings(out, steps=8, checkpoint_every=3))
    trainer = signal_after_the_update(Trainer(config), 5, signal.SIGINT, signal.SIGINT)
    with pytest.raises(TrainingInterrupted) as stopped:
        trainer.run()
    # Step 5's update happened, its counter did not: nothing of step 5 may reach a checkpoint.
    assert (stopped.value.step, stopped.value.checkpoint) == (4, False)
    older = (
        f"resume=True (train or Trainer) continues the run from {out / 'checkpoint.pt'} (step 3)"
    )
    assert getattr(stopped.value, "__notes__", [older]) == [older]
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 3
    assert trainer.last_checkpoint_step == 3


def test_a_signal_in_the_final_checkpoint_still_stops_the_caller(tmp_path, monkeypatch):
    out = tmp_path / "last"
    save = Trainer.save

    def signalled_save(self, collective=True):
        path = save(self, collective)
        if self.step == 4:
            signal.raise_signal(signal.SIGTERM)
        return path

    monkeypatch.setattr(Trainer, "save", signalled_save)
    with pytest.raises(TrainingInterrupted) as stopped:
        Trainer(load_run_config(toy_settings(out, steps=4, checkpoint_every=0))).run()
    assert (stopped.value.step, stopped.value.checkpoint) == (4, True)
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 4


def test_signal_handlers_are_the_runs_own_and_put_back(tmp_path):
    def guard(number, frame):  # what the process did before (and after) the run
        raise AssertionError("the run's own handler should have taken this signal")

    seen = {}

    def look(trainer, step, terms):
        seen[step] = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))

    before = signal.signal(signal.SIGINT, guard), signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        Trainer(load_run_config(toy_settings(tmp_path, steps=2)), callbacks=[look]).run()
        # SIGINT is the run's while it trains; SIGTERM was ignored and stays ignored.
        assert seen[1][0] is not guard and callable(seen[1][0])
        assert seen[1][1] is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is guard
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before[0])
        signal.signal(signal.SIGTERM, before[1])


def test_a_run_outside_the_main_thread_trains_without_signal_handlers(tmp_path):
    results, errors = [], []

    def run():
        try:
            results.append(Trainer(load_run_config(toy_settings(tmp_path, steps=2))).run())
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert not errors and results[0].step == 2


def test_a_non_finite_loss_stops_before_the_update_and_keeps_the_checkpoint(tmp_path):
    config = toy_config(tmp_path, steps=10, checkpoint_every=2)
    config.domains.a.name = "poisonable"
    config.data.dataset = ""

    def poison(trainer, step, terms):
        if step == 5:
            trainer.bridge.domains["a"].poisoned = True

    trainer = Trainer(config, train_data=toy_split(32, seed=1), callbacks=[poison])
    assert isinstance(trainer.bridge.domains["a"], Poisonable)
    with pytest.raises(NonFiniteLossError, match=r"at step 6: .*rec_a = nan") as caught:
        trainer.run()
    assert caught.value.step == 6 and "rec_a" in caught.value.terms
    assert "total" not in caught.value.terms
    assert caught.value.checkpoint == trainer.checkpoint_path
    # The periodic checkpoint of step 4 stays the run's: a resume from step 5 would replay
    # step 6 exactly, so a lower learning rate must go back further. Step 5, the last finite
    # one (step 6 changed nothing), is kept beside it.
    beside = tmp_path / "checkpoint-step5.pt"
    assert (
        f"the checkpoint of step 4 is {trainer.checkpoint_path}: continue from it with --resume "
        f"(resume=True) and a lower train.lr or a train.grad_clip. Step 5, the last finite one, "
        f"is in {beside} (load_bridge reads it; a resume replays step 6 exactly"
        in str(caught.value)
    )
    assert load_checkpoint(trainer.checkpoint_path)["step"] == 4
    assert caught.value.last_finite == beside
    checkpoint = load_checkpoint(beside)
    assert checkpoint["step"] == 5 == trainer.step
    assert all(torch.isfinite(v).all() for v in checkpoint["model"].values())
    assert all(torch.isfinite(p).all() for p in trainer.bridge.parameters())
    assert trainer.last_checkpoint_step == 4


def _blow_up_at(at):
    """A callback that multiplies side a's encoder weights by 1e30 after step ``at``: the
    codes of the next forward pass overflow, as after too high a learning rate."""

    def blow_up(trainer, step, terms):
        if step == at:
            with torch.no_grad():
                for parameter in trainer.bridge.encoders["a"].parameters():
                    parameter.mul_(1e30)

    return blow_up


def test_diverged_weights_that_make_non_finite_codes_stop_as_a_non_finite_loss(tmp_path):
    """Codes that a flow's input check refuses in the forward pass stop the run the same way,
    naming what was not finite, and keep the last good checkpoint instead of saving the
    diverged weights over it; in the training step or in the validation after the last."""
    config = toy_config(tmp_path / "step", steps=10, checkpoint_every=2)
    trainer = Trainer(config, train_data=toy_split(32, seed=1), callbacks=[_blow_up_at(5)])
    message = r"^non-finite codes in the forward pass of step 6: .* contains NaN or Inf values"
    with pytest.raises(NonFiniteLossError, match=message) as caught:
        trainer.run()
    assert caught.value.step == 6 and caught.value.terms == ("total",)
    assert "training stopped and the checkpoint of step 4 is" in str(caught.value)
    assert load_checkpoint(trainer.checkpoint_path)["step"] == 4

    config = toy_config(tmp_path / "validation", steps=5, checkpoint_every=2)
    trainer = Trainer(config, callbacks=[_blow_up_at(5)])
    assert trainer.validation is not None
    message = r"^non-finite codes in the validation after step 5: .* contains NaN or Inf values"
    with pytest.raises(NonFiniteLossError, match=message) as caught:
        trainer.run()
    assert caught.value.step == 5 and "the checkpoint of step 4 is" in str(caught.value)
    assert load_checkpoint(trainer.checkpoint_path)["step"] == 4


def test_partition_keeps_a_fraction_of_the_pairs():
    split = toy_split(10, seed=0)
    split = PairedSplit(split.a, split.b, unpaired_a=[torch.zeros(4)], unpaired_b=[])
    parts = partition(split, 0.3, seed=5)
    assert len(parts.a) == len(parts.b) == 3
    assert len(parts.unpaired_a) == 8 and len(parts.unpaired_b) == 7
    index = {id(x): i for i, x in enumerate(split.a)}
    index_b = {id(x): i for i, x in enumerate(split.b)}
    assert [index[id(x)] for x in parts.a] == [index_b[id(x)] for x in parts.b]
    freed_a = {index[id(x)] for x in parts.unpaired_a[:7]}
    assert freed_a == {index_b[id(x)] for x in parts.unpaired_b}
    assert freed_a.isdisjoint(index[id(x)] for x in parts.a)
    assert partition(split, 0.3, seed=5).a == parts.a
    assert len(partition(split, 0.01, seed=5).a) == 1  # never no pairs at all


def test_unpaired_items_on_one_side_only_train(tmp_path):
    # All pairs kept (paired_fraction 1) and unpaired images alone: the other side has no
    # unpaired batch (and no sampler), which used to raise KeyError: 'unpaired_b'.
    split = toy_split(12, seed=0)
    extra = toy_split(6, seed=1).a
    seen = []
    config = toy_config(tmp_path, steps=3, paired_fraction=1.0)
    result = train(
        config,
        PairedSplit(split.a, split.b, unpaired_a=extra),
        callbacks=[lambda trainer, step, terms: seen.append(terms)],
    )
    assert result.step == 3
    assert all("unpaired_rec_a" in terms and "unpaired_rec_b" not in terms for terms in seen)


def test_unpaired_batches_follow_their_schedule(tmp_path):
    seen = []
    config = toy_config(tmp_path, steps=9, paired_fraction=0.5, unpaired_warmup=2)
    config.train.unpaired_every = 3
    train(config, callbacks=[lambda trainer, step, terms: seen.append(terms)])
    due = [step for step, terms in enumerate(seen, 1) if "unpaired_total" in terms]
    assert due == [3, 6, 9]
    assert {"unpaired_rec_a", "unpaired_rec_b", "unpaired_prior_a"} <= set(seen[2])
    assert "unpaired_rec_a" not in seen[0]
    off = toy_config(tmp_path / "off", steps=3, paired_fraction=0.5, unpaired_weight=0.0)
    assert Trainer(off).unpaired == {}
    back = toy_config(tmp_path / "back", steps=2, paired_fraction=0.5)
    back.model.weights.back_b = 1.0
    seen.clear()
    train(back, callbacks=[lambda trainer, step, terms: seen.append(terms)])
    assert all("unpaired_back_b" in terms and "unpaired_back_a" not in terms for terms in seen)


def test_a_time_budget_ends_the_run_like_its_last_step(tmp_path, monkeypatch):
    # A fake clock that each step advances by one second: the budget of 3.5 s is spent
    # after step 4, so step 5 is the last (the check follows each step).
    clock = [0.0]
    monkeypatch.setattr(loop.time, "perf_counter", lambda: clock[0])

    def tick(trainer, step, terms):
        clock[0] += 1.0

    config = toy_config(tmp_path, steps=50, max_seconds=3.5, log_every=2)
    result = train(config, callbacks=[tick])
    assert result.step == 5
    assert load_checkpoint(result.checkpoint)["step"] == 5
    log = read_log(result)
    assert [line["step"] for line in log if line["split"] == "train"] == [2, 4, 5]
    assert [line["step"] for line in log if line["split"] == "val"] == [5]
    # The budget belongs to each invocation: a resumed run gets it anew.
    resumed = train(config, resume=True, callbacks=[tick])
    assert resumed.step == 10
    for bad in (-1.0, math.inf, math.nan):
        with pytest.raises(ConfigError, match="max_seconds must be a finite number >= 0"):
            toy_config(tmp_path, max_seconds=bad)


def test_gradients_are_clipped_by_value_or_norm(tmp_path):
    for mode in ("value", "norm"):
        seen = []

        def inspect(trainer, step, terms, seen=seen):
            grads = [p.grad for p in trainer.bridge.parameters() if p.grad is not None]
            norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
            seen.append((terms["grad_norm"], max(g.abs().max() for g in grads), norm))

        config = toy_config(tmp_path / mode, steps=3, grad_clip=0.01, grad_clip_mode=mode)
        train(config, callbacks=[inspect])
        for unclipped, largest, norm in seen:
            assert unclipped > 0.05
            if mode == "value":
                assert largest <= 0.01 and norm > 0.01
            else:
                assert norm == pytest.approx(0.01, rel=1e-4)


def test_validation_and_collating_per_batch_leave_training_unchanged(tmp_path):
    plain = train(toy_config(tmp_path / "plain", steps=4))
    busy = toy_config(tmp_path / "busy", steps=4, validate_every=1)
    busy.train.collate_upfront = False
    assert_same_parameters(train(busy).bridge, parameters(plain.bridge))


def test_a_validation_that_fails_leaves_the_model_training(tmp_path, monkeypatch):
    """A caller that catches the error of a bad validation batch goes on training with
    dropout and the like on, not in the evaluation mode the validation set."""
    trainer = Trainer(toy_config(tmp_path, steps=2, validate_every=1))
    bridge = trainer.evaluation_bridge
    assert bridge.training

    def broken(*batch):
        raise RuntimeError("a bad validation batch")

    monkeypatch.setattr(bridge, "batch_loss", broken)
    with pytest.raises(RuntimeError, match="a bad validation batch"):
        trainer.validate()
    assert bridge.training


def test_a_dataset_listing_the_domains_the_other_way_round_is_flipped(tmp_path):
    settings = toy_settings(tmp_path, steps=1)
    settings["data"]["options"] = {"flipped": True}
    trainer = Trainer(load_run_config(settings))
    assert trainer.paired[0].take(torch.tensor([0])).shape == (1, 4)
    assert trainer.paired[1].take(torch.tensor([0])).shape == (1, 6)
    settings["domains"]["b"]["name"] = "poisonable"
    with pytest.raises(ConfigError, match=r"pairs domains \('other', 'vector'\)"):
        Trainer(load_run_config(settings))


@pytest.mark.parametrize("flipped", [False, True])
def test_a_dataset_checks_the_domains_before_it_reads_a_split(tmp_path, monkeypatch, flipped):
    """``PairedDataset.check_domains`` gets the domains in the dataset's own order (a
    flipped dataset too) and its error stops the run before any item is read."""
    settings = toy_settings(tmp_path, steps=1)
    settings["data"]["options"] = {"flipped": flipped}
    settings["domains"]["b"]["options"]["features"] = 5
    monkeypatch.setattr(ToyPairs, "split", lambda self, name: pytest.fail("a split was read"))
    with pytest.raises(ValueError, match="other items of 6 features, but the other domain's "):
        Trainer(load_run_config(settings))


def test_resuming_needs_the_same_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        Trainer(toy_config(tmp_path, steps=2), resume=True)
    train(toy_config(tmp_path, steps=2))
    with pytest.raises(FileExistsError, match="already holds a checkpoint"):
        Trainer(toy_config(tmp_path, steps=4))
    settings = toy_settings(tmp_path, steps=4)
    settings["model"]["shared_features"] = 2
    settings["data"]["options"] = {"size": 40}
    with pytest.raises(CheckpointError, match=r"model\.shared_features \(3 in the checkpoint"):
        Trainer(load_run_config(settings), resume=True)
    settings = toy_settings(tmp_path, steps=4)
    settings["domains"]["a"]["name"] = "poisonable"
    with pytest.raises(CheckpointError, match="was trained on domains a = 'vector'"):
        Trainer(load_run_config(settings), resume=True)
    # The train settings that decide which items are pairs and which batches are drawn may not.
    changed = toy_config(tmp_path, steps=4, paired_fraction=0.5, seed=1, unpaired_weight=0.0)
    with pytest.raises(
        CheckpointError,
        match=r"train\.paired_fraction \(1\.0 in the checkpoint, now 0\.5\); train\.seed \(0 in "
        r"the checkpoint, now 1\); train\.unpaired_weight \(1\.0 in the checkpoint, now 0\.0; 0 "
        r"draws no unpaired batches\)\. Resume with",
    ):
        Trainer(changed, resume=True)
    # Training settings may change on resume (here: more steps, another learning rate, another
    # weight of the unpaired batches).
    resumed = Trainer(toy_config(tmp_path, steps=3, lr=1e-3, unpaired_weight=0.5), resume=True)
    assert resumed.run().step == 3


def test_a_run_saved_before_a_setting_existed_resumes_with_its_default(tmp_path):
    train(toy_config(tmp_path, steps=2))
    path = tmp_path / "checkpoint.pt"
    saved = load_checkpoint(path)
    # What an older flowbridge wrote: no contrastive term among the settings.
    del saved["run"]["model"]["contrastive_temperature"]
    del saved["run"]["model"]["weights"]["contrastive"]
    torch.save(saved, path)
    assert Trainer(toy_config(tmp_path, steps=3), resume=True).run().step == 3
    # A real change of that setting is still refused.
    settings = toy_settings(tmp_path, steps=4)
    settings["model"]["weights"] = {"contrastive": 1.0}
    with pytest.raises(CheckpointError, match=r"model\.weights\.contrastive \(0\.0 in the"):
        Trainer(load_run_config(settings), resume=True)


def test_bad_setups_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="names no domains: set"):
        Trainer(load_run_config({"train": {"out": str(tmp_path)}}))
    # With a dataset configured, its pair is what to set.
    message = r"dataset 'toy-pairs' pairs 'vector' with 'other', so set \[domains\.a\] name"
    with pytest.raises(ValueError, match=message):
        Trainer(load_run_config({"data": {"dataset": "toy-pairs"}, "train": {"out": "x"}}))
    no_data = toy_config(tmp_path)
    no_data.data.dataset = ""
    with pytest.raises(ConfigError, match="no training data"):
        Trainer(no_data)
    settings = toy_settings(tmp_path)
    settings["data"]["val_split"] = "novel"
    with pytest.raises(ConfigError, match="has no split 'novel'"):
        Trainer(load_run_config(settings))
    with pytest.raises(TypeError, match="RunConfig"):
        Trainer({"train": {}})
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="torch.cuda.is_available"):
            Trainer(toy_config(tmp_path, device="cuda"))


def test_logged_means_are_finite_numbers(tmp_path):
    result = train(toy_config(tmp_path, steps=4, log_every=2))
    for line in read_log(result):
        assert all(math.isfinite(v) for k, v in line.items() if k not in ("split",))


def test_adam_betas_reach_the_optimiser_change_the_run_and_resume_with_it(tmp_path):
    betas = [0.5, 0.9]  # as a TOML file gives them
    trainer = Trainer(toy_config(tmp_path / "straight", steps=6, adam_betas=betas))
    assert trainer.optimizer.param_groups[0]["betas"] == (0.5, 0.9)
    straight = parameters(trainer.run().bridge)
    default = parameters(train(toy_config(tmp_path / "default", steps=6)).bridge)
    assert any(not torch.equal(straight[k], default[k]) for k in straight)
    # The run's config.json holds them as a list; a resume reads it back and goes on alike.
    assert_resumes_from_its_config_json(tmp_path, straight, adam_betas=betas)


def assert_resumes_from_its_config_json(tmp_path, expected, **setting):
    """Half a 6-step run with the train ``setting``, resumed from the ``config.json`` it saved
    (lists where the config holds tuples, as TOML gives them), ends with ``expected``'s weights."""
    ((key, value),) = setting.items()
    Trainer(toy_config(tmp_path / "halves", steps=3, **setting)).run()
    saved = json.loads((tmp_path / "halves" / "config.json").read_text(encoding="utf-8"))
    assert saved["train"][key] == value
    saved["train"]["steps"] = 6
    resumed = Trainer(load_run_config(saved), resume=True).run()
    assert_same_parameters(resumed.bridge, expected)


def test_a_weight_schedule_scales_its_term_each_step_and_resumes_on_the_same_curve(tmp_path):
    fade = {"rec_a": [[2, 1.0], [4, 0.0]]}  # as a TOML file gives it
    straight = train(toy_config(tmp_path / "straight", weight_schedule=fade, log_every=1))
    base = straight.bridge.config.weights.rec_a
    logged = [entry["weight_rec_a"] for entry in read_log(straight) if entry["split"] == "train"]
    assert logged == pytest.approx([base, base, base / 2, 0.0, 0.0, 0.0])
    # A factor of 0 throughout trains exactly as a weight of 0 does, on unpaired batches too.
    unpaired = {"paired_fraction": 0.5}
    off = train(toy_config(tmp_path / "off", weight_schedule={"rec_a": [[0, 0.0]]}, **unpaired))
    settings = toy_settings(tmp_path / "zero", **unpaired)
    settings["model"]["weights"] = {"rec_a": 0.0}
    zero = train(load_run_config(settings))
    assert_same_parameters(off.bridge, parameters(zero.bridge))
    faded, default = parameters(straight.bridge), parameters(train(toy_config(tmp_path)).bridge)
    assert any(not torch.equal(v, default[k]) for k, v in faded.items())
    # Halfway through the fade, a resume from the saved config.json goes on alike.
    assert_resumes_from_its_config_json(tmp_path, faded, weight_schedule=fade)


def test_validation_totals_the_terms_with_the_configured_weights(tmp_path):
    config = toy_config(tmp_path, weight_schedule={"rec_a": [[0, 0.0]]}, validate_every=3)
    trainer = Trainer(config)
    trainer.run()
    terms, weights = trainer.val_terms, vars(config.model.weights)
    assert terms["rec_a"] > 0
    expected = sum(weights[key] * value for key, value in terms.items() if key in weights)
    assert terms["total"] == pytest.approx(expected, rel=1e-5)


def test_adam_is_fused_where_torch_can_and_its_state_loads_on_any_kernel(monkeypatch):
    weights = [torch.nn.Parameter(torch.randn(3, 2)) for _ in range(2)]
    copies = [torch.nn.Parameter(w.detach().clone()) for w in weights]
    fused = loop._adam(weights, lr=0.1)
    assert fused.param_groups[0]["fused"]  # torch >= 2.4 has a CPU kernel (we pin 2.13)

    adam = torch.optim.Adam

    def without_fused_kernels(parameters, lr, betas, fused=None):
        if fused:
            raise RuntimeError("`fused=True` requires all the params to be ... supported devices")
        return adam(parameters, lr=lr, betas=betas)

    monkeypatch.setattr(torch.optim, "Adam", without_fused_kernels)
    plain = loop._adam(copies, lr=0.1)
    assert not plain.param_groups[0]["fused"]
    for step in range(3):
        for optimizer, params in ((fused, weights), (plain, copies)):
            for i, p in enumerate(params):
                p.grad = torch.full_like(p, step - i + 0.5)
            optimizer.step()
    for w, c in zip(weights, copies, strict=True):  # the same update, either kernel
        torch.testing.assert_close(w, c)
    # A checkpoint written with the fused kernel resumes where there is none, and vice versa.
    resume.load_optimizer_state(plain, fused.state_dict())
    assert not plain.param_groups[0]["fused"]
    torch.testing.assert_close(
        plain.state[copies[0]]["exp_avg"], fused.state[weights[0]]["exp_avg"]
    )
    plain.step()


def test_a_run_leaves_the_callers_random_stream_alone_and_is_not_moved_by_it(tmp_path):
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    trainer = Trainer(toy_config(tmp_path / "one", steps=4))
    first = trainer.run()
    assert torch.equal(torch.rand(3), expected)
    # What the caller draws between building and running is not the run's noise.
    other = Trainer(toy_config(tmp_path / "two", steps=4))
    torch.rand(1000)
    second = other.run()
    assert first.terms == second.terms
    for key, value in first.bridge.state_dict().items():
        assert torch.equal(value, second.bridge.state_dict()[key]), key


def test_a_callbacks_draws_do_not_move_the_run_and_a_resume_stays_exact(tmp_path):
    def monitor(trainer, step, terms):
        torch.rand(5)  # e.g. a translate without a generator, to watch the run

    straight = Trainer(toy_config(tmp_path / "straight", steps=4)).run()
    watched = Trainer(toy_config(tmp_path / "watched", steps=4), callbacks=[monitor]).run()
    Trainer(toy_config(tmp_path / "resumed", steps=2), callbacks=[monitor]).run()
    resumed = Trainer(toy_config(tmp_path / "resumed", steps=4), resume=True).run()
    for result in (watched, resumed):
        for key, value in straight.bridge.state_dict().items():
            assert torch.equal(value, result.bridge.state_dict()[key]), key

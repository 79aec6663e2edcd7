"""Nothing is lost: a signal to one rank of a data-parallel run, a NaN, a stale log, a second
run in the same directory, a kill mid-write, a finished run resumed, a resume with another
number of processes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from test_training_support import (  # noqa: F401 (fixtures)
    parameters,
    plugin,
    run_ranks,
    toy_config,
    toy_plugin,
    toy_split,
)

from flowbridge.checkpoint import load_checkpoint
from flowbridge.training import NonFiniteLossError, Trainer, TrainingInterrupted, loop
from flowbridge.training.data import spot_indices
from flowbridge.training.rundir import locked

pytestmark = pytest.mark.usefixtures("plugin")


def signal_after_the_update(trainer, at_step, number=signal.SIGTERM):
    """Send ``number`` to this process right after the optimiser's update of ``at_step``."""
    update = trainer.optimizer.step

    def step(*args, **kwargs):
        result = update(*args, **kwargs)
        if trainer.step + 1 == at_step:
            signal.raise_signal(number)
        return result

    trainer.optimizer.step = step
    return trainer


def train_steps(result):
    return [
        (line["step"], line["total"])
        for line in map(json.loads, result.log.read_text(encoding="utf-8").splitlines())
        if line["split"] == "train"
    ]


def assert_same(actual, expected):
    assert actual.keys() == expected.keys()
    assert all(torch.equal(actual[k], expected[k]) for k in expected), "parameters differ"


# -- a signal under torchrun ----------------------------------------------------------------------
def _ddp_worker(rank: int, port: int, root: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # one group for the three runs (the trainers join it)
    with toy_plugin():
        straight = Trainer(toy_config(f"{root}/straight", steps=6)).run()
        config = toy_config(f"{root}/cut", steps=6)
        trainer = Trainer(config)
        if rank == 1:  # the signal reaches this rank only (torchrun's SIGTERM to one worker)
            signal_after_the_update(trainer, 3)
        else:  # a slow write (a large model): rank 1 must wait for it before it exits
            save = loop.save_checkpoint
            loop.save_checkpoint = lambda *a, **k: (time.sleep(1), save(*a, **k))[1]
        try:
            trainer.run()
        except TrainingInterrupted as stopped:
            assert (stopped.signal, stopped.step, stopped.checkpoint) == (signal.SIGTERM, 3, True)
        else:
            raise AssertionError(f"rank {rank} did not stop")
        saved = load_checkpoint(f"{root}/cut/checkpoint.pt")  # already written on rank 1 too
        assert saved["step"] == 3 and len(saved["rng"]["torch"]) == 2  # every rank's RNG state
        resumed = Trainer(config, resume=True).run()
        assert_same(parameters(resumed.bridge), parameters(straight.bridge))
    # As Distributed.close does after a run: a rank that tears the group down while the other
    # still reads the last all-reduce makes gloo abort that one (SIGABRT at exit, now and then).
    dist.barrier()
    dist.destroy_process_group()


def test_a_signal_to_one_rank_stops_all_with_every_ranks_state_and_resume_continues(tmp_path):
    run_ranks(_ddp_worker, str(tmp_path), seconds=90)


def _bad_item_worker(rank: int, port: int, root: str, index: int) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    with toy_plugin():
        config = toy_config(root, steps=100, batch_size=4, collate_upfront=False)
        config.domains.a.name, config.data.dataset = "checked-vector", ""
        split = toy_split(300, seed=0)
        split.a[index] = torch.zeros(5)  # in one rank's share of some batch, not the other's
        trainer = Trainer(config, split)
        try:
            trainer.run()
        except ValueError as stopped:
            message = str(stopped)
        else:
            raise AssertionError(f"rank {rank} did not stop")
    # Both ranks stop after the same step, one naming the item, the other pointing to it.
    step = trainer.step
    assert 0 < step < 100 and f"Training stopped after step {step}, whose checkpoint" in message
    saved = load_checkpoint(f"{root}/checkpoint.pt")
    assert saved["step"] == step and len(saved["rng"]["torch"]) == 2
    Path(root, f"stopped-{rank}.txt").write_text(
        message, encoding="utf-8"
    )  # for the parent to compare


def test_a_bad_item_on_one_rank_stops_every_rank_with_a_checkpoint(tmp_path):
    # The trainer collates a spot check of the items up front: pick one it leaves to batches.
    spots = set(spot_indices(300, 256).tolist())
    index = next(i for i in range(300) if i not in spots)
    run_ranks(_bad_item_worker, str(tmp_path), index, seconds=90)
    messages = [(tmp_path / f"stopped-{rank}.txt").read_text(encoding="utf-8") for rank in (0, 1)]
    # The rank that met the item names it; the other says another rank met one.
    named = [f"train_data.a[{index}]" in message for message in messages]
    pointed = ["another rank met an item" in message for message in messages]
    assert sorted(named) == [False, True] and pointed == [not n for n in named]


def test_a_signal_right_after_a_periodic_checkpoint_does_not_write_it_again(tmp_path, monkeypatch):
    written = []
    save = loop.save_checkpoint
    monkeypatch.setattr(
        loop, "save_checkpoint", lambda *a, **k: written.append(k["step"]) or save(*a, **k)
    )
    trainer = signal_after_the_update(Trainer(toy_config(tmp_path, steps=6, checkpoint_every=3)), 3)
    with pytest.raises(TrainingInterrupted):
        trainer.run()
    assert written == [3]


# -- a NaN -----------------------------------------------------------------------------------------
def poisoned_config(out, steps, **train):
    config = toy_config(out, steps=steps, log_every=1, **train)
    config.domains.a.name = "poisonable"
    config.data.dataset = ""
    return config


def test_a_nan_saves_the_last_good_step_and_a_resume_goes_on_from_it(tmp_path):
    data = toy_split(32, seed=1)
    straight = Trainer(poisoned_config(tmp_path / "straight", 6), train_data=data).run()

    def poison(trainer, step, terms):
        if step == 3:
            trainer.bridge.domains["a"].poisoned = True

    out = tmp_path / "nan"
    trainer = Trainer(poisoned_config(out, 6), train_data=data, callbacks=[poison])
    with pytest.raises(NonFiniteLossError, match=r"at step 4: .*checkpoint of step 3") as caught:
        trainer.run()
    # Its only checkpoint: a resume goes on from it once the cause is gone, a lower learning
    # rate alone would meet step 4 again.
    assert "a resume replays step 4 exactly, so from step 3 it goes on only once a cause" in str(
        caught.value
    )
    assert caught.value.checkpoint == trainer.checkpoint_path
    assert load_checkpoint(out)["step"] == 3  # with the default checkpoint_every = 0
    # The saved step is exact: resumed with the same settings, it is the straight run.
    resumed = Trainer(poisoned_config(out, 6), train_data=data, resume=True).run()
    assert_same(parameters(resumed.bridge), parameters(straight.bridge))
    assert train_steps(resumed) == train_steps(straight)
    # A lower learning rate on resume is the one Adam uses (not the checkpoint's).
    lower = Trainer(poisoned_config(out, 8, lr=1e-4), train_data=data, resume=True)
    assert [group["lr"] for group in lower.optimizer.param_groups] == [1e-4]


# -- the run directory -----------------------------------------------------------------------------
def test_a_new_run_moves_an_abandoned_log_aside(tmp_path):
    stale = '{"step": 1, "split": "train", "total": 1.0}\n{"step": 2, "spl'
    (tmp_path / "log.jsonl").write_text(stale, encoding="utf-8")
    with pytest.warns(UserWarning, match="earlier run that wrote no checkpoint; moved"):
        result = Trainer(toy_config(tmp_path, steps=2, log_every=1)).run()
    assert [step for step, _ in train_steps(result)] == [1, 2]
    assert (tmp_path / "log.abandoned.jsonl").read_text(encoding="utf-8") == stale


def test_abandoned_logs_are_numbered_not_replaced(tmp_path):
    for n, name in enumerate(("log.abandoned.jsonl", "log.abandoned-2.jsonl"), 1):
        (tmp_path / "log.jsonl").write_text(
            f'{{"step": {n}, "split": "train"}}\n', encoding="utf-8"
        )
        with pytest.warns(UserWarning, match=f"moved them to .*{name}"):
            Trainer(toy_config(tmp_path / "", steps=1), resume=False).run()
        (tmp_path / "checkpoint.pt").unlink()  # as a run that wrote no checkpoint left it
        (tmp_path / "log.jsonl").unlink()
    first, second = (tmp_path / f"log.abandoned{n}.jsonl" for n in ("", "-2"))
    assert first.read_text(encoding="utf-8") == '{"step": 1, "split": "train"}\n'
    assert second.read_text(encoding="utf-8") == '{"step": 2, "split": "train"}\n'


def test_a_log_that_is_not_text_is_named_on_resume(tmp_path):
    Trainer(toy_config(tmp_path, steps=2)).run()
    (tmp_path / "log.jsonl").write_bytes(b'{"step": 1}\n\xff\xfe\n')
    with pytest.raises(ValueError, match=r"log\.jsonl is not a text log \(byte 12 is not UTF-8\)"):
        Trainer(toy_config(tmp_path, steps=4), resume=True).run()


def test_a_second_run_in_a_locked_directory_is_refused_and_every_exit_unlocks(tmp_path):
    Trainer(toy_config(tmp_path, steps=2)).run()
    log = (tmp_path / "log.jsonl").read_text(encoding="utf-8")
    with locked(tmp_path):  # another run holds the directory
        refused = Trainer(toy_config(tmp_path, steps=4), resume=True)
        with pytest.raises(FileExistsError, match=rf"another run \(pid {os.getpid()} on .*\) is"):
            refused.run()
    # Untouched by the refused run.
    assert (tmp_path / "log.jsonl").read_text(encoding="utf-8") == log
    assert json.loads((tmp_path / "config.json").read_text(encoding="utf-8"))["train"]["steps"] == 2
    # A trainer built but not run holds nothing; one that fails lets go of it.
    Trainer(toy_config(tmp_path, steps=3), resume=True)
    trainer = Trainer(toy_config(tmp_path, steps=4), resume=True, callbacks=[stop_at_3])
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert Trainer(toy_config(tmp_path, steps=4), resume=True).run().step == 4


def test_a_trainer_built_before_another_run_wrote_the_directory_does_not_overwrite_it(tmp_path):
    # Built side by side (a second terminal, a requeued job), run one after the other.
    first, second = (Trainer(toy_config(tmp_path, steps=n)) for n in (6, 2))
    first.run()
    saved = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(FileExistsError, match=r"written by another run after this trainer was"):
        second.run()
    assert (tmp_path / "checkpoint.pt").read_bytes() == saved
    # Two resumes of one run: the later must not take the run back to its own older step.
    first, second = (Trainer(toy_config(tmp_path, steps=n), resume=True) for n in (9, 8))
    assert first.run().step == 9
    with pytest.raises(FileExistsError, match=r"\(from an older one\); build the trainer again"):
        second.run()
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 9
    # A trainer's own checkpoints are no change: it runs again after it stopped.
    trainer = Trainer(toy_config(tmp_path, steps=12), resume=True, callbacks=[stop_at(10)])
    with pytest.raises(KeyboardInterrupt):
        trainer.run()
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 10


def test_a_directory_that_cannot_be_locked_trains_with_a_warning(tmp_path, monkeypatch):
    def no_locks(file, operation):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(pytest.importorskip("fcntl"), "flock", no_locks)
    with pytest.warns(UserWarning, match="cannot be locked \\(No locks available\\): training"):
        assert Trainer(toy_config(tmp_path, steps=2)).run().step == 2


def stop_at(step):
    def stop(trainer, at, terms):
        if at == step:
            raise KeyboardInterrupt

    return stop


def stop_at_3(trainer, step, terms):
    if step == 3:
        raise KeyboardInterrupt


def test_temporary_files_of_killed_writes_are_removed(tmp_path):
    left = [".checkpoint.pt.ab12cd34.tmp", ".config.json.x1.tmp", ".log.jsonl.y_2.tmp"]
    for name in [*left, ".notes.txt.k.tmp"]:
        (tmp_path / name).write_bytes(b"partial")
    Trainer(toy_config(tmp_path, steps=1)).run()
    assert sorted(p.name for p in tmp_path.glob(".*.tmp")) == [".notes.txt.k.tmp"]


@pytest.mark.parametrize("name", [".lock", "log.jsonl"])
def test_a_link_planted_at_a_file_the_run_writes_in_place_is_refused(tmp_path, name):
    # A run directory from elsewhere: the lock file is truncated and rewritten, the log
    # appended to (even through a link to a file that does not exist yet).
    out, victim = tmp_path / "run", tmp_path / "notes.txt"
    out.mkdir()
    (out / name).symlink_to(victim)
    with pytest.raises(FileExistsError, match=rf"{name} is a symbolic link \(to .*notes"):
        Trainer(toy_config(out, steps=1)).run()
    assert not victim.exists()
    victim.write_text("kept\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="symbolic link"):
        Trainer(toy_config(out, steps=1)).run()
    assert victim.read_text(encoding="utf-8") == "kept\n"


def test_resuming_a_finished_run_says_so_and_writes_nothing(tmp_path):
    Trainer(toy_config(tmp_path, steps=4, validate_every=2)).run()
    before = {name: (tmp_path / name).read_bytes() for name in ("log.jsonl", "config.json")}
    for steps in (4, 3):
        with pytest.warns(UserWarning, match="already trained 4 steps and train.steps is"):
            result = Trainer(toy_config(tmp_path, steps=steps), resume=True).run()
        assert result.step == 4
    after = {name: (tmp_path / name).read_bytes() for name in before}
    assert after == before  # no second validation record, and the run's target kept


# -- the log window and the number of processes ----------------------------------------------------
def test_a_stop_inside_a_log_window_resumes_to_the_straight_runs_log(tmp_path):
    straight = Trainer(toy_config(tmp_path / "straight", steps=8, log_every=4)).run()
    out = tmp_path / "cut"
    trainer = signal_after_the_update(Trainer(toy_config(out, steps=8, log_every=4)), 5)
    with pytest.raises(TrainingInterrupted):
        trainer.run()
    resumed = Trainer(toy_config(out, steps=8, log_every=4), resume=True).run()
    assert train_steps(resumed) == train_steps(straight)


def test_a_resume_with_another_number_of_processes_says_it_is_not_the_same_run(tmp_path):
    Trainer(toy_config(tmp_path, steps=2)).run()
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint["training"]["world_size"] == 1
    checkpoint["training"]["world_size"] = 2  # as a two-process run saves it
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    with pytest.warns(UserWarning, match="saved by a run of 2 process.* resumes with 1.* not "):
        Trainer(toy_config(tmp_path, steps=3), resume=True)

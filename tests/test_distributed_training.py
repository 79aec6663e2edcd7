"""Data-parallel training: two gloo processes take the same steps as one process."""

from __future__ import annotations

import os

import pytest
import torch
from test_training_support import (  # noqa: F401
    adversarial_settings,
    plugin,
    run_ranks,
    toy_plugin,
    toy_settings,
)

from flowbridge.checkpoint import load_checkpoint
from flowbridge.config import load_run_config
from flowbridge.distributed import Distributed, resolve_device, setup
from flowbridge.training import Trainer

# With posterior noise each rank draws its own, so two processes match one only in
# distribution; without it the steps must agree to float rounding.
TRAIN = dict(
    steps=4,
    batch_size=8,
    paired_fraction=0.5,
    unpaired_every=2,
    unpaired_batch_size=4,
    grad_clip=1.0,
    grad_clip_mode="norm",
    validate_every=2,
    log_every=1,
    # Each rank must scale the paired and the unpaired terms alike, step by step.
    weight_schedule={"rec_a": [[1, 1.0], [3, 0.0]]},
)


def config(out, adversarial=False):
    # With a discriminator, whose gradients the trainer averages itself (outside DDP).
    settings = (adversarial_settings if adversarial else toy_settings)(out, **TRAIN)
    settings["model"]["posterior_noise"] = 0.0
    return load_run_config(settings)


def _worker(rank: int, port: int, world: int, out: str, adversarial: bool) -> None:
    # What torchrun sets for each process.
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world),
    )
    torch.set_num_threads(1)
    with toy_plugin():
        trainer = Trainer(config(out, adversarial))
        assert trainer.dist.world_size == world and trainer.dist.rank == rank
        # Each rank must train on its share of the global batch, not on all of it.
        seen = []
        take = trainer.paired[0].take
        trainer.paired[0].take = lambda indices: seen.append(len(indices)) or take(indices)
        result = trainer.run()
    assert seen == [TRAIN["batch_size"] // world] * TRAIN["steps"]
    assert (result.checkpoint is not None) == (rank == 0)


@pytest.mark.usefixtures("plugin")
@pytest.mark.parametrize("adversarial", [False, True], ids=["plain", "adversarial"])
def test_two_processes_take_the_same_steps_as_one(tmp_path, adversarial):
    run_ranks(_worker, 2, str(tmp_path / "ddp"), adversarial)
    single = Trainer(config(tmp_path / "single", adversarial)).run()
    ddp = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    assert ddp["step"] == 4 and len(ddp["rng"]["torch"]) == 2  # every rank's RNG state
    reference = single.bridge.state_dict()
    for key, value in ddp["model"].items():
        if not key.startswith("discriminators."):
            torch.testing.assert_close(value, reference[key], rtol=0, atol=1e-6, msg=key)
            continue
        # The critic's hinge gradients have entries near zero, where the order of a sum can
        # flip their sign, and Adam's first steps move by ~lr * sign(g) whatever |g| is: a
        # few entries may differ by a few lr. A missing average changes almost all of them.
        diff = (value - reference[key]).abs()
        assert (diff > 1e-5).float().mean() < 0.02, key
        assert diff.max() <= 4 * TRAIN["steps"] * 3e-4, key
    moved = sum(
        (reference[k] - v).abs().sum()
        for k, v in load_checkpoint(single.checkpoint)["model"].items()
    )
    assert moved == 0
    # Only rank 0 wrote files; its log holds the mean of both ranks' terms.
    assert sorted(os.listdir(tmp_path / "ddp")) == [
        ".lock",
        "checkpoint.pt",
        "config.json",
        "log.jsonl",
    ]
    log = (tmp_path / "ddp" / "log.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(log) == len(
        (tmp_path / "single" / "log.jsonl").read_text(encoding="utf-8").splitlines()
    )


def test_shards_split_the_global_batch_evenly():
    indices = torch.arange(12)
    shards = [Distributed(rank, 3).shard(indices) for rank in range(3)]
    assert torch.equal(torch.cat(shards), indices)
    assert [len(s) for s in shards] == [4, 4, 4]
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        Distributed(0, 3).check_divisible(8, "train.batch_size")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("tpu")


def test_a_world_size_without_torch_distributed_says_how_to_run(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.distributed, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="WORLD_SIZE = 2 asks for 2 processes.*unset WORLD_SIZE"):
        setup("cpu")

"""Whether a run configured now may resume a checkpoint, and restoring a run's state from it.

A resume must continue the *same* run: the same domains and model (the weights must fit them),
the same data settings and training items, and the train settings that decide which items are
pairs and which batches are drawn (:data:`BATCH_SETTINGS`, and whether ``unpaired_weight`` is
0). Every other train setting may change — more ``steps``, another ``max_seconds``, a lower
``lr`` after a NaN — which is what resuming is for. A refusal lists every difference at once.

Before a trainer builds its model, :func:`check_weights` checks that the checkpoint's weights
fit it, as :func:`~flowbridge.load_bridge` does. Once a trainer is built, :func:`restore_models`
and :func:`restore_rng` put the checkpoint's weights, optimiser states (checked by
:func:`check_optimizer_state`) and random streams back (:func:`rng_state` is what it saves of
the latter), so that the resumed run draws the batches and noise the straight run would have.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .._warnings import warn
from ..bridge import Bridge
from ..checkpoint import (
    CheckpointError,
    check_sizes,
    load_checkpoint,
    load_weights,
    short_storage,
)
from ..config import BridgeConfig, ConfigError, RunConfig, from_dict, to_dict
from ..domain import Domain
from .averaging import WeightAverage
from .data import BatchSampler
from .rundir import CONFIG_NAME

__all__ = [
    "BATCH_SETTINGS",
    "checkpoint_to_resume",
    "retuned_settings",
    "check_same_data",
    "check_weights",
    "check_optimizer_state",
    "load_optimizer_state",
    "restore_models",
    "restore_rng",
    "rng_state",
    "warn_other_world_size",
]

#: Train settings a resume must keep: they decide which items are pairs (the partition) and
#: the batches drawn from them. ``unpaired_weight`` must keep only whether it is 0.
BATCH_SETTINGS = ("paired_fraction", "seed")


def checkpoint_to_resume(path: Path, config: RunConfig, resume: bool) -> dict[str, Any] | None:
    """The checkpoint at ``path`` that a run of ``config`` resumes (``None`` for a new run).

    Raises:
        FileExistsError: a new run (``resume`` false) where a checkpoint already is.
        FileNotFoundError: ``resume`` with no checkpoint to resume.
        CheckpointError: a checkpoint without training state (``save_bridge``), or of a run
            with other domains or settings (each difference named).
    """
    if not resume:
        if path.exists():
            raise FileExistsError(
                f"{path} already holds a checkpoint of a run; resume it (--resume, "
                f"resume=True) or choose another out directory"
            )
        return None
    if not path.exists():
        raise FileNotFoundError(
            f"nothing to resume: no checkpoint at {path}; drop --resume to start a new run there"
        )
    checkpoint = load_checkpoint(path)
    if checkpoint["run"] is None:
        raise CheckpointError(
            f"{path} holds a model without its training state (save_bridge); it can be loaded "
            f"with load_bridge but not resumed"
        )
    _check_training_state(checkpoint, path)
    saved = {side: checkpoint["domains"][side]["name"] for side in ("a", "b")}
    wanted = {"a": config.domains.a.name, "b": config.domains.b.name}
    if saved != wanted:
        raise CheckpointError(
            f"{path} was trained on domains a = {saved['a']!r}, b = {saved['b']!r}; this run "
            f"configures a = {wanted['a']!r}, b = {wanted['b']!r}: resume with the run's own "
            f"config or use another out"
        )
    changed = _changed_settings(_as_read_now(checkpoint["run"]), to_dict(config))
    if changed:
        raise CheckpointError(
            f"{path} belongs to a run with other settings: {'; '.join(changed)}. Resume with "
            f"the run's own config ({path.parent / CONFIG_NAME}) or start a new run in another "
            f"out directory"
        )
    return checkpoint


def _check_training_state(checkpoint: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint whose training state a resume cannot restore: written by
    ``save_checkpoint`` with run settings but without the optimiser's or the random streams'
    state, or edited (a step that is not a count)."""
    missing = [key for key in ("optimizer", "rng") if not isinstance(checkpoint.get(key), dict)]
    if missing:
        raise CheckpointError(
            f"{path} holds a model and its run settings but no {' or '.join(missing)} state, "
            f"which a resume needs (a save_checkpoint call without them); it can be loaded "
            f"with load_bridge but not resumed"
        )
    step = checkpoint.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{path} is damaged: its step is {step!r}, not a count of steps")


def retuned_settings(checkpoint: dict[str, Any], config: RunConfig) -> list[str]:
    """The train settings a resume of ``checkpoint`` with ``config`` changes, which it may
    (more ``steps``, a lower ``lr``...), each with its old and new value: meant, or not (the
    TOML without the command line's ``--steps`` the run was started with). Where the run
    writes and whether a bar shows are left out."""
    saved = _as_read_now(checkpoint["run"]).get("train", {})
    current = to_dict(config)["train"]
    return [
        d
        for key in sorted(set(saved) | set(current))
        if key not in ("out", "progress")
        for d in _differences(saved.get(key), current.get(key), f"train.{key}")
    ]


def _changed_settings(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The differences between two runs' settings that a resume cannot bridge."""
    changed = [
        d
        for part in ("data", "domains", "model")
        for d in _differences(saved.get(part), current[part], part)
    ]
    saved_train, train = saved.get("train", {}), current["train"]
    changed += [
        d
        for key in BATCH_SETTINGS
        for d in _differences(saved_train.get(key), train[key], f"train.{key}")
    ]
    if bool(saved_train.get("unpaired_weight")) != bool(train["unpaired_weight"]):
        changed.append(
            f"train.unpaired_weight ({saved_train.get('unpaired_weight')!r} in the checkpoint, "
            f"now {train['unpaired_weight']!r}; 0 draws no unpaired batches)"
        )
    return changed


def _as_read_now(run: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's run settings as this version of flowbridge reads them: a setting added
    since the run was saved takes its default, which keeps the behaviour the run was trained
    with (new settings default to the old behaviour), so upgrading does not stop a resume. A
    run this version cannot read (a setting since removed) is compared as it was saved."""
    try:
        return to_dict(from_dict(RunConfig, run))
    except ConfigError:
        return run


def _differences(saved: Any, current: Any, where: str) -> list[str]:
    """Dotted keys at which two plain config dicts differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        keys = sorted(set(saved) | set(current))
        return [d for k in keys for d in _differences(saved.get(k), current.get(k), f"{where}.{k}")]
    return [] if saved == current else [f"{where} ({saved!r} in the checkpoint, now {current!r})"]


def check_same_data(
    path: Path, saved: dict[str, Any] | None, current: dict[str, Any], source: str
) -> None:
    """Refuse to resume the checkpoint at ``path`` on other training data than its own.

    Args:
        saved: the checkpoint's fingerprints of its training lists (``None`` in checkpoints
            from before they were kept: nothing to compare).
        current: the same fingerprints of this run's lists (:meth:`.Stream.fingerprint`).
        source: what the lists came from, to name them (``train_data`` or the dataset split).
    """
    if saved is None or saved == current:
        return
    changed = []
    for field in sorted(set(saved) | set(current)):
        was, now = saved.get(field), current.get(field)
        was_items, now_items = (f["items"] if f else 0 for f in (was, now))
        if was_items != now_items:
            changed.append(f"{source}.{field} had {was_items} items, now {now_items}")
        elif was != now:
            changed.append(f"{source}.{field} has as many items, but other ones")
    raise CheckpointError(
        f"{path} was trained on other data: {'; '.join(changed)} (after the split into pairs "
        f"and unpaired items). Resume with the data the run started with, or start a new run "
        f"in another out directory"
    )


def check_weights(
    checkpoint: dict[str, Any], path: Path, domains: tuple[Domain, Domain], config: BridgeConfig
) -> None:
    """Refuse the weights of the checkpoint at ``path`` (those to use and, when the run
    averages them, those the optimiser steps) that do not fit the model ``config`` and
    ``domains`` (with the checkpoint's fitted state) build, before the trainer builds it: the
    same check as :func:`~flowbridge.load_bridge`'s (:func:`~flowbridge.checkpoint.check_sizes`),
    so that a weight of another shape, or one number expanded to a huge shape (which the copy
    into the model would take for a weight that fits), is named rather than loaded.

    Raises:
        CheckpointError: naming ``path`` and the first weight that does not fit.
    """
    for key in ("model", "optimised_model"):
        if checkpoint.get(key) is not None:
            check_sizes(*domains, config, checkpoint[key], path)


def check_optimizer_state(
    optimizer: torch.optim.Optimizer, state: Any, path: Path, name: str
) -> None:
    """Refuse an optimiser state (the checkpoint's entry ``name``) whose tensors do not fit
    ``optimizer``'s parameters, before it is loaded: torch's ``load_state_dict`` checks only
    the number of parameters, and fused Adam steps moments of another shape out of bounds (a
    crash, not an error); a moment of one number expanded to a huge shape would be copied out
    to its full size.

    Raises:
        CheckpointError: naming ``path`` and the first tensor that does not fit.
    """

    def refuse(problem: str) -> CheckpointError:
        return CheckpointError(
            f"{path}: its {name} state does not fit the model's parameters ({problem}); the "
            f"file was edited or damaged: resume from an intact copy, or start a new run in "
            f"another out directory"
        )

    groups = state.get("param_groups") if isinstance(state, dict) else None
    moments = state.get("state") if isinstance(state, dict) else None
    if not isinstance(groups, list) or not isinstance(moments, dict):
        raise refuse("expected a dict with a param_groups list and a state dict")
    saved = [len(g.get("params", ())) if isinstance(g, dict) else None for g in groups]
    own = [len(g["params"]) for g in optimizer.param_groups]
    if saved != own:
        raise refuse(f"parameters per group {saved}, the model's {own}")
    params = {
        index: param
        for group, own_group in zip(groups, optimizer.param_groups, strict=True)
        for index, param in zip(group["params"], own_group["params"], strict=True)
    }
    for index, entry in moments.items():
        param = params.get(index)
        if param is None or not isinstance(entry, dict):
            continue  # of no parameter: load_state_dict keeps it unused
        for field, value in entry.items():
            key = f"{name}.state.{index}.{field}"
            problem = short_storage(key, value)
            if problem:
                raise refuse(problem)
            # Scalars (Adam's step) aside, a moment has its parameter's shape.
            if isinstance(value, torch.Tensor) and value.dim() and value.shape != param.shape:
                raise refuse(
                    f"{key} has shape {list(value.shape)}, its parameter {list(param.shape)}"
                )


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``optimizer.load_state_dict(state)``, keeping this machine's kernel choice and this
    run's settings: a saved param group carries the ``fused``/``foreach`` flags of the machine
    that wrote it, which another device or torch may not support (the update itself is the
    same either way), and the ``lr`` and ``betas`` the run was saved with, which a resume may
    change (a lower ``train.lr`` after a NaN)."""
    kept = ("lr", "betas", "fused", "foreach")
    kernels = [{k: g[k] for k in kept if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, own in zip(optimizer.param_groups, kernels, strict=True):
        group.update(own)


def restore_models(
    checkpoint: dict[str, Any],
    path: Path,
    bridge: Bridge,
    average: WeightAverage | None,
    optimizer: torch.optim.Optimizer,
    critic_optimizer: torch.optim.Optimizer | None,
) -> None:
    """Load the weights the optimiser steps into ``bridge``, the saved average into
    ``average`` (a run that did not average before starts its average here), and the
    optimisers' states, from the checkpoint at ``path``.

    Raises:
        CheckpointError: an adversarial run resumes a checkpoint without a critic optimiser,
            or an optimiser state does not fit (:func:`check_optimizer_state`).
    """
    optimised = checkpoint.get("optimised_model")
    load_weights(bridge, checkpoint["model"] if optimised is None else optimised, path)
    if average is not None:
        if optimised is None:
            average.reset()
        else:
            load_weights(average.module, checkpoint["model"], path)
    check_optimizer_state(optimizer, checkpoint["optimizer"], path, "optimizer")
    load_optimizer_state(optimizer, checkpoint["optimizer"])
    if critic_optimizer is not None:
        if checkpoint.get("critic_optimizer") is None:
            raise CheckpointError(
                f"{path} has no discriminator optimiser state to resume "
                f"the adversarial training with; start a new run in another out directory"
            )
        check_optimizer_state(
            critic_optimizer, checkpoint["critic_optimizer"], path, "critic_optimizer"
        )
        load_optimizer_state(critic_optimizer, checkpoint["critic_optimizer"])


def rng_state(
    device: torch.device, generator: torch.Generator, samplers: Mapping[str, BatchSampler]
) -> dict[str, Any]:
    """This process's random streams: torch's (and CUDA's on a GPU), the batch generator's
    and each sampler's (what a checkpoint's ``rng`` keeps, gathered over ranks)."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "batches": generator.get_state(),
        "samplers": {name: s.state_dict() for name, s in samplers.items()},
    }


def restore_rng(
    rng: dict[str, Any],
    path: Path,
    *,
    rank: int,
    device: torch.device,
    generator: torch.Generator,
    samplers: Mapping[str, BatchSampler],
    fresh_seed: int,
) -> None:
    """Put back rank ``rank``'s random streams from a checkpoint's ``rng`` (every rank's
    :func:`rng_state`); a rank the saved run did not have seeds torch with ``fresh_seed``
    (fresh, but reproducible).

    Raises:
        CheckpointError: the checkpoint at ``path`` has no state for one of ``samplers``.
    """
    if rank < len(rng["torch"]):
        torch.set_rng_state(rng["torch"][rank])
    else:
        torch.manual_seed(fresh_seed)
    if device.type == "cuda" and rng["cuda"] and rank < len(rng["cuda"]):
        torch.cuda.set_rng_state(rng["cuda"][rank], device)
    generator.set_state(rng["batches"])
    for name, sampler in samplers.items():
        if name not in rng["samplers"]:
            raise CheckpointError(f"{path} has no state for batches {name!r}")
        sampler.load_state_dict(rng["samplers"][name])


def warn_other_world_size(path: Path, saved: int | None, world_size: int) -> None:
    """Say when a run resumes with another number of processes than it was saved with:
    legitimate, but each process draws its own posterior noise, so the run goes on
    differently from one that kept its number of processes. ``saved`` is ``None`` in
    checkpoints from before it was kept."""
    if saved is None or saved == world_size:
        return
    warn(
        f"{path} was saved by a run of {saved} process(es) and resumes "
        f"with {world_size}: it goes on with the same batches, but not "
        f"bit-identical to the run it continues (each process draws its own noise)",
    )

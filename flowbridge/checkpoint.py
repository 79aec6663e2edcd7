"""Checkpoints: one self-describing file per model, written atomically, loaded safely.

A checkpoint is a dict saved with :func:`torch.save` and read back with
``torch.load(weights_only=True)`` (tensors, numbers, strings, lists and dicts only)::

    format            "flowbridge-checkpoint"
    version           CHECKPOINT_VERSION
    flowbridge        the library version that wrote it
    step              optimiser steps taken
    domains           {"a": record, "b": record}; record = name, options, fitted state
                      (a vocabulary...), plugin distribution and version
    model_config      the BridgeConfig as a plain dict
    model             Bridge.state_dict(): the weights to use (their average, when the run
                      averages weights: train.ema_decay)
    optimised_model   the raw weights the optimiser steps, when model is their average
                      (None otherwise; absent from older checkpoints)
    run               the full RunConfig as a plain dict (None for a bare model)
    optimizer         the optimiser's state_dict (None for a bare model)
    critic_optimizer  the discriminators' optimiser state_dict (None without adversarial
                      training; absent from older checkpoints)
    rng               RNG states for an exact resume (None for a bare model)
    data              per training list ("a", "b", "unpaired_a", "unpaired_b"): its number
                      of items and a digest of some of them, which a resume checks (None for
                      a bare model; absent from older checkpoints)
    training          {"world_size", "log_window", "seconds"}: the number of processes that
                      saved it, the running sums of the log window it left open and the
                      seconds the run had trained (None for a bare model; absent from older
                      checkpoints, "seconds" from those before it was kept)

:func:`load_bridge` rebuilds the domains through the plugin registry, so a checkpoint loads in
any process where the same domain plugins are installed.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from ._warnings import warn
from .bridge import Bridge
from .config import BridgeConfig, ConfigError, from_dict, to_dict
from .distributed import resolve_device
from .domain import Domain
from .files import atomic_write, damaged_part
from .plugins import PluginError, distribution_of, get_domain

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "CHECKPOINT_VERSION",
    "CheckpointError",
    "check_savable",
    "domain_record",
    "savable_options",
    "save_checkpoint",
    "save_bridge",
    "load_checkpoint",
    "domains_from_checkpoint",
    "load_bridge",
    "load_weights",
    "check_sizes",
    "short_storage",
    "weights_only_copy",
    "first_line",
]

CHECKPOINT_FORMAT = "flowbridge-checkpoint"
#: The checkpoint's file name in a run directory (``train.out``).
CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A file is not a (readable, compatible) flowbridge checkpoint; the message says why."""


def _plugin_version(domain: Domain) -> tuple[str | None, str | None]:
    """The distribution that ships ``domain``'s class, and its installed version."""
    dist = distribution_of(type(domain).__module__)
    return (dist.metadata["Name"], dist.version) if dist else (None, None)


def domain_record(domain: Domain) -> dict[str, Any]:
    """What a checkpoint keeps of a domain: name, options, fitted state, plugin version."""
    plugin, version = _plugin_version(domain)
    return {
        "name": domain.name,
        "options": dict(domain.options),
        "state": domain.state_dict(),
        "plugin": plugin,
        "plugin_version": version,
        # For a domain registered in code (no distribution): where its class lives.
        "module": type(domain).__module__,
    }


def weights_only_copy(value: Any) -> Any:
    """``value`` written with ``torch.save`` and read back with ``torch.load(weights_only=True)``,
    in memory: what a checkpoint would give back of it (raises what torch raises)."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def savable_options(domain: Domain, label: str) -> dict[str, Any]:
    """``domain.options`` as a checkpoint keeps them: written as JSON and read back.
    ``label`` names the domain in an error (:func:`flowbridge.testing.check_domain` words its
    failures the same way).

    Raises:
        PluginError: the domain has no ``options`` dict, or one that JSON cannot hold.
    """
    options = getattr(domain, "options", None)
    if not isinstance(options, dict):
        raise PluginError(
            f"{label} has no options dict (got {type(options).__name__}): a checkpoint rebuilds "
            f"the domain as type(d)(**d.options); set self.options in __init__, as "
            f"Domain.__init__ does"
        )
    try:
        return json.loads(json.dumps(options))
    except (TypeError, ValueError) as exc:
        raise PluginError(
            f"the options of {label} must be JSON data, as a checkpoint stores them ({exc})"
        ) from None


def check_savable(domain: Domain, configured: dict[str, Any]) -> None:
    """Fail now, naming ``domain``, if a checkpoint could not keep it: a trainer calls this
    before the first step, so that a run is not lost at its first save or its first load.

    A checkpoint rebuilds a domain as ``type(d)(**d.options)`` and restores
    ``d.state_dict()`` with ``torch.load(weights_only=True)``. So ``options`` must be a dict of
    JSON data that keeps every option the run configured (``configured``) with its value, and
    the state must survive a weights-only round trip.

    Raises:
        PluginError: the domain breaks one of these (the message says which and what to do).
    """
    label = f"domain {getattr(domain, 'name', '?')!r} ({type(domain).__qualname__})"
    plain = savable_options(domain, label)
    wanted = json.loads(json.dumps(configured))
    lost = {key: value for key, value in wanted.items() if plain.get(key, ...) != value}
    if lost:
        raise PluginError(
            f"{label} was configured with {lost}, but its options record "
            f"{ {key: plain.get(key, '(missing)') for key in lost} }: a checkpoint rebuilds "
            f"the domain from its options and would lose them; keep every constructor "
            f"argument in self.options"
        )
    try:
        state = weights_only_copy(domain.state_dict())
    except Exception as exc:  # whatever torch.save or the weights-only unpickler refuse
        raise PluginError(
            f"{label}: its state_dict() does not survive torch.save and "
            f"torch.load(weights_only=True) ({first_line(exc)}); keep only tensors, numbers, "
            f"strings, lists and dicts in it"
        ) from None
    try:  # what loading the checkpoint will do
        type(domain)(**plain).load_state_dict(state)
    except Exception as exc:
        raise PluginError(
            f"{label}: a copy rebuilt from its options cannot load its own state_dict() "
            f"({first_line(exc)}); load_state_dict must read what state_dict returns"
        ) from None


def save_checkpoint(
    path: str | Path,
    bridge: Bridge,
    *,
    step: int = 0,
    run: dict[str, Any] | None = None,
    optimizer: dict[str, Any] | None = None,
    critic_optimizer: dict[str, Any] | None = None,
    rng: dict[str, Any] | None = None,
    optimised_model: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write ``bridge`` (and, for a training run, what resuming needs) to ``path`` atomically.

    Args:
        path: the checkpoint file; its directory is created if needed.
        bridge: the model; its domains' names, options and fitted state are saved with it.
        step: optimiser steps taken.
        run: the run configuration as a plain dict (``to_dict(RunConfig)``).
        optimizer: the optimiser's ``state_dict()``.
        critic_optimizer: the discriminators' optimiser's ``state_dict()`` (adversarial runs).
        rng: RNG states (plain tensors and numbers) for an exact resume.
        optimised_model: the ``state_dict()`` of the raw weights the optimiser steps, when
            ``bridge`` holds their average.
        data: what identifies the training data (``Stream.fingerprint`` of each list).
        training: the rest of a training run's state (plain numbers and strings): the number
            of processes that saved it, the running sums of the log window it left open.
    """
    from . import __version__

    _check_argument_order("save_checkpoint(path, bridge, ...)", bridge)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "flowbridge": __version__,
        "step": int(step),
        "domains": {side: domain_record(bridge.domains[side]) for side in ("a", "b")},
        "model_config": to_dict(bridge.config),
        "model": bridge.state_dict(),
        "optimised_model": optimised_model,
        "run": run,
        "optimizer": optimizer,
        "critic_optimizer": critic_optimizer,
        "rng": rng,
        "data": data,
        "training": training,
    }
    return atomic_write(path, lambda file: torch.save(payload, file))


def save_bridge(bridge: Bridge, path: str | Path) -> Path:
    """Save a model alone (no training state); :func:`load_bridge` reads it back.

    Args:
        path: the file to write, or a directory (one that exists, or a path ending in a
            separator) to write its ``checkpoint.pt`` into, as :func:`load_bridge` reads a
            run directory.

    Returns:
        The file written.

    Raises:
        FileExistsError: ``path`` holds a training run's checkpoint, whose optimiser and
            random states ``--resume`` needs: a model alone written over it would end the run.
    """
    _check_argument_order("save_bridge(bridge, path)", bridge)
    text = os.fspath(path)
    if not text:
        raise ValueError("save_bridge needs a path to write to, got an empty one")
    path = Path(text)
    if path.is_dir() or text.endswith(("/", os.sep)):
        path = path / CHECKPOINT_NAME
    if path.is_file() and _resumable(path):
        raise FileExistsError(
            f"{str(path)!r} is a training run's checkpoint (a resume needs its optimiser and "
            f"random states); save the model to another file, or delete this one first"
        )
    return save_checkpoint(path, bridge)


def _check_argument_order(signature: str, bridge: object) -> None:
    """Refuse a ``bridge`` that is not one: save_bridge and save_checkpoint take the model
    and the path in opposite orders, and swapped, the first error was an AttributeError of
    a str deep inside."""
    if not isinstance(bridge, Bridge):
        raise TypeError(
            f"{signature}: bridge must be a flowbridge.Bridge, got {type(bridge).__name__}"
        )


def _resumable(path: Path) -> bool:
    """Whether ``path`` is a checkpoint a run can resume from (any other file may go)."""
    try:
        return load_checkpoint(path).get("optimizer") is not None
    except Exception:  # noqa: BLE001 - a file that does not load is no run's checkpoint
        return False


def first_line(exc: BaseException) -> str:
    """``exc`` in one line for a message: its type and the first line of its text (for
    torch's weights-only refusal, the line that names what it refused), at most 200
    characters, without terminal colour codes."""
    # torch colours parts of its weights-only messages with terminal escape codes.
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    # Its weights-only refusal starts with advice; the line that names what it refused is
    # the one to show ("Unsupported global: GLOBAL numpy....").
    refused = re.search(r"WeightsUnpickler error: ([^.]*)", text)
    if refused:
        return f"{type(exc).__name__}: {refused.group(1)[:200]}"
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint; tensors are loaded onto the CPU.

    Args:
        path: a checkpoint file, or a run directory (``train.out``) holding one.

    Raises:
        FileNotFoundError: there is no file at ``path`` (nor a checkpoint in the directory).
        CheckpointError: the file is truncated or corrupt, not a torch file, a torch file
            that is not a flowbridge checkpoint, or from a newer format version.
    """
    path = Path(path)
    if path.is_dir():
        if not (path / CHECKPOINT_NAME).is_file():
            raise FileNotFoundError(
                f"{str(path)!r} is a directory without a {CHECKPOINT_NAME}; give the "
                f"checkpoint file, or the run directory (train.out) a run wrote it into"
            )
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    expected = "expected a checkpoint written by flowbridge (flowbridge train, save_bridge)"
    with open(path, "rb") as file:
        head = file.read(4)
    # torch.save writes a zip archive; the archive's directory is at its end, so a truncated
    # checkpoint still starts like one but no longer opens.
    if not head:
        raise CheckpointError(f"{path} is empty (0 bytes): a write that never happened; {expected}")
    if head != _ZIP_MAGIC:
        raise CheckpointError(
            f"{path} is not a torch checkpoint file (it starts with {head!r}, not a zip "
            f"archive as torch.save writes); {expected}"
        )
    damaged = damaged_part(path)
    if damaged == "the zip directory":
        raise CheckpointError(
            f"{path} is truncated or corrupt: its zip directory is missing or damaged"
        )
    if damaged is not None:
        raise CheckpointError(
            f"{path} is corrupt: its part {damaged} fails the archive's checksum (the file "
            f"changed after it was written); {expected}"
        )
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path} holds Python objects that a safe (weights-only) load refuses "
            f"({first_line(exc)}); {expected}"
        ) from None
    except Exception as exc:  # whatever a damaged archive makes torch raise
        raise CheckpointError(
            f"{path} is truncated or corrupt ({first_line(exc)}); {expected}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = (
            f"a dict with keys {sorted(map(str, payload))[:8]}"
            if isinstance(payload, dict)
            else f"a {type(payload).__name__}"
        )
        raise CheckpointError(
            f"{path} is a torch file but not a flowbridge checkpoint: it holds {found}, "
            f"without the format marker {CHECKPOINT_FORMAT!r}; {expected}"
        )
    version = payload.get("version")
    if not isinstance(version, int) or version > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {version!r}, written by flowbridge "
            f"{payload.get('flowbridge')}; this flowbridge reads versions up to "
            f"{CHECKPOINT_VERSION}: upgrade flowbridge to load it"
        )
    missing = {"step", "domains", "model_config", "model"} - set(payload)
    if missing:
        raise CheckpointError(
            f"{path} is an incomplete flowbridge checkpoint: it has no {sorted(missing)}"
        )
    domains = payload["domains"]
    for side in ("a", "b"):
        record = domains.get(side) if isinstance(domains, dict) else None
        if not isinstance(record, dict) or not {"name", "options", "state"} <= set(record):
            raise CheckpointError(
                f"{path} is an incomplete flowbridge checkpoint: its domains have no complete "
                f"record of side {side!r} (name, options, state)"
            )
    return payload


def _domain(record: dict[str, Any], side: str, source: str) -> Domain:
    name = record["name"]
    if record.get("plugin"):
        origin = " ".join(filter(None, (record["plugin"], record.get("plugin_version"))))
        fix = f"install {record['plugin']} or register the domain in code"
    else:  # registered in code when saved
        module = record.get("module")
        origin = f"a plugin registered in code, module {module}" if module else "its plugin"
        fix = (
            "register its plugin in code before loading (flowbridge.plugins.register), or, for "
            "the flowbridge command, install it as a package with a flowbridge entry point"
        )
    try:
        domain = get_domain(name, **record["options"])
    except KeyError as exc:
        raise CheckpointError(
            f"{source} needs domain {name!r} (side {side}, written with {origin}), which no "
            f"registered plugin provides: {fix}. {exc.args[0] if exc.args else ''}"
        ) from None
    except ConfigError as exc:
        # Options the plugin took when it saved, refused now: the plugin changed, not a config.
        reason = str(exc).split(". Fix the option", 1)[0]
        raise CheckpointError(
            f"{source}: domain {name!r} (side {side}) was written with {origin} and the "
            f"options {record['options']!r}, which the installed plugin does not take "
            f"({reason}); load it where the plugin version that wrote it is installed"
        ) from None
    except (TypeError, ValueError) as exc:  # the plugin's own refusal, or its failure
        raise CheckpointError(
            f"{source}: domain {name!r} (side {side}, written with {origin}) could not be "
            f"built from its saved options {record['options']!r}: {type(exc).__name__}: {exc}"
        ) from exc
    _, installed = _plugin_version(domain)
    saved = record.get("plugin_version")
    if saved and installed and saved != installed:
        warn(
            f"{source}: domain {name!r} was saved with {record.get('plugin')} {saved}, "
            f"{installed} is installed; its state may not load as saved",
        )
    try:
        domain.load_state_dict(record["state"])
    except Exception as exc:
        raise CheckpointError(
            f"{source}: domain {name!r} (side {side}, {type(domain).__qualname__}) cannot load "
            f"its saved state ({first_line(exc)}); the plugin's load_state_dict does not read "
            f"what its state_dict wrote"
        ) from exc
    return domain


def domains_from_checkpoint(
    checkpoint: dict[str, Any], source: str = "the checkpoint"
) -> tuple[Domain, Domain]:
    """Rebuild both domains of a loaded checkpoint through the plugin registry, with their
    fitted state (vocabularies...) restored."""
    records = checkpoint["domains"]
    return _domain(records["a"], "a", source), _domain(records["b"], "b", source)


def _map_location(request: str | torch.device) -> torch.device:
    """``request`` as a device this process has (``"auto"``: CUDA when available)."""
    if request == "auto":
        return resolve_device("auto")
    try:
        device = torch.device(request)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"map_location must be a device such as 'cpu', 'cuda', 'cuda:1' or 'auto', got "
            f"{request!r}"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"map_location {request!r} needs CUDA, but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}); load on 'cpu' or 'auto'"
        )
    return device


def load_bridge(path: str | Path, map_location: str | torch.device = "cpu") -> Bridge:
    """Rebuild the :class:`~flowbridge.Bridge` saved in a checkpoint, in eval mode.

    Args:
        path: a checkpoint file, or the run directory holding it.
        map_location: the device to put the bridge on (``"auto"``: CUDA when available).

    Example:
        >>> bridge = load_bridge("runs/shapes/checkpoint.pt")
        >>> captions = bridge.translate(images, source="image", samples=10)

    Raises:
        FileNotFoundError, CheckpointError: see :func:`load_checkpoint`; also when a domain
            plugin the checkpoint needs is not installed, or the weights do not fit the
            model its configuration builds.
        ValueError: ``map_location`` is not a device this process has.
    """
    device = _map_location(map_location)
    checkpoint = load_checkpoint(path)
    domain_a, domain_b = domains_from_checkpoint(checkpoint, source=str(path))
    try:
        config = from_dict(BridgeConfig, checkpoint["model_config"], "model")
    except ConfigError as exc:
        raise CheckpointError(
            f"{path} holds a model config this flowbridge rejects: {exc}"
        ) from None
    check_sizes(domain_a, domain_b, config, checkpoint["model"], path)
    bridge = Bridge(domain_a, domain_b, config)
    load_weights(bridge, checkpoint["model"], path)
    return bridge.to(device).eval()


def check_sizes(
    domain_a: Domain, domain_b: Domain, config: BridgeConfig, state: Any, path: str | Path
) -> None:
    """Refuse weights that do not fit before the bridge is built: building allocates the
    sizes the checkpoint's settings declare, so a file of a few kilobytes edited to declare
    huge ones (``shared_hidden = 10**7``, a vocabulary of millions) would take the machine's
    memory before :func:`load_weights` could say so.

    The weights are loaded into a build on the meta device (shapes only: no memory, no random
    numbers drawn), by torch's own ``load_state_dict``, so a network's load hooks (a plugin
    reading its older files) work as in the real load. Weights whose storage is smaller than
    their shape (one number expanded to a huge one, which fits any shape) are refused first
    (:func:`short_storage`). :func:`load_bridge` and a resumed run (``Trainer(resume=True)``)
    both check a checkpoint's weights here.

    Raises:
        CheckpointError: naming ``path`` and the first weight that does not fit.
    """
    for key, saved in state.items() if isinstance(state, dict) else ():
        problem = short_storage(str(key), saved)
        if problem:
            raise _weights_do_not_fit(path, problem)
    with warnings.catch_warnings():
        # The real build and load say their warnings; copying into meta is meant to do nothing.
        warnings.simplefilter("ignore")
        try:
            with torch.device("meta"):
                meta = Bridge(domain_a, domain_b, config)
        except Exception:  # noqa: BLE001 - a network that does not build on the meta device
            return  # load_weights checks after the real build, as before
        load_weights(meta, state, path)


def short_storage(key: str, value: Any) -> str | None:
    """What is wrong with ``value``, the checkpoint's tensor at ``key``, if its storage holds
    fewer bytes than its shape needs (``None`` if not, or if it is no tensor): a view of one
    number expanded to a huge shape is a few bytes in the file, and a copy of it (a
    ``load_state_dict`` into another dtype or device) takes the whole size in memory."""
    if not isinstance(value, torch.Tensor):
        return None
    held = value.untyped_storage().nbytes()
    if held < value.numel() * value.element_size():
        return f"{key} of shape {list(value.shape)} is backed by {held} bytes"
    return None


def load_weights(module: torch.nn.Module, state: dict[str, Any], path: str | Path) -> None:
    """``module.load_state_dict(state)``, where ``state`` comes from the checkpoint at
    ``path``: weights that do not fit are a :class:`CheckpointError` naming the first."""
    try:
        module.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        # torch's message is a header ("Error(s) in loading state_dict for Bridge:") and a
        # line per problem: the first problem says what does not fit.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        problem = lines[1] if len(lines) > 1 else first_line(exc)
        raise _weights_do_not_fit(path, problem) from None


def _weights_do_not_fit(path: str | Path, problem: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: its weights do not fit the model its configuration and domains build "
        f"({problem[:300]}); the file was edited, or written by a plugin version whose "
        f"networks differ from the installed one"
    )

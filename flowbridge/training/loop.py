r"""The training loop: paired and unpaired batches, Adam, clipping, logs, checkpoints, resume.

One step draws a global batch of pairs (each data-parallel rank trains on its share) and,
when the unpaired schedule says so, one batch of A-only and one of B-only items:

.. math::

    L = L_\text{paired}(x_A, x_B) + w_u\,[L_\text{unpaired}(u_A) + L_\text{unpaired}(u_B)]

(:meth:`flowbridge.Bridge.loss`). With ``model.weights.adversarial > 0`` the domains'
discriminators take a step of their own Adam (``train.discriminator_lr``) on the same batch's
``critic`` loss, alongside the generator's step on ``total``; each optimiser holds only its
own player's parameters. A non-finite term stops the run before the update, naming
the term and the step; the last finite step is kept (:meth:`Trainer._check_finite` says
where). SIGINT (Ctrl-C) or SIGTERM, to any rank, stops every rank after the same step, with
a checkpoint of that step (:mod:`.stopping`), so
``resume=True`` (``--resume``) continues exactly where the run stopped; a ``KeyboardInterrupt``
from elsewhere (a callback) also writes a checkpoint of the last completed step first, and so
does an item that fails to collate mid-run (``train.collate_upfront = false``). With
``train.ema_decay > 0`` the run validates, saves and returns the average of the weights
(:mod:`.averaging`), and the checkpoint keeps the raw weights for resume.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from .. import distributed
from .._warnings import warn
from ..bridge import Bridge
from ..checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    check_savable,
    first_line,
    save_checkpoint,
)
from ..checks import NonFiniteInputError, add_note
from ..config import LossWeights, RunConfig, from_dict, to_dict
from ..domain import Domain, PairedSplit
from ..plugins import (
    MissingOptionError,
    UnknownNameError,
    UnknownOptionError,
    datasets,
    get_domain,
)
from ..progress import progress_bar, watched
from .averaging import WeightAverage
from .data import (
    BatchSampler,
    Partition,
    Stream,
    derive_seed,
    fit_domain,
    load_splits,
    paired_streams,
    partition,
)
from .divergence import NonFiniteLossError, non_finite_error
from .resume import (
    check_same_data,
    check_weights,
    checkpoint_to_resume,
    restore_models,
    restore_rng,
    retuned_settings,
    rng_state,
    warn_other_world_size,
)
from .rundir import check_out, check_unchanged, hold_out, prepare_out, stamp
from .runlog import Means, RunLog
from .schedule import scheduled_weights
from .stopping import StopNow, StopRequests, TrainingInterrupted
from .untrained import untrained_parts, untrained_warning

__all__ = ["Trainer", "TrainResult", "NonFiniteLossError", "Callback", "train"]

#: Called on every rank after each completed step with ``(trainer, step, terms)``.
Callback = Callable[["Trainer", int, dict[str, float]], None]

_SHOWN = ("total", "rec_a", "rec_b", "cross", "prior_a_bpd", "prior_b_bpd", "adversarial", "critic")


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        step: steps completed.
        terms: mean training terms over the last logged window (``{}`` if no step ran).
        val_terms: the last validation's mean terms, or ``None`` without a validation split.
        wall_time: seconds this call of :meth:`Trainer.run` took.
        out, checkpoint, log: the run directory and its files (``None`` on ranks other than 0).
        bridge: the trained model (the average of its weights with ``train.ema_decay > 0``),
            in training mode; its :meth:`~flowbridge.Bridge.encode`, ``translate``,
            ``reconstruct`` and ``sample_joint`` compute in eval mode of their own accord.
    """

    step: int
    terms: dict[str, float]
    val_terms: dict[str, float] | None
    wall_time: float
    out: Path | None
    checkpoint: Path | None
    log: Path | None
    bridge: Bridge


class _StepLoss(nn.Module):
    """One training step's loss as a forward pass, the form DDP synchronises gradients of."""

    def __init__(self, bridge: Bridge, unpaired_weight: float):
        super().__init__()
        self.bridge = bridge
        self.unpaired_weight = unpaired_weight
        #: The loss weights of the next step (``train.weight_schedule``'s); None: the model's.
        self.weights: LossWeights | None = None

    def forward(self, x_a, x_b, u_a=None, u_b=None) -> dict[str, torch.Tensor]:
        terms = self.bridge.batch_loss(x_a, x_b, weights=self.weights)
        if u_a is not None or u_b is not None:
            unpaired = self.bridge.batch_loss(u_a, u_b, paired=False, weights=self.weights)
            terms.update({f"unpaired_{key}": value for key, value in unpaired.items()})
            terms["total"] = terms["total"] + self.unpaired_weight * unpaired["total"]
        return terms


def _parameters(optimizer: torch.optim.Optimizer) -> list[nn.Parameter]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def _adam(
    parameters: Iterable[nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999)
) -> torch.optim.Adam:
    """Adam with torch's fused kernel where it has one for the parameters' device (CUDA; CPU
    from torch 2.4): one pass over all tensors instead of a dozen kernels per tensor. On the
    testbed model (177 tensors, 1.3 M values, 2 threads) a step takes 1.3 ms instead of 5.4."""
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=lr, betas=betas, fused=True)
    except RuntimeError:  # no fused kernel for this device in this torch: the default loop
        return torch.optim.Adam(parameters, lr=lr, betas=betas)


def _grad_norm(parameters: Sequence[nn.Parameter]) -> torch.Tensor:
    norms = [torch.linalg.vector_norm(p.grad) for p in parameters if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.zeros(())


def _build_domain(config: RunConfig, side: str) -> Domain:
    """Side ``side``'s domain; an option it does not take, or one it needs and was not
    given, is named with its exact table."""
    domain = getattr(config.domains, side)
    try:
        return get_domain(domain.name, **domain.options)
    except (UnknownOptionError, MissingOptionError) as exc:
        raise type(exc)(f"domains.{side}.options: {exc}") from None
    except (TypeError, ValueError) as exc:
        # The constructor's own refusal ("min_count must be >= 1") names no table.
        if not isinstance(exc, UnknownNameError):
            add_note(exc, f"(domains.{side}.options of domain {domain.name!r})")
        raise


def _no_domains(dataset: str) -> str:
    """The error for a config without ``[domains]``, naming the configured dataset's pair."""
    pair = getattr(datasets().get(dataset), "domains", None) if dataset else None
    if pair is None:
        return (
            "the config names no domains: set [domains.a] name = ... and [domains.b] name = "
            "... (flowbridge plugins lists the registered ones)"
        )
    return (
        f"the config names no domains: dataset {dataset!r} pairs {pair[0]!r} with {pair[1]!r}, "
        f"so set [domains.a] name = {pair[0]!r} and [domains.b] name = {pair[1]!r} (each with "
        f"its options)"
    )


def _item_sources(config: RunConfig, in_memory: bool) -> tuple[str, str]:
    """What errors about an item call its training and validation split: the argument
    (``train_data``, ``val_data``), or the dataset's split."""
    if in_memory:
        return "train_data", "val_data"
    data = config.data
    return (
        f"{data.dataset}.split({data.train_split!r})",
        f"{data.dataset}.split({data.val_split!r})",
    )


class Trainer:
    """Trains a :class:`~flowbridge.Bridge` as a :class:`~flowbridge.config.RunConfig` says.

    Building the trainer fits the domains on the training items (or restores them from the
    checkpoint when resuming), builds the model and collates the data; :meth:`run` trains.

    Args:
        config: the run configuration.
        train_data: in-memory training pairs, a :class:`~flowbridge.PairedSplit` (instead of
            ``config.data.dataset``); ``a`` items belong to ``config.domains.a``. An item a
            domain refuses is named in the error by its list and index, e.g.
            ``train_data.unpaired_b[1]``.
        val_data: in-memory validation pairs, a :class:`~flowbridge.PairedSplit` (used with
            ``train_data``).
        resume: continue the run whose checkpoint is in ``config.train.out``, with the same
            data (checked by the number of items in each training list and a digest of 256 of
            them), domains and model settings, and the same train settings that decide which
            items are pairs and which batches are drawn (``paired_fraction``, ``seed``, and
            whether ``unpaired_weight`` is 0); the other train settings may change.
        callbacks: called after each completed step (see :data:`Callback`).

    Example:
        >>> config = load_run_config("shapes.toml", preset="small")
        >>> result = Trainer(config).run()
        >>> result.bridge.translate(images, source="image", samples=10)
    """

    def __init__(
        self,
        config: RunConfig,
        train_data: PairedSplit | None = None,
        val_data: PairedSplit | None = None,
        *,
        resume: bool = False,
        callbacks: Sequence[Callback] = (),
    ):
        if not isinstance(config, RunConfig):
            raise TypeError(
                f"config must be a flowbridge.config.RunConfig, got {type(config).__name__}; "
                f"build one with load_run_config(path_or_dict)"
            )
        # Checked again as a whole: a setting changed since the config was built (train.out
        # set to a Path, a number to a string) is converted or named here, not found later.
        self.config = config = from_dict(RunConfig, to_dict(config))
        self.callbacks = list(callbacks)
        if not (config.domains.a.name and config.domains.b.name):
            raise ValueError(_no_domains(config.data.dataset))
        for argument, data in (("train_data", train_data), ("val_data", val_data)):
            if data is not None and not isinstance(data, PairedSplit):
                raise TypeError(
                    f"{argument} must be a flowbridge.PairedSplit(a=..., b=...), got "
                    f"{type(data).__name__}: pass PairedSplit(a=items_a, b=items_b), where "
                    f"items_a[i] (domain {config.domains.a.name!r}) and items_b[i] (domain "
                    f"{config.domains.b.name!r}) are a pair"
                )
        self.dist, self.device = distributed.setup(config.train.device)
        self._snapshot: dict[str, Any] | None = None
        try:
            with self._own_random_stream():
                self._build(train_data, val_data, resume)
        except BaseException:
            self.dist.close()
            raise

    def _build(
        self, train_data: PairedSplit | None, val_data: PairedSplit | None, resume: bool
    ) -> None:
        """Fit the domains (or restore them), build the model, collate the data, resume."""
        config, cfg = self.config, self.config.train
        self.dist.check_divisible(cfg.batch_size, "train.batch_size")
        self.out = Path(cfg.out)
        self.checkpoint_path = self.out / CHECKPOINT_NAME
        self.log = RunLog(self.out, writes=self.dist.is_main)
        check_out(self.out)
        # Before reading it: a checkpoint another run writes from now on shows as a change.
        self._checkpoint_stamp = stamp(self.checkpoint_path)
        checkpoint = checkpoint_to_resume(self.checkpoint_path, config, resume)

        domains = tuple(_build_domain(config, side) for side in ("a", "b"))
        train_split, val_split = load_splits(config.data, domains, train_data, val_data)
        sources = _item_sources(config, in_memory=train_data is not None)
        items = partition(train_split, cfg.paired_fraction, derive_seed(cfg.seed, "partition"))
        self._fit_domains(domains, items, train_split, sources[0], checkpoint)
        if checkpoint is not None:  # before the build: weights that do not fit are named
            check_weights(checkpoint, self.checkpoint_path, domains, config.model)
        self._build_model(domains)
        self._build_streams(domains, items, sources[0])
        if checkpoint is not None:
            check_same_data(
                self.checkpoint_path, checkpoint.get("data"), self.data_fingerprint, sources[0]
            )
        self.unpaired_batch = cfg.unpaired_batch_size or cfg.batch_size
        if self.unpaired:
            self.dist.check_divisible(self.unpaired_batch, "train.unpaired_batch_size")
        self._build_validation(domains, val_split, sources[1])
        self._build_optimisers()
        self._wrap_ddp()
        self.step = 0
        self._last_saved: int | None = None
        # Seconds trained before this invocation (a resume's, from its checkpoint), and when
        # this invocation's training began: the log's "time" counts both.
        self._seconds_before = 0.0
        self._started: float | None = None
        self._reach_checked = False  # whether the first backward's gradients were looked at
        self._train_means = Means()
        self._seed_noise(derive_seed(cfg.seed, "noise", self.dist.rank))
        #: The train settings this resume changes (:func:`retuned_settings`); [] if none.
        self.retuned = [] if checkpoint is None else retuned_settings(checkpoint, config)
        if checkpoint is not None:
            self._restore(checkpoint)
        self._snapshot = self._rng_state()
        self.val_terms: dict[str, float] | None = None

    def _fit_domains(
        self,
        domains: tuple[Domain, Domain],
        items: Partition,
        train_split: PairedSplit,
        source: str,
        checkpoint: dict[str, Any] | None,
    ) -> None:
        """Fit each domain on its training items, or give it the fitted state (vocabulary) the
        resumed run started with (not a refit); then check that a checkpoint can keep it."""
        names = (self.config.domains.a.name, self.config.domains.b.name)
        for side, domain, other in zip("ab", domains, names[::-1], strict=True):
            if checkpoint is None:
                fit_domain(domain, items, train_split, side, source, other)
            else:
                domain.load_state_dict(checkpoint["domains"][side]["state"])
            # Now, not at the first save: a domain a checkpoint cannot keep would lose the run.
            check_savable(domain, getattr(self.config.domains, side).options)

    def _build_model(self, domains: tuple[Domain, Domain]) -> None:
        """The bridge, from the run's fixed initialisation seed, and its weight average."""
        config, cfg = self.config, self.config.train
        torch.manual_seed(derive_seed(cfg.seed, "init"))
        self.bridge = Bridge(*domains, config.model).to(self.device)
        self.average: WeightAverage | None = None
        if cfg.ema_decay:
            # A second model built the same way (not a deep copy: a domain need not be
            # copyable); its random initialisation is overwritten by the copy. The noise
            # seed is set later, so the raw run is the same with or without the average.
            self.average = WeightAverage(
                self.bridge,
                Bridge(*domains, config.model).to(self.device),
                cfg.ema_decay,
                # Critics are trained against the raw generator and used in training only.
                copied=("discriminators.",),
            )

    def _build_streams(self, domains: tuple[Domain, Domain], items: Partition, source: str) -> None:
        """The paired and unpaired training streams, and the fingerprints a resume checks."""
        cfg = self.config.train

        def train_stream(domain: Domain, field: str) -> Stream:
            # Errors name an item by its place in the split, e.g. train_data.unpaired_b[1].
            return Stream(
                domain,
                getattr(items, field),
                cfg.collate_upfront,
                lambda i: "{}.{}[{}]".format(source, *items.origin(field, i)),
            )

        self.paired = paired_streams(train_stream, domains, items, source)
        if cfg.batch_size > self.paired[0].size and self.dist.is_main:
            warn(
                f"train.batch_size ({cfg.batch_size}) is more than the {self.paired[0].size} "
                f"training pairs: every batch repeats pairs (batches run on into the next "
                f"epoch); a batch_size of at most {self.paired[0].size} draws each once",
            )
        self.unpaired = {
            side: train_stream(domain, f"unpaired_{side}")
            for side, domain in zip("ab", domains, strict=True)
            if getattr(items, f"unpaired_{side}") and cfg.unpaired_weight > 0
        }
        # What a resume must find again (only the lists it trains on: validation may change).
        self.data_fingerprint = {
            field: stream.fingerprint()
            for field, stream in (
                ("a", self.paired[0]),
                ("b", self.paired[1]),
                *((f"unpaired_{side}", stream) for side, stream in self.unpaired.items()),
            )
        }

    def _build_validation(
        self, domains: tuple[Domain, Domain], val_split: PairedSplit | None, source: str
    ) -> None:
        """The validation streams (rank 0 validates; ``None`` elsewhere or without pairs)."""
        cfg = self.config.train
        self.validation = None
        if val_split is not None and len(val_split) and self.dist.is_main:
            size = min(len(val_split), cfg.val_size or len(val_split))
            self.validation = tuple(
                Stream(
                    domain,
                    list(getattr(val_split, side))[:size],
                    cfg.collate_upfront,
                    functools.partial("{}.{}[{}]".format, source, side),
                )
                for side, domain in zip("ab", domains, strict=True)
            )

    def _build_optimisers(self) -> None:
        """The batch samplers (one seeded generator for all) and the players' optimisers."""
        config, cfg = self.config, self.config.train
        self.generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "batches"))
        self.samplers = {"paired": BatchSampler(self.paired[0].size, self.generator)}
        for side, stream in self.unpaired.items():
            self.samplers[f"unpaired_{side}"] = BatchSampler(stream.size, self.generator)
        self.optimizer = _adam(self.bridge.generator_parameters(), lr=cfg.lr, betas=cfg.adam_betas)
        self.critic_optimizer = None
        if config.model.weights.adversarial:
            self.critic_optimizer = _adam(
                self.bridge.discriminators.parameters(), lr=cfg.discriminator_lr
            )

    def _wrap_ddp(self) -> None:
        """The step's loss as a module (:attr:`model`), wrapped in DDP when data-parallel."""
        self.step_loss = _StepLoss(self.bridge, self.config.train.unpaired_weight)
        self.model: nn.Module = self.step_loss
        if not self.dist.active:
            return
        # The critics are no part of the generator's gradient: DDP leaves them alone, and
        # the critic step averages their gradients itself (Distributed.average_gradients).
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
            self.model,
            [
                name
                for name, _ in (*self.model.named_parameters(), *self.model.named_buffers())
                if name.startswith("bridge.discriminators.")
            ],
        )
        self.model = DistributedDataParallel(
            self.model,
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            # Unpaired steps leave the other domain's parts out of the graph; DDP must
            # then look for unused parameters (an extra graph traversal each step).
            find_unused_parameters=bool(self.unpaired) or self._leaves_parameters_unused(),
        )

    def _leaves_parameters_unused(self) -> bool:
        """Whether a paired batch leaves some parameter without a gradient (e.g. a domain
        module used only for generation). Probed in eval mode on two pairs, so that neither
        the random streams nor normalisation statistics move."""
        indices = torch.arange(min(2, self.paired[0].size))
        batch = [self._to_device(stream.take(indices)) for stream in self.paired]
        parameters = [p for p in self.bridge.generator_parameters() if p.requires_grad]
        with torch.random.fork_rng(devices=self._random_devices):
            self.bridge.eval()
            total = self.bridge.batch_loss(*batch)["total"]
            grads = torch.autograd.grad(total, parameters, allow_unused=True)
            self.bridge.train()
        return any(g is None for g in grads)

    @property
    def _random_devices(self) -> list[torch.device]:
        """The devices whose random streams ``fork_rng`` must save too (the CPU's always)."""
        return [self.device] if self.device.type == "cuda" else []

    @contextlib.contextmanager
    def _own_random_stream(self) -> Iterator[None]:
        """Torch's global random stream (and the device's) as the run's own inside: where the
        last step (or the build) left it, the caller's put back on the way out."""
        with torch.random.fork_rng(devices=self._random_devices):
            if self._snapshot is not None:
                torch.set_rng_state(self._snapshot["torch"])
                if self._snapshot["cuda"] is not None:
                    torch.cuda.set_rng_state(self._snapshot["cuda"], self.device)
            yield

    def _seed_noise(self, seed: int) -> None:
        # Posterior noise and dropout differ between ranks but not between runs.
        torch.manual_seed(seed)

    # -- RNG and checkpoints --------------------------------------------------------------------
    def _rng_state(self) -> dict[str, Any]:
        return rng_state(self.device, self.generator, self.samplers)

    def _restore(self, checkpoint: dict[str, Any]) -> None:
        restore_models(
            checkpoint,
            self.checkpoint_path,
            self.bridge,
            self.average,
            self.optimizer,
            self.critic_optimizer,
        )
        self.step = checkpoint["step"]
        self._last_saved = self.step
        restore_rng(
            checkpoint["rng"],
            self.checkpoint_path,
            rank=self.dist.rank,
            device=self.device,
            generator=self.generator,
            samplers=self.samplers,
            fresh_seed=derive_seed(self.config.train.seed, "noise", self.dist.rank, self.step),
        )
        training = checkpoint.get("training") or {}  # None before checkpoints kept it
        seconds = training.get("seconds", 0.0)  # absent before checkpoints kept it
        number = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
        if not number or not (math.isfinite(seconds) and seconds >= 0):
            raise CheckpointError(
                f"{self.checkpoint_path} is damaged: its training.seconds is {seconds!r}, "
                f"not a number of seconds"
            )
        self._seconds_before = float(seconds)
        if "log_window" in training:
            try:
                self._train_means.load_state_dict(training["log_window"])
            except (KeyError, TypeError, ValueError) as exc:
                raise CheckpointError(
                    f"{self.checkpoint_path} is damaged: its training.log_window does not "
                    f"read ({first_line(exc)})"
                ) from None
        if self.dist.is_main:
            warn_other_world_size(
                self.checkpoint_path, training.get("world_size"), self.dist.world_size
            )

    @property
    def evaluation_bridge(self) -> Bridge:
        """The model to evaluate and translate with: the average of the weights with
        ``train.ema_decay > 0``, else :attr:`bridge` itself (the weights Adam steps)."""
        return self.bridge if self.average is None else self.average.module

    @property
    def last_checkpoint_step(self) -> int | None:
        """The step of the newest checkpoint this run wrote or resumed from (``None``: none)."""
        return self._last_saved

    def save(self, collective: bool = True) -> Path | None:
        """Write a checkpoint of the last completed step (rank 0 writes; with ``collective``
        every rank must call this, every rank's RNG state is kept, and every rank returns only
        once the file is written: a rank that exits at once after a signal would have torchrun
        kill rank 0 in the middle of its write)."""
        written = self._save(self.checkpoint_path, collective)
        if written is not None or collective:
            self._last_saved = self.step
        return written

    def _save(self, path: Path, collective: bool) -> Path | None:
        """:meth:`save` to ``path``, without counting it as the run's checkpoint."""
        snapshot = self._snapshot
        rng = dict(snapshot)
        gathered = [
            self.dist.gather(snapshot[key]) if collective else [snapshot[key]]
            for key in ("torch", "cuda")
        ]
        rng["torch"] = gathered[0]
        rng["cuda"] = gathered[1] if snapshot["cuda"] is not None else None
        written = self._write_checkpoint(rng, path) if self.dist.is_main else None
        if collective:
            self.dist.barrier()
        return written

    def _write_checkpoint(self, rng: dict[str, Any], path: Path) -> Path:
        save_checkpoint(
            path,
            self.evaluation_bridge,
            step=self.step,
            run=to_dict(self.config),
            optimizer=self.optimizer.state_dict(),
            critic_optimizer=(
                self.critic_optimizer.state_dict() if self.critic_optimizer is not None else None
            ),
            rng=rng,
            optimised_model=None if self.average is None else self.bridge.state_dict(),
            data=self.data_fingerprint,
            # The open log window: a resumed run logs the means the straight run logs.
            training={
                "world_size": self.dist.world_size,
                "log_window": self._train_means.state_dict(),
                "seconds": self._trained_seconds(),
            },
        )
        if path == self.checkpoint_path:
            self._checkpoint_stamp = stamp(path)  # our own write is no change
        return path

    # -- the step ---------------------------------------------------------------------------------
    def _trained_seconds(self) -> float:
        """Seconds of training of the run so far: those before this invocation (up to the
        checkpoint a resume continues; what a crash undid is not counted) plus this one's."""
        now = 0.0 if self._started is None else time.perf_counter() - self._started
        return self._seconds_before + now

    def _out_of_time(self, started: float) -> bool:
        """Whether ``train.max_seconds`` of this invocation have passed (never, when 0).

        Under DDP every rank must stop after the same step, so the ranks agree: the run
        stops when any rank's clock has run out.
        """
        budget = self.config.train.max_seconds
        if not budget:
            return False
        late = float(time.perf_counter() - started >= budget)
        return bool(self.dist.mean(torch.tensor([late], device=self.device)) > 0)

    def _unpaired_due(self, step: int) -> bool:
        cfg = self.config.train
        if not self.unpaired or step < cfg.unpaired_warmup:
            return False
        return (step - cfg.unpaired_warmup) % cfg.unpaired_every == 0

    def _indices(self, sampler: str, size: int) -> torch.Tensor:
        """This rank's share of the next global batch drawn by ``sampler``."""
        return self.dist.shard(self.samplers[sampler].next(size))

    def _to_device(self, batch: torch.Tensor) -> torch.Tensor:
        # A floating batch in the model's dtype, as Bridge.loss and translate take one: a
        # collate that makes float64 (numpy's default) trains as float32.
        dtype = self.bridge.dtype if batch.is_floating_point() else None
        return batch.to(self.device, dtype=dtype, non_blocking=True)

    def _inputs(self) -> list[torch.Tensor | None]:
        """The step's batches: the paired batch of each side, then (when due) the unpaired
        batch of each side (``None`` for a side without unpaired items), on the device.

        An item that fails to collate (only possible with ``train.collate_upfront = false``)
        stops the run as an interrupt does, on every rank: the ranks agree on it before the
        forward pass (one all-reduce, only then), checkpoint the last completed step together
        and raise, so that a resume goes on once the item is fixed."""
        cfg = self.config.train
        failure: TypeError | ValueError | None = None
        inputs: list[torch.Tensor | None] = []
        try:
            pairs = self._indices("paired", cfg.batch_size)
            inputs = [self._to_device(stream.take(pairs)) for stream in self.paired]
            if self._unpaired_due(self.step):
                for side in ("a", "b"):
                    stream = self.unpaired.get(side)
                    if stream is None:  # no unpaired items on this side: no sampler either
                        inputs.append(None)
                        continue
                    indices = self._indices(f"unpaired_{side}", self.unpaired_batch)
                    inputs.append(self._to_device(stream.take(indices)))
        except (TypeError, ValueError) as exc:
            failure = exc
        failed = failure is not None
        if self.dist.active and not cfg.collate_upfront:
            failed = bool(self.dist.largest(int(failed), self.device))
        if failed:
            self._stop_for_item(failure)
        return inputs

    def _take_alone(self, stream: Stream, indices: torch.Tensor) -> torch.Tensor:
        """``stream.take(indices)`` where rank 0 collates alone (validation): an item that
        fails stops the run as in :meth:`_inputs`, with rank 0's own checkpoint."""
        try:
            return stream.take(indices)
        except (TypeError, ValueError) as exc:
            self._stop_for_item(exc, collective=False)

    def _stop_for_item(
        self, failure: TypeError | ValueError | None, collective: bool = True
    ) -> NoReturn:
        """Checkpoint the last completed step (every rank together, if ``collective``) and
        raise ``failure`` (``None``: another rank's item) saying what was kept."""
        if self.step and self._last_saved != self.step:
            self.save(collective=collective)
        if self.step == 0:
            kept = "No step had completed, so there is nothing to resume"
        else:
            kept = (
                f"Training stopped after step {self.step}, whose checkpoint is "
                f"{self.checkpoint_path}; fix the item, then continue with --resume "
                f"(resume=True)"
            )
        if failure is None:
            raise ValueError(
                f"another rank met an item it could not collate (its error names it). {kept}"
            )
        kind = TypeError if isinstance(failure, TypeError) else ValueError
        raise kind(f"{failure}. {kept}") from failure

    def _check_finite(self, values: dict[str, float], step: int) -> None:
        """Stop the run before the update of a step whose ``values`` are not all finite,
        keeping the step before (the last finite one; the check comes before the update, so
        the weights, the optimiser and ``_snapshot`` are still that step's).

        A resume is exact: from that step it replays the failing step as it was, so it goes
        on only once a cause in a domain or the data is fixed. Where the run has an earlier
        checkpoint, the one to go back to with a lower learning rate, that stays
        ``checkpoint.pt`` and the last finite step goes beside it
        (``checkpoint-step<N>.pt``); without one, it becomes ``checkpoint.pt``. Every rank
        sees the same (reduced) values, so the save is collective."""
        bad = [k for k in sorted(values) if not math.isfinite(values[k])]
        if not bad:
            return
        last_finite = None
        if self.step and self._last_saved != self.step:
            # A collective save: every rank must take the same turn, and buffers (running
            # statistics) are not kept equal across ranks as the parameters are.
            broken = self.dist.largest(int(not self._weights_are_finite()), self.device)
            if not broken and self._last_saved is None:
                self.save()
            elif not broken:
                last_finite = self._save(self._beside(self.step), collective=True)
        # "total" is bad whenever a term is: name it only when it is the only one.
        named = [k for k in bad if k != "total"] or bad
        listed = ", ".join(f"{k} = {values[k]}" for k in named)
        raise self._non_finite(
            f"non-finite loss at step {step}: {listed}",
            named,
            step,
            "before that update ",
            last_finite,
        )

    def _beside(self, step: int) -> Path:
        """Where the last finite step goes when ``checkpoint.pt`` keeps an earlier one."""
        return self.checkpoint_path.with_name(f"checkpoint-step{step}.pt")

    def _diverged(self, exc: NonFiniteInputError, during: str, step: int) -> NonFiniteLossError:
        """The stop for codes a flow's input check refused in the forward pass of ``during``:
        weights blown up by the last update make them NaN or Inf before any loss exists.
        Nothing is saved: those weights would replace the last good checkpoint."""
        return self._non_finite(f"non-finite codes in {during}: {exc}", ["total"], step, "")

    def _non_finite(
        self,
        what: str,
        named: list[str],
        step: int,
        before: str,
        last_finite: Path | None = None,
    ) -> NonFiniteLossError:
        """:func:`~.divergence.non_finite_error` for this run's state."""
        return non_finite_error(
            what,
            named,
            step,
            before,
            trained=self.step,
            last_saved=self._last_saved,
            checkpoint=self.checkpoint_path,
            domains=self._domain_names,
            last_finite=last_finite,
        )

    def _weights_are_finite(self) -> bool:
        """Whether the weights themselves are finite: a NaN can start in them (a plugin's
        module that moves a buffer in its forward pass), and saving them then would replace
        the last good checkpoint with a broken one."""
        state = (*self.bridge.state_dict().values(), *self.evaluation_bridge.state_dict().values())
        return all(torch.isfinite(t).all() for t in state if t.is_floating_point())

    def _train_step(self) -> dict[str, float]:
        cfg = self.config.train
        step = self.step + 1
        inputs = self._inputs()
        self.bridge.train()
        if cfg.weight_schedule:
            self.step_loss.weights = scheduled_weights(
                self.config.model.weights, cfg.weight_schedule, step
            )
        try:
            terms = self.model(*inputs)
        except NonFiniteInputError as exc:
            # The same stop as a non-finite loss. A rank alone cannot stop the others'
            # collective calls: there, the error as it is.
            if not self.dist.active:
                raise self._diverged(exc, f"the forward pass of step {step}", step) from exc
            raise
        keys = sorted(terms)
        reduced = self.dist.mean(torch.stack([terms[k].detach().float() for k in keys]))
        values = dict(zip(keys, reduced.tolist(), strict=True))
        for name in cfg.weight_schedule:
            values[f"weight_{name}"] = getattr(self.step_loss.weights, name)
        self._check_finite(values, step)
        self.optimizer.zero_grad(set_to_none=True)
        if self.critic_optimizer is None:
            terms["total"].backward()
        else:
            # The two players' losses have disjoint graphs (Bridge.loss detaches each from the
            # other's parameters), so one backward pass of their sum gives each its own
            # gradient, and passes once through DDP's hooks on the outputs.
            self.critic_optimizer.zero_grad(set_to_none=True)
            (terms["total"] + terms["critic"]).backward()
        if not self._reach_checked:
            self._warn_untrained_parts(step)
        parameters = _parameters(self.optimizer)
        if cfg.grad_clip and cfg.grad_clip_mode == "norm":
            # clip_grad_norm_ returns the norm before clipping: no second pass to log it. A
            # non-finite norm leaves NaN gradients, but the check stops before any update.
            norm = nn.utils.clip_grad_norm_(parameters, cfg.grad_clip)
        else:
            norm = _grad_norm(parameters)
        values["grad_norm"] = float(norm)
        self._check_finite({"gradient norm": values["grad_norm"]}, step)
        if cfg.grad_clip and cfg.grad_clip_mode == "value":
            nn.utils.clip_grad_value_(parameters, cfg.grad_clip)
        if self.critic_optimizer is not None:
            critics = _parameters(self.critic_optimizer)
            self.dist.average_gradients(critics)
            values["critic_grad_norm"] = float(_grad_norm(critics))
            self._check_finite({"critic gradient norm": values["critic_grad_norm"]}, step)
        self.optimizer.step()
        if self.critic_optimizer is not None:
            self.critic_optimizer.step()
        if self.average is not None:
            self.average.update(step)
        self.step = step
        self._snapshot = self._rng_state()
        return values

    @property
    def _domain_names(self) -> dict[str, str]:
        """Each side's domain name, for messages whose terms end in their side."""
        return {side: domain.name for side, domain in self.bridge.domains.items()}

    def _warn_untrained_parts(self, step: int) -> None:
        """Once per Trainer, after its first backward pass: warn of parameters the loss did
        not reach. Not under DDP, which hands unused parameters gradients of its own."""
        self._reach_checked = True
        if self.dist.active:
            return
        parts = untrained_parts(self.bridge.named_generator_parameters())
        if parts:
            warn(untrained_warning(parts, self._domain_names, step))

    def validate(self) -> dict[str, float] | None:
        """Mean loss terms of :attr:`evaluation_bridge` on the validation pairs (rank 0;
        ``None`` without them).

        The posterior noise is drawn from its own fixed seed, so validating neither moves the
        training's random streams nor makes its numbers noisier from one validation to the next.
        """
        if self.validation is None:
            return None
        means = Means()
        batch = self.config.train.batch_size
        bridge = self.evaluation_bridge
        was_training = bridge.training
        with torch.random.fork_rng(devices=self._random_devices), torch.no_grad():
            torch.manual_seed(derive_seed(self.config.train.seed, "validation"))
            bridge.eval()
            try:
                for start in range(0, self.validation[0].size, batch):
                    indices = torch.arange(start, min(start + batch, self.validation[0].size))
                    x_a, x_b = (
                        self._to_device(self._take_alone(s, indices)) for s in self.validation
                    )
                    terms = bridge.batch_loss(x_a, x_b)
                    means.add({k: float(v) for k, v in terms.items()}, weight=len(indices))
            finally:  # a caller that catches a bad batch's error trains on, with dropout
                bridge.train(was_training)
        return means.pop()

    # -- the loop -------------------------------------------------------------------------------
    def _validate_and_log(self) -> None:
        try:
            self.val_terms = self.validate()
        except NonFiniteInputError as exc:  # the last update blew the weights up
            if not self.dist.active:
                after = f"the validation after step {self.step}"
                raise self._diverged(exc, after, self.step) from exc
            raise
        if self.val_terms is not None:
            record = {"step": self.step, "split": "val", "time": self._trained_seconds()}
            self.log.write({**record, **self.val_terms})

    def run(self) -> TrainResult:
        """Train up to ``config.train.steps`` steps (or ``max_seconds`` of wall time) and
        return what the run produced.

        The run draws its noise (posterior samples, dropout) from torch's global random
        stream, its own while it builds and trains: the caller's stream is put back after,
        and what the caller draws between runs does not change the run's.

        Raises:
            NonFiniteLossError: a loss term or the gradient became NaN/Inf.
            TrainingInterrupted: SIGINT or SIGTERM arrived; the run stopped after the step it
                was in and wrote a checkpoint of it (a second signal: at once, without one).
            KeyboardInterrupt: raised by a callback; after writing a checkpoint of the last
                completed step.
            TypeError, ValueError: with ``train.collate_upfront = false``, an item failed to
                collate (the error names it); after writing a checkpoint of the last completed
                step.
        """
        with self._own_random_stream():
            return self._run()

    def _run(self) -> TrainResult:
        cfg = self.config.train
        started = time.perf_counter()
        if self.step >= cfg.steps:
            return self._nothing_to_train(started)
        self._started = started
        held = hold_out(
            self.out,
            self.dist,
            self.device,
            lambda: check_unchanged(self.checkpoint_path, self._checkpoint_stamp),
        )
        bar = progress_bar(
            total=cfg.steps,
            initial=self.step,
            desc="train",
            disable=not (cfg.progress and self.dist.is_main and watched()),
            dynamic_ncols=True,
        )
        finished = False
        stop = StopRequests(announce=self.dist.is_main)
        try:
            if self.dist.is_main:
                prepare_out(self.out, self.log, self.step, to_dict(self.config))
            with stop.handling():
                last_terms = self._loop(stop, started, bar)
                self._validate_and_log()
                checkpoint = self.save()
            finished = True
        except StopNow as now:
            raise self._interrupted(now.signal_number, checkpoint=False) from None
        except KeyboardInterrupt:
            # Other ranks may be anywhere in their step: no collective call here. A signal's
            # stop (TrainingInterrupted) has saved its step on every rank already.
            if self.step and self._last_saved != self.step:
                self.save(collective=False)
            raise
        finally:
            self._seconds_before, self._started = self._trained_seconds(), None
            bar.close()
            self.dist.close(barrier=finished)
            held.close()
        if stop.received is not None:  # it came during the final validation or checkpoint
            raise self._interrupted(stop.received, checkpoint=True)
        return self._result(started, last_terms, self.val_terms, checkpoint)

    def _interrupted(self, signal_number: int, checkpoint: bool) -> TrainingInterrupted:
        """The stop for a signal after :attr:`step`, noting how to go on: in a notebook the
        traceback is all a person sees (``flowbridge train`` prints its own command)."""
        stopped = TrainingInterrupted(signal_number, self.step, checkpoint=checkpoint)
        if self._last_saved is None:
            add_note(stopped, "No checkpoint was written, so there is nothing to resume")
        else:
            add_note(
                stopped,
                f"resume=True (train or Trainer) continues the run from {self.checkpoint_path} "
                f"(step {self._last_saved})",
            )
        return stopped

    def _nothing_to_train(self, started: float) -> TrainResult:
        """The result of a resume whose checkpoint is already at ``train.steps`` or past it:
        said on rank 0, and nothing written (no validation, log record or config.json, which
        keeps the run's own, higher target)."""
        if self.dist.is_main:
            warn(
                f"{self.checkpoint_path} has already trained {self.step} steps and "
                f"train.steps is {self.config.train.steps}: nothing to train; raise "
                f"train.steps (--steps N) to train further",
            )
        self.dist.close(barrier=True)
        checkpoint = self.checkpoint_path if self.dist.is_main else None
        return self._result(started, {}, None, checkpoint)

    def _result(
        self,
        started: float,
        terms: dict[str, float],
        val_terms: dict[str, float] | None,
        checkpoint: Path | None,
    ) -> TrainResult:
        """What :meth:`run` returns, timed from ``started``; the run directory and log only on
        rank 0, as ``checkpoint`` is."""
        main = self.dist.is_main
        return TrainResult(
            step=self.step,
            terms=terms,
            val_terms=val_terms,
            wall_time=time.perf_counter() - started,
            out=self.out if main else None,
            checkpoint=checkpoint,
            log=self.log.path if main else None,
            bridge=self.evaluation_bridge,
        )

    def _stop_requested(self, stop: StopRequests) -> int | None:
        """The signal that asks the run to stop after this step, agreed across ranks (one
        rank may have received it alone, e.g. a worker's SIGTERM under torchrun): every
        rank then stops after the same step, and saves it together."""
        if not self.dist.active:
            return stop.received
        return self.dist.largest(stop.received or 0, self.device) or None

    def _loop(self, stop: StopRequests, started: float, bar: tqdm) -> dict[str, float]:
        """Train step after step until ``train.steps`` or ``max_seconds``, or until ``stop``
        has received a signal on any rank: then checkpoint that step (after its log,
        validation, periodic checkpoint and callbacks) and raise :class:`TrainingInterrupted`.
        Returns the last logged means of the training terms (empty when no step was left
        to train)."""
        cfg = self.config.train
        last_terms: dict[str, float] = {}
        while self.step < cfg.steps:
            values = self._train_step()
            self._train_means.add(values)
            step = self.step
            final = step == cfg.steps or self._out_of_time(started)
            if step % cfg.log_every == 0 or final:
                last_terms = self._train_means.pop()
                record = {"step": step, "split": "train", "time": self._trained_seconds()}
                self.log.write({**record, **last_terms})
                bar.set_postfix(
                    {k: f"{last_terms[k]:.4g}" for k in _SHOWN if k in last_terms},
                    refresh=False,
                )
            if cfg.validate_every and step % cfg.validate_every == 0 and not final:
                self._validate_and_log()
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and not final:
                self.save()
            bar.update(1)
            # A callback's draws (a translate without a generator, to monitor) must not move
            # the next step's noise: the checkpoint keeps the stream as the step left it.
            with torch.random.fork_rng(devices=self._random_devices):
                for callback in self.callbacks:
                    callback(self, step, values)
            received = self._stop_requested(stop)
            if received is not None:
                if self._last_saved != step:  # (not over the periodic checkpoint just written)
                    self.save()
                raise self._interrupted(received, checkpoint=True)
            if final:
                break
        return last_terms


def train(
    config: RunConfig,
    train_data: PairedSplit | None = None,
    val_data: PairedSplit | None = None,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Build a :class:`Trainer` and run it (see there for the arguments)."""
    return Trainer(config, train_data, val_data, resume=resume, callbacks=callbacks).run()

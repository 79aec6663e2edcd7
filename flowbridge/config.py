"""Configuration dataclasses: every setting of a run, validated, and read from TOML.

Every setting of a run lives in one object (:class:`RunConfig`) that is saved in its
checkpoints, so a model reloads without guessing. Each dataclass checks its own values;
``from_dict`` (:mod:`flowbridge.settings`) rejects unknown keys and wrong types by their
dotted name; :func:`load_run_config` reads a TOML file (or a run directory's ``config.json``)
on top of a preset.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .flows import RESIDUAL_PRIORS, SCALE_ACTIVATIONS, SHARED_COUPLINGS, SHARED_PRIORS
from .settings import ConfigError, check_fields, from_dict, merge_settings, to_dict, type_ok

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "LossWeights",
    "BridgeConfig",
    "DataConfig",
    "DomainConfig",
    "DomainsConfig",
    "TrainConfig",
    "RunConfig",
    "from_dict",
    "to_dict",
    "load_run_config",
    "merge_settings",
    "ConfigError",
]


@dataclass
class LossWeights:
    r"""Weights of the LNFMM loss terms. The loss is written out in :mod:`flowbridge.bridge`;
    the "symbol" column gives each weight's symbol there (λ1-λ5 are the paper's).

    ======================  ======  =====================================================
    field                   symbol  term (per sample, nats)
    ======================  ======  =====================================================
    ``shared``              λ1      :math:`-\log p(s)` of each shared code (uniform prior:
                                    the volume term :math:`-\log|\det J_f|`)
    ``prior_a``             λ2      :math:`\mathrm{KL}(q(r_A|x_A) \| p_A(r_A|c_A))`; with
                                    the fixed posterior :math:`-\log p_A(r_A|c_A)` of the
                                    sample, the KL less q's entropy (see below)
    ``prior_b``             λ3      the same for B
    ``rec_a``               λ4      reconstruction NLL of A from its own latent
    ``rec_b``               λ5      reconstruction NLL of B from its own latent
    ``cross``               λx      cross-reconstruction of both domains through f
    ``cross_a``                     extra weight on A's cross-reconstruction alone
    ``cross_b``                     extra weight on B's cross-reconstruction alone
    ``align``               λm      :math:`\|f(s_A) - s_B\|^2` (the paper's text; 0 in the
                                    original code)
    ``adversarial``         λG      generator hinge term :math:`-D(\hat x, s)` of each
                                    domain with a discriminator; 0 = no GAN (default);
                                    λ5·λ5_G in the original code
    ``back_a``              λb,A    back-translation of *unpaired* A inputs: the NLL of
                                    :math:`x_A` decoded from the shared code of its own
                                    translation :math:`\hat x_B`, carried back through f
    ``back_b``              λb,B    the same for unpaired B inputs
    ``contrastive``         λc      symmetric InfoNCE of :math:`f(s_A)` and :math:`s_B` on
                                    paired batches: each code must pick out its partner's
                                    among the batch's (:mod:`flowbridge.contrastive`;
                                    temperature :attr:`BridgeConfig.contrastive_temperature`)
    ``prior_nce_a``         λn,A    InfoNCE of A's residual prior over the batch's contexts
                                    on paired batches: :math:`-\log` softmax over
                                    :math:`c_j` of :math:`\log p_A(r_A^{(i)} | c_j)` at
                                    j = i (:func:`flowbridge.contrastive.density_nce`;
                                    negatives :attr:`BridgeConfig.prior_nce_negatives`)
    ``prior_nce_b``         λn,B    the same for B's residual prior
    ======================  ======  =====================================================

    A domain's cross-reconstruction is weighted ``cross + cross_<side>``: the original code
    weighs the two sides differently (captioning: λ 0.6 for text, 1.5 for images, in its own
    units), which ``cross = 0`` and per-side weights express (``cross_a = 76.8, cross_b =
    0.0234`` in flowbridge's units: :mod:`flowbridge.presets`). The original text-to-image
    model weighs its GAN term λ5 · λ5_G = 1 · 2000 (its image reconstruction weight λ5 times
    a GAN factor), that is λG = 2000 (``adversarial = 2000``); which generated
    batches the critic sees is :attr:`BridgeConfig.adversarial_on`.

    With the fixed-σ posterior (the default, as in the original) the residual prior terms are
    :math:`-\log p(r|c)` of one posterior sample: the KL less the posterior's entropy, a
    constant, :math:`\mathrm{KL} = -\log p(r|c) - \tfrac{d_r}{2}\log(2\pi e \sigma^2)`
    (in expectation), as the original's reports are. So the bits-per-dimension reports
    (``prior_<side>_bpd``) are the KL's plus :math:`\log_2(2\pi e\sigma^2) / 2`, which is
    −2.27 bits at σ = 0.05: they may be negative, and they compare with those of a learned
    posterior only after subtracting it (adding 2.27 bits at σ = 0.05; at
    ``posterior_noise = 0`` the KL itself is infinite).

    Back-translation (not in the paper; 0 = off) gives unpaired data a way to the shared map,
    which otherwise only pairs train: an unpaired :math:`x_A` is translated into a pseudo
    partner :math:`\hat x_B` (residual sampled from its prior, decoded without gradient, as
    :meth:`~flowbridge.Bridge.translate` does) and reconstructed from
    :math:`f^{-1}(s_B(\hat x_B))` (a posterior sample of the pseudo partner's shared code,
    noise included, as every training term's) and its own residual. The target is real data,
    so the term trains B's encoder, f and A's decoder on the direction B → A. It costs a
    generation and a second encoding per unpaired batch; on the shapes testbed ``back_b = 1``
    (unpaired captions back-translated through generated images) is what made the unpaired
    captions pay (benchmarks/README.md).
    """

    shared: float = 1.0
    prior_a: float = 1.0
    prior_b: float = 1.0
    rec_a: float = 1.0
    rec_b: float = 1.0
    cross: float = 1.0
    cross_a: float = 0.0
    cross_b: float = 0.0
    align: float = 0.0
    adversarial: float = 0.0
    back_a: float = 0.0
    back_b: float = 0.0
    contrastive: float = 0.0
    prior_nce_a: float = 0.0
    prior_nce_b: float = 0.0

    def __post_init__(self):
        check_fields(self)
        for key, value in vars(self).items():
            if not (isinstance(value, (int, float)) and 0 <= value < float("inf")):
                raise ConfigError(f"{key} must be a finite number >= 0, got {value!r}")


@dataclass
class BridgeConfig:
    """The two-domain LNFMM model.

    Attributes:
        shared_features: shared code size ``d_s`` (both domains).
        residual_a, residual_b: residual sizes; ``None`` = the domain's default.
        shared_map: coupling of the shared bijection f: ``"additive"`` (original) or ``"affine"``.
        shared_steps, shared_hidden: depth and width of f (12 and 1024 in the original).
        shared_prior: ``"uniform"`` (original), ``"gaussian"`` or ``"flow"`` (joint sampling;
            an unconditional flow of ``residual_steps`` steps, ``residual_hidden`` wide, with
            ``coupling_scale`` couplings over a standard normal).
        residual_prior: ``"flow"`` (LNFMM), ``"gaussian"``, ``"standard"`` or ``"none"``
            (then both residuals are 0-dimensional: a deterministic mapping).
        residual_steps, residual_hidden: depth and width of the residual priors.
        residual_hidden_a, residual_hidden_b: a width for one domain's prior alone; ``None`` =
            ``residual_hidden`` (the original uses 1024 for text and 512 for images).
        base_scale: σ0 of the residual priors' base normal (0.25 in the original).
        residual_components: Gaussians in the base of the ``"flow"`` residual priors: 1 is
            LNFMM's single normal; more give a conditional mixture, whose components keep the
            separate modes of a residual apart (:mod:`flowbridge.flows.densities`).
        coupling_scale: scale activation of the priors' affine couplings: ``"exp"`` (the
            default), ``"softplus"`` or the original's ``"sigmoid"``
            (:mod:`flowbridge.flows.nn` has each one's formula and why "exp" is the default).
        posterior: ``"fixed"`` (encoder output + fixed-σ noise, the original) or ``"learned"``
            (the encoder also outputs a log-variance; KL by one Monte-Carlo sample; needs a
            proper shared prior, ``"gaussian"`` or ``"flow"``).
        posterior_noise: σ of the fixed posterior (0.05 in the original).
        adversarial_on: with ``weights.adversarial > 0``, which generated batches of a domain
            with a discriminator it scores: ``"cross"`` (the cross-reconstruction: decoded
            from the partner's shared code carried over by f next to the domain's own
            posterior residual, scored for that code; translation draws the residual from
            the prior instead, which the critic does not see),
            ``"own"`` (the domain's own reconstruction, scored for its own code) or ``"both"``.
        contrastive_temperature: τ of the contrastive term's cosine similarities (with
            ``weights.contrastive > 0``; CLIP's learned τ settles near 0.01, 0.1 is gentler).
        prior_nce_negatives: other contexts of the batch each residual is scored under by the
            ``prior_nce_<side>`` terms (at most the batch size − 1; each costs one more pass
            of the batch through the residual prior).
        weights: loss weights.
    """

    shared_features: int = 16
    residual_a: int | None = None
    residual_b: int | None = None
    shared_map: str = "additive"
    shared_steps: int = 4
    shared_hidden: int = 256
    shared_prior: str = "uniform"
    residual_prior: str = "flow"
    residual_steps: int = 4
    residual_hidden: int = 128
    residual_hidden_a: int | None = None
    residual_hidden_b: int | None = None
    base_scale: float = 0.25
    residual_components: int = 1
    coupling_scale: str = "exp"
    posterior: str = "fixed"
    posterior_noise: float = 0.05
    adversarial_on: str = "cross"
    contrastive_temperature: float = 0.1
    prior_nce_negatives: int = 16
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self):
        check_fields(self)
        choices = {
            # The flow modules own the lists of what they can build.
            "shared_map": SHARED_COUPLINGS,
            "shared_prior": SHARED_PRIORS,
            "residual_prior": RESIDUAL_PRIORS,
            "posterior": ("fixed", "learned"),
            "coupling_scale": tuple(SCALE_ACTIVATIONS),
            "adversarial_on": ("cross", "own", "both"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        for key in (
            "shared_features",
            "shared_steps",
            "shared_hidden",
            "residual_steps",
            "residual_hidden",
            "residual_components",
            "prior_nce_negatives",
        ):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        for key in ("residual_a", "residual_b"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ConfigError(f"{key} must be >= 0 (or omitted), got {value}")
        for key in ("residual_hidden_a", "residual_hidden_b"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{key} must be >= 1 (or omitted), got {value}")
        if self.residual_prior == "none" and (self.residual_a or self.residual_b):
            raise ConfigError(
                "residual_prior 'none' is the deterministic baseline: residual_a and residual_b "
                f"must be 0 or omitted, got {self.residual_a} and {self.residual_b}"
            )
        if self.residual_components > 1 and self.residual_prior != "flow":
            raise ConfigError(
                f"residual_components = {self.residual_components} (a mixture base) needs "
                f"residual_prior 'flow', got {self.residual_prior!r}; set residual_components "
                "= 1 for the other priors"
            )
        if self.posterior == "learned" and self.shared_prior == "uniform":
            # The KL of a learned posterior holds log q(s), the negative entropy of the shared
            # code; under a flat prior nothing bounds it, so training widens the shared
            # posterior without end and the codes turn to noise.
            raise ConfigError(
                "posterior 'learned' needs a proper shared prior: the 'uniform' prior is flat, "
                "so the shared code's learned variance would grow without bound; use "
                "shared_prior 'gaussian' or 'flow', or posterior 'fixed'"
            )
        if not 0 < self.base_scale < math.inf:
            raise ConfigError(f"base_scale must be a finite number > 0, got {self.base_scale!r}")
        if not 0 <= self.posterior_noise < math.inf:
            raise ConfigError(
                f"posterior_noise must be a finite number >= 0, got {self.posterior_noise!r}"
            )
        if not 0 < self.contrastive_temperature < float("inf"):
            raise ConfigError(
                f"contrastive_temperature must be a finite number > 0, got "
                f"{self.contrastive_temperature!r}"
            )


@dataclass
class DataConfig:
    """Where the paired data comes from.

    Attributes:
        dataset: a registered dataset name (``flowbridge plugins`` lists them); empty when the
            data is handed to the trainer in memory.
        options: keyword arguments of the dataset (``[data.options]``).
        train_split: the split trained on.
        val_split: the split validated on; ``""`` for none.
    """

    dataset: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    train_split: str = "train"
    val_split: str = "val"

    def __post_init__(self):
        check_fields(self)


@dataclass
class DomainConfig:
    """One domain: its registered name and constructor options (``[domains.a.options]``)."""

    name: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        check_fields(self)


@dataclass
class DomainsConfig:
    """The two domains; ``a`` is on the input side of the shared bijection ``f: A -> B``."""

    a: DomainConfig = field(default_factory=DomainConfig)
    b: DomainConfig = field(default_factory=DomainConfig)

    def __post_init__(self):
        check_fields(self)


@dataclass
class TrainConfig:
    """How to train.

    Attributes:
        steps: optimiser steps in total (a resumed run continues up to this number).
        max_seconds: also stop once this invocation has trained for this many seconds of
            wall time (0 = no time limit): a fixed compute budget, e.g. to compare settings
            "at equal wall time". The run ends as after its last step (validation, final
            checkpoint); the step it reached is in the result and the log. A resumed run gets
            the budget anew. Wall time depends on the machine: such runs are not reproducible.
        batch_size: pairs per step, over all processes (each DDP rank takes its share).
        lr: Adam learning rate (1e-4 in the original).
        adam_betas: decay rates ``(β1, β2)`` of the first and second moment estimates of the
            model's Adam (torch's default ``(0.9, 0.999)``). A smaller β2 (0.99) forgets the large
            gradients of the first steps sooner, so the steps grow again once the loss is
            flat: the testbed's image autoencoder alone keeps small shapes after fewer steps
            with it, the whole testbed bridge only within a seed's noise
            (benchmarks/README.md). The discriminators' Adam keeps torch's default.
        discriminator_lr: learning rate of the discriminators' own Adam (3e-4 in the
            original), used when ``model.weights.adversarial > 0``.
        ema_decay: keep an exponential moving average of the weights with this decay β
            (Polyak averaging, :mod:`flowbridge.training.averaging`; 0 = off): the average,
            over about the last 1 / (1 - β) steps, is the model the run validates, saves for
            :func:`~flowbridge.load_bridge` and returns, while Adam steps the raw weights
            (kept in the checkpoint for resume). 0.99 averages about 100 steps.
        weight_schedule: loss weights that change over the run: ``{term: [[step, factor],
            ...]}`` multiplies ``model.weights.<term>`` by a piecewise-linear factor of the
            optimiser step (:mod:`flowbridge.training.schedule`; steps increasing, factors
            >= 0, constant before the first point and after the last). ``{"rec_a": [[0, 0.0],
            [1000, 1.0]]}`` warms A's own reconstruction up over 1,000 steps; ``[[600, 1.0],
            [1200, 0.0]]`` fades it out. Every batch with the term is scaled, paired and
            unpaired; validation totals the terms with the configured weights, so that its
            numbers compare across steps. The log records each scheduled weight
            (``weight_<term>``).
        grad_clip: clipping threshold; 0 turns clipping off.
        grad_clip_mode: ``"value"`` (clamp every gradient entry, the original) or ``"norm"``
            (rescale the whole gradient to at most this global L2 norm).
        paired_fraction: fraction of the training pairs kept as pairs; the others lose their
            link and join the unpaired A-only and B-only items (with any the split has).
        unpaired_weight: weight of the unpaired batches' loss next to the paired batch's; 0
            leaves unpaired items out of training (the domains are still fitted on them).
        unpaired_warmup: steps on pairs alone before unpaired batches join in.
        unpaired_every: after the warm-up, add unpaired batches every this many steps.
        unpaired_batch_size: items per unpaired batch and side; 0 = ``batch_size``.
        seed: seeds the model's initialisation, the batches and the posterior noise.
        device: ``"cpu"``, ``"cuda"`` (``"cuda:N"``) or ``"auto"`` (CUDA when available).
        collate_upfront: collate all training items once (fast; needs them in memory as
            tensors); ``False`` collates each batch from the items.
        validate_every: validate every this many steps (0 = only at the end).
        val_size: validate on at most this many pairs of the validation split (0 = all).
        checkpoint_every: write a checkpoint every this many steps (0 = only at the end).
        log_every: write the mean training terms to the log every this many steps.
        out: directory of the run's checkpoint, log and config.
        progress: show a progress bar (only ever on a terminal or in a Jupyter notebook).
    """

    steps: int = 1000
    max_seconds: float = 0.0
    batch_size: int = 64
    lr: float = 1e-3
    adam_betas: tuple[float, float] = (0.9, 0.999)
    discriminator_lr: float = 3e-4
    ema_decay: float = 0.0
    weight_schedule: dict[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    grad_clip: float = 0.0
    grad_clip_mode: str = "value"
    paired_fraction: float = 1.0
    unpaired_weight: float = 1.0
    unpaired_warmup: int = 0
    unpaired_every: int = 1
    unpaired_batch_size: int = 0
    seed: int = 0
    device: str = "cpu"
    collate_upfront: bool = True
    validate_every: int = 0
    val_size: int = 0
    checkpoint_every: int = 0
    log_every: int = 10
    out: str = "runs/flowbridge"
    progress: bool = True

    def __post_init__(self):
        check_fields(self)
        for key in ("steps", "unpaired_warmup", "validate_every", "val_size", "checkpoint_every"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key} must be >= 0, got {getattr(self, key)}")
        for key in ("batch_size", "unpaired_every", "log_every"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.unpaired_batch_size < 0:
            raise ConfigError(f"unpaired_batch_size must be >= 0, got {self.unpaired_batch_size}")
        for key in ("lr", "discriminator_lr"):
            if not 0 < getattr(self, key) < math.inf:
                raise ConfigError(f"{key} must be > 0 and finite, got {getattr(self, key)}")
        betas = self.adam_betas
        if not (
            isinstance(betas, (list, tuple))
            and len(betas) == 2
            and all(type_ok(b, float) and 0 <= b < 1 for b in betas)
        ):
            raise ConfigError(
                f"adam_betas must be two numbers in [0, 1), (beta1, beta2) such as "
                f"[0.9, 0.999], got {betas!r}"
            )
        self.adam_betas = (float(betas[0]), float(betas[1]))  # a TOML or JSON list, too
        if not (self.max_seconds >= 0 and math.isfinite(self.max_seconds)):
            raise ConfigError(
                f"max_seconds must be a finite number >= 0 (0 = no time limit), "
                f"got {self.max_seconds}"
            )
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(
                f"ema_decay must be in [0, 1) (0 = no weight averaging; 0.99 averages about "
                f"the last 100 steps), got {self.ema_decay}"
            )
        if not isinstance(self.weight_schedule, dict):
            raise ConfigError(
                f"weight_schedule must be a table of loss weight -> [[step, factor], ...], "
                f"got {self.weight_schedule!r}"
            )
        self.weight_schedule = {
            name: _schedule_points(name, points) for name, points in self.weight_schedule.items()
        }
        if not 0 <= self.grad_clip < math.inf:
            raise ConfigError(
                f"grad_clip must be a finite number >= 0 (0 = off), got {self.grad_clip}"
            )
        if self.grad_clip_mode not in ("value", "norm"):
            raise ConfigError(
                f"grad_clip_mode must be one of ('value', 'norm'), got {self.grad_clip_mode!r}"
            )
        if not 0 < self.paired_fraction <= 1:
            raise ConfigError(
                f"paired_fraction must be in (0, 1]: the shared map learns from pairs only, "
                f"got {self.paired_fraction}"
            )
        if not 0 <= self.unpaired_weight < math.inf:
            raise ConfigError(
                f"unpaired_weight must be a finite number >= 0, got {self.unpaired_weight}"
            )
        device = self.device
        if not (device in ("cpu", "cuda", "auto") or device.startswith("cuda:")):
            raise ConfigError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")


def _schedule_points(name: str, points: Any) -> tuple[tuple[int, float], ...]:
    """``train.weight_schedule[name]`` checked and as a tuple of ``(step, factor)`` pairs (a
    TOML or JSON list of lists reads the same)."""
    terms = [f.name for f in dataclasses.fields(LossWeights)]
    if name not in terms:
        raise ConfigError(
            f"weight_schedule names {name!r}, which is not a loss weight; known: {terms}"
        )
    example = "such as [[0, 0.0], [1000, 1.0]] (a warm-up over 1,000 steps)"

    def point(p: Any) -> bool:
        if not (isinstance(p, (list, tuple)) and len(p) == 2):
            return False
        t, a = p
        return type_ok(t, int) and t >= 0 and type_ok(a, float) and 0 <= a < math.inf

    if not (isinstance(points, (list, tuple)) and points and all(map(point, points))):
        raise ConfigError(
            f"weight_schedule.{name} must be a list of [step, factor] pairs, steps whole "
            f"numbers >= 0 and factors finite numbers >= 0, {example}; got {points!r}"
        )
    steps = [t for t, _ in points]
    if any(t1 <= t0 for t0, t1 in itertools.pairwise(steps)):
        raise ConfigError(
            f"weight_schedule.{name}: the steps must increase, got {steps}; {example}"
        )
    return tuple((int(t), float(a)) for t, a in points)


@dataclass
class RunConfig:
    """Everything a training run needs; saved in its checkpoints.

    TOML layout (every table optional but the domains)::

        preset = "small"               # defaults from flowbridge.presets, overridden below
        [data]
        dataset = "shapes"
        [data.options]
        train_size = 2000
        [domains.a]
        name = "image"
        [domains.a.options]
        size = 32
        [domains.b]
        name = "text"
        [model]                        # BridgeConfig
        shared_features = 16
        [model.weights]                # LossWeights
        prior_a = 0.2
        [train]                        # TrainConfig
        steps = 2000
    """

    preset: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    domains: DomainsConfig = field(default_factory=DomainsConfig)
    model: BridgeConfig = field(default_factory=BridgeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self):
        check_fields(self)


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    """``data[key]`` if it is a table, else ``{}`` (absent, or malformed: :func:`from_dict`
    names that later)."""
    value = data.get(key, {})
    return value if isinstance(value, dict) else {}


def _read_config_file(path: Path) -> dict[str, Any]:
    """The table a TOML file, or a ``.json`` file (a run's ``config.json``), holds."""
    if path.is_dir():
        # Usually a run directory (its config.json) or the folder of a TOML file.
        own = path / "config.json"
        found = ([own] if own.is_file() else []) + sorted(path.glob("*.toml"))
        hint = (
            f"a config file in it, e.g. {', '.join(map(str, found[:3]))}"
            if found
            else "the path of a TOML config file"
        )
        raise IsADirectoryError(f"config file {str(path)!r} is a directory; give {hint}")
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    is_json = path.suffix.lower() == ".json"
    with open(path, "rb") as file:
        if file.read(4) == b"PK\x03\x04":  # a zip archive, as torch.save writes
            config = path.parent / "config.json"
            raise ConfigError(
                f"{path} is a checkpoint (or another zip archive), not a config file; a run's "
                f"settings are in the config.json beside its checkpoint"
                + (f": {config}" if config.is_file() else "")
            )
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if is_json else tomllib.loads(text)
    # RecursionError: brackets nested thousands deep (the parsers recurse per level).
    except (
        json.JSONDecodeError,
        tomllib.TOMLDecodeError,
        UnicodeDecodeError,
        RecursionError,
    ) as exc:
        raise ConfigError(f"{path} is not valid {'JSON' if is_json else 'TOML'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path} must hold a JSON object of settings (as a run's config.json does), "
            f"got a {type(data).__name__}"
        )
    return data


def load_run_config(source: str | Path | dict[str, Any], preset: str | None = None) -> RunConfig:
    """Read a run configuration from a TOML file (or a plain dict) on top of a preset.

    A ``.json`` file is read as JSON with the same layout: the ``config.json`` a run writes
    to its directory, which holds every setting and so loads back as the run's config (to
    resume it, e.g. ``flowbridge train runs/x/config.json --resume``).

    Args:
        source: path of a TOML file (or of a ``.json`` file), or the dict a TOML file would
            give.
        preset: name of a :mod:`flowbridge.presets` preset; overrides the file's own
            top-level ``preset`` key. Settings in ``source`` win over the preset's; the
            preset's ``domain_options`` fill in the options of the domains they name,
            on either side (:mod:`flowbridge.presets`).

    Raises:
        FileNotFoundError: the file does not exist.
        IsADirectoryError: the path is a directory (the message names the config files in it).
        ConfigError: invalid TOML or JSON, an unknown preset, or a setting unknown or of the
            wrong type (named by its dotted key, e.g. ``train.steps``).
    """
    try:
        return _load_run_config(source, preset)
    except RecursionError:  # tables nested hundreds deep: copying and checking recurse too
        where = "the settings" if isinstance(source, dict) else str(source)
        raise ConfigError(
            f"{where}: tables nested too deep to read (hundreds of levels; a run "
            f"configuration has a few)"
        ) from None


def _load_run_config(source: str | Path | dict[str, Any], preset: str | None) -> RunConfig:
    from .presets import preset_settings

    data = copy.deepcopy(source) if isinstance(source, dict) else _read_config_file(Path(source))
    name = preset if preset is not None else data.get("preset", "")
    if not isinstance(name, str):
        raise ConfigError(f"setting 'preset' must be of type str, got {type(name).__name__}")
    if name:
        base = preset_settings(name)
        by_name = base.pop("domain_options", {})
        for side in ("a", "b"):
            # A preset's domain options are meant for its own domain, not for another one
            # the file puts in its place.
            chosen = _table(data, "domains").get(side, {})
            preset_side = base.get("domains", {}).get(side, {})
            if isinstance(chosen, dict) and chosen.get("name", preset_side.get("name")) != (
                preset_side.get("name")
            ):
                preset_side.pop("options", None)
        data = merge_settings(base, data)
        data["preset"] = name
        for domain in _table(data, "domains").values():
            if not isinstance(domain, dict) or domain.get("name") not in by_name:
                continue
            options = domain.get("options", {})
            if isinstance(options, dict):  # else from_dict names the bad table
                domain["options"] = merge_settings(by_name[domain["name"]], options)
    return from_dict(RunConfig, data)

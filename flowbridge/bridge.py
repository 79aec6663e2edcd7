r"""The two-domain LNFMM model: encoders, shared bijection, priors, losses and translation.

For domains A and B with latents :math:`z_A = [s_A, r_A]`, :math:`z_B = [s_B, r_B]`, the
shared bijection :math:`f` carries A's shared space to B's. A paired example costs
(every term per sample, then averaged over the batch)

.. math::

    L = λ_1 [-\log p(s_A) - \log p(s_B)]
      + λ_2\, \mathrm{KL}(q(r_A|x_A) \| p_A(r_A | f^{-1}(s_B)))
      + λ_3\, \mathrm{KL}(q(r_B|x_B) \| p_B(r_B | f(s_A)))
      + λ_4\, \ell_A(x_A | s_A, r_A) + λ_5\, \ell_B(x_B | s_B, r_B)
      + λ_x [\ell_B(x_B | f(s_A), r_B) + \ell_A(x_A | f^{-1}(s_B), r_A)]
      + λ_m \|f(s_A) - s_B\|^2 + λ_c\, \mathrm{InfoNCE}(f(s_A), s_B)
      + \sum_{X \in \{A, B\}} \big[λ_{n,X}\, \mathrm{NCE}_X - λ_G\, D_X(\hat x_X, c_X)\big]

The shared prior :math:`p` is a density on B's shared space; A's shared code is scored under
the density it induces through f, :math:`-\log p(s_A) = -\log p(f(s_A)) - \log|\det J_f(s_A)|`.
With the original "uniform" prior only the volume term :math:`-\log|\det J_f|` remains.
The two cross-reconstructions may also be weighted apart (``cross_a``, ``cross_b`` are added
to :math:`λ_x` for one side each), as the original code does. The contrastive term
(:mod:`flowbridge.contrastive`, not in the paper; off unless ``weights.contrastive`` > 0) asks
each carried code to pick out its own partner's among the batch's; the density contrast
(:math:`λ_{n,X}`, ``weights.prior_nce_<side>``, also not in the paper) asks each residual to
be likelier under its own context than under the batch's others.
Each residual prior is conditioned on the *other* domain's shared code expressed in its own
space, which is exactly what exists at translation time. An unpaired example of A costs

.. math::

    λ_1 [-\log p(s_A)] + λ_2\,\mathrm{KL}(q(r_A|x_A) \| p_A(r_A|s_A)) + λ_4\, \ell_A(x_A | s_A, r_A)
      + λ_{b,A}\, \ell_A\big(x_A \mid f^{-1}(s_B(\hat x_B)), r_A\big)

(self-conditioned), and B mirrors it. The last term is back-translation (``weights.back_a``,
off by default): :math:`\hat x_B` is :math:`x_A` translated to B (no gradient), and
:math:`x_A` must be rebuilt from the partner's shared code carried back, a posterior sample
:math:`s_B(\hat x_B)` like every code in training (not the mean). With the fixed-σ posterior
(the default) the KL terms are computed as :math:`-\log p(r|c)` of the posterior sample, the
KL less the posterior's constant entropy (:class:`~flowbridge.config.LossWeights`).

The adversarial term (:mod:`flowbridge.adversarial`) is there for each domain X whose
:meth:`~flowbridge.Domain.build_discriminator` gives a critic :math:`D_X`, when
:math:`λ_G` (``weights.adversarial``) is > 0: :math:`\hat x_X` is X decoded from the partner's
shared code carried over by f, :math:`c_X` (``adversarial_on = "cross"``), or from its own
latent, :math:`c_X = s_X` (``"own"``), or both. The critics are trained on the same paired
batch by their own hinge loss, reported as ``critic`` and kept out of ``total``; neither
player's loss has a gradient for the other's parameters.

Translation A → B with K samples: :math:`c = f(\bar s_A)` (the posterior mean),
:math:`r_k \sim p_B(r | c)` at temperature τ, :math:`x_k = \mathrm{dec}_B(c, r_k)`; all N×K
latents go through the prior and the decoder as one batch. With M candidates per sample
(``candidates``), each :math:`x_k` is the one of M such draws that the model reads back as
most consistent with its input: the candidate's shared code carried back,
:math:`f^{-1}(\bar s_B(x_{k,j}))`, next to the input's own residual :math:`\bar r_A`,
rebuilds the input best,

.. math:: x_k = \operatorname*{arg\,min}_{j \le M}\;
          \ell_A\big(x_A \mid f^{-1}(\bar s_B(x_{k,j})), \bar r_A\big).

References:
    Mahajan, Gurevych, Roth. "Latent Normalizing Flows for Many-to-Many Cross-Domain
    Mappings." ICLR 2020.
"""

from __future__ import annotations

import contextlib
import inspect
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from einops import rearrange, reduce, repeat
from torch import nn

from .adversarial import discriminator_hinge_loss, frozen_scores, generator_hinge_loss
from .checks import check_positive_int, noted, shapes_of
from .config import BridgeConfig, LossWeights
from .contrastive import density_nce, info_nce
from .domain import Domain, EncoderOutput, LatentSpec
from .flows import (
    RESIDUAL_PRIOR_OPTIONS,
    SharedBijection,
    build_residual_prior,
    build_shared_prior,
)
from .posterior import PosteriorSample, sample_posterior

__all__ = ["Bridge"]

_SIDES = ("a", "b")


def _row_chunks(rows: int, size: int) -> list[slice]:
    """``range(rows)`` cut into consecutive slices of at most ``size`` rows
    (:attr:`Bridge.generate_batch`, checked here as it may be set at any time)."""
    size = check_positive_int(size, "Bridge.generate_batch")
    return [slice(start, min(start + size, rows)) for start in range(0, rows, size)]


def _other(side: str) -> str:
    return "b" if side == "a" else "a"


class Bridge(nn.Module):
    """LNFMM between two domains.

    Args:
        domain_a: the domain on the input side of f (``f: A -> B``).
        domain_b: the other domain.
        config: model settings; defaults to :class:`BridgeConfig()`.

    Domains are referred to by name (``"image"``, ``"text"``) or, when both have the same
    name, by side (``"a"``, ``"b"``).

    Example:
        >>> text_domain.fit(train_captions)  # its vocabulary sizes the text networks
        >>> bridge = Bridge(image_domain, text_domain, BridgeConfig(shared_features=16))
        >>> terms = bridge.loss(x_a=images, x_b=captions)       # paired batch
        >>> terms["total"].backward()
        >>> captions = bridge.translate(images, source="image", samples=10)  # [N][10]

    With ``weights.adversarial > 0`` the domains' critics live in :attr:`discriminators`;
    train them with their own optimiser on ``terms["critic"]`` and the rest of the model on
    :meth:`generator_parameters` with ``terms["total"]``.
    """

    #: The most latents a domain decodes (or, for ``candidates``, encodes back) at once in
    #: :meth:`translate`, :meth:`reconstruct` and :meth:`sample_joint`: ``samples ×
    #: candidates`` outputs per input are made in batches of this many rows, so that a large
    #: request does not hold every decoder activation at once. Beyond this many rows the
    #: outputs are those of one batch to float rounding (a matrix product of another size
    #: may round its last bits apart), except where a domain draws random numbers while
    #: decoding (text's word sampling): it draws them batch by batch. Lower it on an
    #: instance for a large decoder.
    generate_batch: int = 4096

    def __init__(self, domain_a: Domain, domain_b: Domain, config: BridgeConfig | None = None):
        super().__init__()
        for side, domain in zip(_SIDES, (domain_a, domain_b), strict=True):
            if not isinstance(domain, Domain):
                raise TypeError(
                    f"domain_{side} must be a flowbridge.Domain instance, got "
                    f"{type(domain).__name__}"
                )
        self.config = config = config or BridgeConfig()
        self.domains = {"a": domain_a, "b": domain_b}
        d_s = config.shared_features
        self.specs: dict[str, LatentSpec] = {}
        for side, configured in (("a", config.residual_a), ("b", config.residual_b)):
            domain = self.domains[side]
            residual = 0 if config.residual_prior == "none" else configured
            if residual is None:
                residual = domain.default_residual_features
            self.specs[side] = LatentSpec(d_s, residual, config.posterior == "learned")
        self.encoders = nn.ModuleDict(
            {side: self.domains[side].build_encoder(self.specs[side]) for side in _SIDES}
        )
        self.decoders = nn.ModuleDict(
            {side: self.domains[side].build_decoder(self.specs[side]) for side in _SIDES}
        )
        self.shared_map = SharedBijection(
            d_s, config.shared_steps, config.shared_hidden, coupling=config.shared_map
        )
        self.shared_prior = build_shared_prior(
            config.shared_prior,
            d_s,
            steps=config.residual_steps,
            hidden_features=config.residual_hidden,
            scale=config.coupling_scale,
        )
        self.priors = nn.ModuleDict()
        for side in _SIDES:
            kind = config.residual_prior if self.specs[side].residual else "none"
            options = dict(
                steps=config.residual_steps,
                hidden_features=getattr(config, f"residual_hidden_{side}")
                or config.residual_hidden,
                base_scale=config.base_scale,
                scale=config.coupling_scale,
                components=config.residual_components,
            )
            # The config holds every option for any kind; the builder refuses unused ones.
            used = {key: options[key] for key in RESIDUAL_PRIOR_OPTIONS[kind]}
            self.priors[side] = build_residual_prior(kind, self.specs[side].residual, d_s, **used)
        self.discriminators = nn.ModuleDict()
        for side in _SIDES:
            critic = self.domains[side].build_discriminator(self.specs[side])
            if critic is not None:
                self._check_critic(critic, side)
                self.discriminators[side] = critic
        if config.weights.adversarial and not len(self.discriminators):
            raise ValueError(
                f"weights.adversarial = {config.weights.adversarial} but neither domain "
                f"({domain_a.name!r}, {domain_b.name!r}) builds a discriminator; turn one on "
                f"(image: adversarial = true in its options) or set weights.adversarial = 0"
            )

    def _check_critic(self, critic: Any, side: str) -> None:
        domain = self.domains[side]
        if not isinstance(critic, nn.Module):
            raise TypeError(
                f"domain {domain.name!r}: build_discriminator must return an nn.Module or "
                f"None, got {type(critic).__name__}"
            )
        if self.config.weights.adversarial and (
            type(domain).output_to_batch is Domain.output_to_batch
        ):
            raise TypeError(
                f"domain {domain.name!r} builds a discriminator but does not implement "
                f"output_to_batch(output), which turns decoder output into the critic's input; "
                f"implement it or set weights.adversarial = 0"
            )

    def generator_parameters(self) -> list[nn.Parameter]:
        """Every parameter but the discriminators': what ``terms["total"]`` trains."""
        return [p for _, p in self.named_generator_parameters()]

    def named_generator_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """:meth:`generator_parameters` with their names (``"decoders.a.blocks.0..."``)."""
        critics = {id(p) for p in self.discriminators.parameters()}
        return [(name, p) for name, p in self.named_parameters() if id(p) not in critics]

    # -- names and devices --------------------------------------------------------------
    def side(self, domain: str) -> str:
        """``"a"`` or ``"b"`` for a domain name (or a side given as ``"a"``/``"b"``)."""
        names = {self.domains[s].name: s for s in _SIDES}
        if domain in names and len(names) == 2:
            return names[domain]
        if domain in _SIDES:
            return domain
        if domain in names:
            raise ValueError(
                f"both sides of this bridge are {domain!r} domains, so the name does not say "
                f"which one; give the side instead: 'a' or 'b'"
            )
        raise ValueError(
            f"unknown domain {domain!r}; this bridge maps {self.domains['a'].name!r} (a) "
            f"<-> {self.domains['b'].name!r} (b)"
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The model's floating dtype, which floating batches are computed in."""
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    def _batch(self, x: Any, side: str) -> torch.Tensor:
        """A batch tensor (checked by the domain's ``check_batch``), a list of items or a
        numpy array of items (collated by the domain), on the model's device; a floating
        batch in the model's floating dtype (a float64 batch of a float32 model is
        computed in float32, as ``collate`` would have made it)."""
        domain = self.domains[side]
        if isinstance(x, torch.Tensor):
            if x.dim() > 0 and x.shape[0] == 0:
                raise ValueError(f"expected a batch of {domain.name} items, got 0 rows")
            x = domain.check_batch(x)
        else:
            if isinstance(x, np.ndarray):
                x = list(x)  # rows are items, as in a PairedSplit built from an array
            listed = isinstance(x, Sequence) and not isinstance(x, str)
            if not listed or len(x) == 0:
                got = f"an empty {type(x).__name__}" if listed else type(x).__name__
                raise TypeError(
                    f"expected a batch tensor or a non-empty list of {domain.name} items, got {got}"
                )
            x = domain.collate(list(x))
        dtype = self.dtype if x.is_floating_point() else None
        return x.to(device=self.device, dtype=dtype)

    # -- latents --------------------------------------------------------------------------
    def encode(self, x: Any, domain: str) -> EncoderOutput:
        """Posterior means ``shared [batch, d_s]``, ``residual [batch, d_r]`` (+ log-variance).

        Computed as :meth:`translate` computes them: in eval mode (no dropout, the same codes
        as the saved model gives) and without gradients.
        """
        side = self.side(domain)
        with self._evaluating():
            return self._encode(self._batch(x, side), side)

    def _encode(self, x: torch.Tensor, side: str) -> EncoderOutput:
        """:meth:`encode` of a batch already made by :meth:`_batch`."""
        with noted(
            lambda: (
                f"in the {self.domains[side].name!r} domain's encoder (side {side}) of x "
                f"{shapes_of(x)}"
            )
        ):
            encoded = self.encoders[side](x)
        self._check_encoded(encoded, side, x.shape[0])
        return encoded

    def _check_encoded(self, encoded: Any, side: str, batch: int) -> None:
        name, spec = self.domains[side].name, self.specs[side]
        if not isinstance(encoded, EncoderOutput):
            raise TypeError(
                f"the {name!r} encoder must return flowbridge.EncoderOutput, "
                f"got {type(encoded).__name__}"
            )
        expected = {"shared": spec.shared, "residual": spec.residual}
        if spec.learned_variance and encoded.log_var is None:
            raise ValueError(
                f"the {name!r} encoder (side {side}) returned no log-variance "
                f"(EncoderOutput.log_var is None), but posterior 'learned' needs one: return "
                f"log_var of shape [{batch}, {spec.total}] when spec.learned_variance is true "
                f"(EncoderOutput.from_flat does)"
            )
        if encoded.log_var is not None:  # checked even where a fixed posterior leaves it unused
            expected["log_var"] = spec.total
        for part, size in expected.items():
            shape = tuple(getattr(encoded, part).shape)
            if shape != (batch, size):
                raise ValueError(
                    f"the {name!r} encoder returned {part} of shape {list(shape)}, "
                    f"expected [{batch}, {size}]"
                )

    def map_shared(self, shared: torch.Tensor, source: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Carry a shared code of domain ``source`` to the other domain's space: f from A,
        f⁻¹ from B.

        Returns the mapped code ``[batch, d_s]`` and ``log|det J| [batch]`` of that map.
        """
        return self._map_shared(shared, self.side(source))

    def _map_shared(self, shared: torch.Tensor, side: str) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`map_shared` from a side (``"a"``/``"b"``), not a domain name: the internals
        pass sides, which a domain named ``"b"`` on side a would make :meth:`side` misread."""
        if side == "a":
            return self.shared_map(shared)
        return self.shared_map.inverse(shared)

    # -- loss -------------------------------------------------------------------------------
    def loss(
        self,
        x_a: Any = None,
        x_b: Any = None,
        paired: bool = True,
        weights: LossWeights | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss terms of a batch, each averaged over the batch, plus ``"total"``.

        ``x_a`` and ``x_b`` (items or batch tensors, checked as :meth:`translate` checks
        them; :meth:`batch_loss` skips that for batches ``collate`` made) together with
        ``paired=True`` form a paired batch (row i of one is the partner of row i of the
        other). A single batch, or both with ``paired=False``,
        gives the unpaired (semi-supervised) terms. Besides the weighted terms (see
        :class:`~flowbridge.config.LossWeights`) the dict reports the residual prior terms in
        bits per dimension (``prior_a_bpd``, ``prior_b_bpd``; with the fixed posterior, the
        KL less a constant: :class:`~flowbridge.config.LossWeights` says which). ``weights``
        total the terms instead of ``config.weights`` (a training schedule's,
        :mod:`flowbridge.training.schedule`); which terms are computed still follows
        ``config.weights``.

        With the adversarial term on, a paired batch also gives ``adversarial_<side>`` (each
        side's part of ``adversarial``) and the critics' loss, ``critic_<side>`` and their sum
        ``critic`` (not in ``total``; its gradient reaches the discriminators only).
        """
        if x_a is None and x_b is None:
            raise ValueError("loss() needs x_a, x_b or both")
        a, b = (None if x is None else self._batch(x, side) for x, side in ((x_a, "a"), (x_b, "b")))
        return self.batch_loss(a, b, paired, weights)

    def batch_loss(
        self,
        a: torch.Tensor | None,
        b: torch.Tensor | None,
        paired: bool = True,
        weights: LossWeights | None = None,
    ) -> dict[str, torch.Tensor]:
        """:meth:`loss` of batches as the domains' ``collate`` made them, on the model's
        device, without the checks :meth:`loss` makes (the trainer's batches; a 64-image
        batch's check costs ~3 ms of a ~90 ms step)."""
        if paired and a is not None and b is not None:
            if a.shape[0] != b.shape[0]:
                raise ValueError(
                    f"a paired batch needs as many a-rows as b-rows, got {a.shape[0]} and "
                    f"{b.shape[0]}; pass paired=False for unpaired batches"
                )
            return self._weigh(*self._paired_terms(a, b), weights)
        terms = {}
        for side, x in (("a", a), ("b", b)):
            if x is not None:
                for key, value in self._unpaired_terms(x, side).items():
                    terms[key] = terms.get(key, 0) + value
        return self._weigh(terms, {}, weights)

    def _posterior(self, side: str, x: torch.Tensor) -> PosteriorSample:
        encoded = self._encode(x, side)
        return sample_posterior(encoded, self.config.posterior, self.config.posterior_noise)

    def _shared_nll(self, q: PosteriorSample, side: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``-log p(s)`` of a shared code under the prior in its own space (+ log q if learned).

        Returns the term ``[batch]`` and the code expressed in B's space.
        """
        if side == "a":
            in_b, logabsdet = self.shared_map(q.shared)
            nll = -(self.shared_prior.log_prob(in_b) + logabsdet)
        else:
            in_b = q.shared
            nll = -self.shared_prior.log_prob(in_b)
        if q.log_q_shared is not None:
            nll = nll + q.log_q_shared
        return nll, in_b

    def _kl(self, side: str, q: PosteriorSample, context: torch.Tensor) -> torch.Tensor:
        log_p = self.priors[side].log_prob(q.residual, context)
        return -log_p if q.log_q_residual is None else q.log_q_residual - log_p

    def _rec(self, side: str, shared, residual, x, term: str) -> torch.Tensor:
        """``side``'s loss of ``x`` decoded from ``shared`` and ``residual``, per sample;
        ``term`` names what it is computed for, in an error."""
        output = self._decode(side, shared, residual, x, term)
        return self._reconstruction_loss(side, output, x, term)

    def _decode(self, side: str, shared, residual, x, term: str) -> Any:
        """``side``'s decoder output for a latent (``x`` for teacher forcing)."""
        with noted(
            lambda: (
                f"in the {self.domains[side].name!r} domain's decoder (side {side}, "
                f"computing {term}) of shared {shapes_of(shared)}, residual {shapes_of(residual)} "
                f"and x {shapes_of(x)}"
            )
        ):
            return self.decoders[side](shared, residual, x)

    def _reconstruction_loss(
        self, side: str, output: Any, x: torch.Tensor, term: str
    ) -> torch.Tensor:
        """The domain's loss of ``output`` against ``x``, checked to be one per sample
        ``[batch]``: a scalar would break the per-sample terms, and a per-element loss would
        silently reweigh reconstruction against the KL terms. ``term`` names what it is
        computed for, in an error."""
        with noted(
            lambda: (
                f"in the {self.domains[side].name!r} domain's reconstruction_loss (side "
                f"{side}, computing {term}) of decoder output {shapes_of(output)} against x "
                f"{shapes_of(x)}"
            )
        ):
            loss = self.domains[side].reconstruction_loss(output, x)
        if not isinstance(loss, torch.Tensor) or tuple(loss.shape) != (x.shape[0],):
            got = list(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(
                f"the {self.domains[side].name!r} domain's reconstruction_loss must return one "
                f"loss per sample, shape [{x.shape[0]}], got {got}; sum it over every dimension "
                f"but the batch's"
            )
        return loss

    def _critic(self, side: str) -> nn.Module | None:
        """The discriminator of ``side`` when the adversarial term is on, else ``None``."""
        if self.config.weights.adversarial and side in self.discriminators:
            return self.discriminators[side]
        return None

    def discriminator_loss(
        self, domain: str, real: torch.Tensor, fake: torch.Tensor, shared: torch.Tensor
    ) -> torch.Tensor:
        """The hinge loss of ``domain``'s discriminator on real and generated pairs ``[batch]``.

        Args:
            domain: the domain (or side) whose discriminator is trained.
            real: real batch ``[batch, ...]``.
            fake: generated batch of the same shape (detached here: the loss trains the
                critic only).
            shared: codes ``[batch, d_s]`` both are scored for (detached here too).
        """
        return self._discriminator_loss(self.side(domain), real, fake, shared)

    def _discriminator_loss(
        self, side: str, real: torch.Tensor, fake: torch.Tensor, shared: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`discriminator_loss` of a side, not a domain name (see :meth:`_map_shared`)."""
        if side not in self.discriminators:
            raise ValueError(
                f"domain {self.domains[side].name!r} has no discriminator: its "
                f"build_discriminator returned None"
            )
        shared = shared.detach()
        # One call on real and fake together: one pass (and one spectral-norm power
        # iteration) instead of two; critic scores are per sample.
        scores = self.discriminators[side](
            torch.cat((real, fake.detach())), torch.cat((shared, shared))
        )
        return discriminator_hinge_loss(*scores.chunk(2))

    def _decoded_terms(
        self, side: str, q: PosteriorSample, carried: torch.Tensor, x: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Reconstruction of ``x`` from its own shared code and, when needed, from the one
        carried over from the other domain (``carried``), plus the adversarial terms on what
        was decoded. Returns weighted terms and reported ones, per sample."""
        weights, on = self.config.weights, self.config.adversarial_on
        critic = self._critic(side)
        codes = [q.shared]
        crossing = weights.cross or weights.cross_a or weights.cross_b
        if crossing or (critic is not None and on != "own"):
            codes.append(carried)
        # One decoder call on the stacked batch: one large call is cheaper than two, and
        # domain losses are per sample, so the parts do not interact.
        k = len(codes)
        shared, targets = torch.cat(codes), torch.cat([x] * k)
        term = f"rec_{side}" + (f" and cross_{side}, stacked" if k == 2 else "")
        output = self._decode(side, shared, torch.cat([q.residual] * k), targets, term)
        losses = self._reconstruction_loss(side, output, targets, term).chunk(k)
        terms = {f"rec_{side}": losses[0]}
        if k == 2:
            terms[f"cross_{side}"] = losses[1]
        if critic is None:
            return terms, {}
        n = x.shape[0]
        rows = {"own": slice(0, n), "cross": slice(n, 2 * n), "both": slice(0, 2 * n)}[on]
        fake = self.domains[side].output_to_batch(output)[rows]
        shared, real = shared[rows].detach(), targets[rows]
        # Scored for its code detached: the encoders may not move a code to please the critic.
        generator = generator_hinge_loss(frozen_scores(critic, fake, shared))
        terms["adversarial"] = reduce(generator, "(k n) -> n", "mean", n=n)
        reports = {
            f"adversarial_{side}": terms["adversarial"].detach(),
            f"critic_{side}": self._discriminator_loss(side, real, fake, shared),
        }
        return terms, reports

    def _paired_terms(self, x_a, x_b) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        qa, qb = self._posterior("a", x_a), self._posterior("b", x_b)
        # a_in_b = f(s_A), b_in_a = f⁻¹(s_B): each side's code carried into the other's space.
        nll_a, a_in_b = self._shared_nll(qa, "a")
        nll_b, _ = self._shared_nll(qb, "b")
        b_in_a, _ = self._map_shared(qb.shared, "b")
        terms = {
            "shared": nll_a + nll_b,
            "prior_a": self._kl("a", qa, b_in_a),
            "prior_b": self._kl("b", qb, a_in_b),
            "align": (a_in_b - qb.shared).square().sum(dim=1),
        }
        if self.config.weights.contrastive:
            terms["contrastive"] = info_nce(a_in_b, qb.shared, self.config.contrastive_temperature)
        for side, q, context in (("a", qa, b_in_a), ("b", qb, a_in_b)):
            if getattr(self.config.weights, f"prior_nce_{side}") and self.specs[side].residual:
                # Contexts detached: the term shapes the residuals and their prior, not the
                # shared codes (the contrastive term's business).
                terms[f"prior_nce_{side}"] = density_nce(
                    self.priors[side].log_prob,
                    q.residual,
                    context.detach(),
                    self.config.prior_nce_negatives,
                )
        reports = {}
        for side, q, carried, x in (("a", qa, b_in_a, x_a), ("b", qb, a_in_b, x_b)):
            decoded, reported = self._decoded_terms(side, q, carried, x)
            for key, value in decoded.items():
                terms[key] = terms[key] + value if key in terms else value
            reports.update(reported)
        # Weighted cross + cross_<side> in total: "cross" is their sum, each side alone.
        crosses = [terms[key] for key in ("cross_a", "cross_b") if key in terms]
        if crosses:
            terms["cross"] = sum(crosses)
        if reports:
            reports["critic"] = sum(v for k, v in reports.items() if k.startswith("critic_"))
        mean = {key: value.mean() for key, value in terms.items()}
        return mean, {key: value.mean() for key, value in reports.items()}

    def _unpaired_terms(self, x, side) -> dict[str, torch.Tensor]:
        q = self._posterior(side, x)
        shared_nll, _ = self._shared_nll(q, side)
        terms = {
            "shared": shared_nll,
            f"prior_{side}": self._kl(side, q, q.shared),
            f"rec_{side}": self._rec(side, q.shared, q.residual, x, f"rec_{side}"),
        }
        if getattr(self.config.weights, f"back_{side}"):
            terms[f"back_{side}"] = self._back_translation(side, q, x)
        return {key: value.mean() for key, value in terms.items()}

    def _back_translation(self, side: str, q: PosteriorSample, x: torch.Tensor) -> torch.Tensor:
        """NLL of ``x`` decoded from the shared code of its own translation, carried back.

        The partner is generated from ``x``'s (sampled) shared code the way :meth:`translate`
        generates (eval mode, no gradient: it is data here, not a path for gradients); then
        ``x`` is rebuilt from the partner's encoded shared code (a posterior sample, noise
        included, as in every training term) mapped into ``side``'s space, with ``x``'s own
        residual. Per sample, ``[batch]``.
        """
        other = _other(side)
        with self._evaluating():
            carried, residual = self._translation_latents(q.shared, side)
            partner = self._generate(other, carried, residual, None, {})
        partner_q = self._posterior(other, self._batch(partner, other))
        carried_back, _ = self._map_shared(partner_q.shared, other)
        return self._rec(side, carried_back, q.residual, x, f"back_{side}")

    def _weigh(
        self,
        terms: dict[str, torch.Tensor],
        reports: dict[str, torch.Tensor],
        weights: LossWeights | None = None,
    ) -> dict[str, torch.Tensor]:
        """``terms`` plus ``reports`` (outside the total) and ``"total"``, their sum weighted by
        ``weights`` (``config.weights`` if None)."""
        weights = vars(self.config.weights if weights is None else weights)
        total = sum(weights[key] * value for key, value in terms.items())
        terms.update(reports)
        for side in _SIDES:
            d_r = self.specs[side].residual
            if f"prior_{side}" in terms and d_r:
                terms[f"prior_{side}_bpd"] = terms[f"prior_{side}"].detach() / (d_r * math.log(2))
        terms["total"] = total
        return terms

    # -- generation ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _evaluating(self):
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def _translation_latents(
        self,
        shared: torch.Tensor,
        side: str,
        samples: int = 1,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        component_temperature: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``side``'s shared codes ``[N, d_s]`` carried into the other domain, and K residuals
        from its prior given them: ``[N * K, d_s]``, ``[N * K, d_r]`` (rows ``n * K + k``)."""
        carried, _ = self._map_shared(shared, side)
        residual = self.priors[_other(side)].sample(
            samples,
            carried,  # the other side's prior is conditioned on the carried code
            temperature=temperature,
            generator=generator,
            component_temperature=component_temperature,
        )
        return (
            repeat(carried, "n d -> (n k) d", k=samples),
            rearrange(residual, "n k d -> (n k) d"),
        )

    def translate(
        self,
        x: Any,
        source: str,
        target: str | None = None,
        samples: int = 1,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        component_temperature: float | None = None,
        candidates: int = 1,
        **generate_options: Any,
    ) -> list[list]:
        """Translate N inputs into K outputs each: ``result[n][k]`` is sample k for input n.

        Args:
            x: a list (or numpy array) of items of the ``source`` domain, or a batch tensor
                as the domain's ``collate`` makes it (the model's input, not raw data), which
                its ``check_batch`` checks.
            source: the input's domain; ``target`` (optional) must be the other one.
            samples: K, residual samples per input.
            temperature: τ, scales the residual prior's base noise (below 1: more alike,
                more accurate samples); over a mixture base it also tempers the weights.
            generator: seeds the residual noise (and the target domain's own draws, such as
                text's word sampling) for reproducible outputs; on any device.
            component_temperature: τc, tempers only the choice of the mixture component of a
                residual prior over a Gaussian mixture (``model.residual_components`` > 1):
                its weights π become π^(1/τc²). ``None``: τc = τ. With τ < 1 and τc = 1 every
                mode keeps its share and only the draws within one come nearer its centre.
                A target prior without a mixture refuses it.
            candidates: M, draws per sample: each output is the one of M whose shared code,
                encoded and carried back, rebuilds the input best with the input's own
                residual (the source domain's reconstruction loss; see the module docstring).
                A draw that contradicts its input (a colour or shape the caption did not ask
                for) rebuilds it worse, so M > 1 trades a little diversity for accuracy, at M
                times the cost of generating. 1 (the default): every draw is kept, as without
                the option, bit for bit.
            **generate_options: passed to the target domain's ``generate`` (text: ``method``,
                ``beam_size``, ``word_temperature``...).
        """
        side = self.side(source)
        target_side = _other(side)
        if target is not None and self.side(target) != target_side:
            names = {s: self.domains[s].name for s in _SIDES}
            raise ValueError(
                f"target {target!r} must be the other domain than source {source!r}: this "
                f"bridge maps {names['a']!r} (a) <-> {names['b']!r} (b), so the target of "
                f"{source!r} is {names[target_side]!r} (or leave target out)"
            )
        check_positive_int(samples, "samples")
        check_positive_int(candidates, "candidates")
        with self._evaluating():
            x = self._batch(x, side)
            own = self._encode(x, side)
            shared, residual = self._translation_latents(
                own.shared,
                side,
                samples * candidates,
                temperature,
                generator,
                component_temperature,
            )
            items = self._generate(target_side, shared, residual, generator, generate_options)
            if candidates > 1:
                items = self._most_consistent(x, own.residual, side, items, candidates)
        return [list(items[n * samples : (n + 1) * samples]) for n in range(len(items) // samples)]

    def _most_consistent(
        self, x: torch.Tensor, residual: torch.Tensor, side: str, items: list, candidates: int
    ) -> list:
        """Of each run of ``candidates`` consecutive ``items`` (generated from the rows of the
        ``side`` batch ``x``, the same number per row), the one whose encoded shared code,
        carried back to ``side``, rebuilds its input best next to the input's own
        posterior-mean ``residual``."""
        target = _other(side)
        row = torch.arange(len(items), device=self.device) // (len(items) // x.shape[0])
        losses = []
        for rows in _row_chunks(len(items), self.generate_batch):
            encoded = self._encode(self._batch(items[rows], target), target)
            carried, _ = self._map_shared(encoded.shared, target)
            chosen = row[rows]
            losses.append(
                self._rec(side, carried, residual[chosen], x[chosen], "the choice among candidates")
            )
        loss = torch.cat(losses)
        best = rearrange(loss, "(n m) -> n m", m=candidates).argmin(dim=1).tolist()
        return [items[i * candidates + j] for i, j in enumerate(best)]

    def reconstruct(self, x: Any, domain: str, **generate_options: Any) -> list:
        """Decode each input from its own posterior-mean latent."""
        side = self.side(domain)
        with self._evaluating():
            encoded = self._encode(self._batch(x, side), side)
            return self._generate(side, encoded.shared, encoded.residual, None, generate_options)

    def sample_joint(
        self,
        n: int,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        component_temperature: float | None = None,
        **generate_options: Any,
    ) -> tuple[list, list]:
        """Generate ``n`` new pairs: :math:`s_B \\sim p(s)`, :math:`s_A = f^{-1}(s_B)`, each
        residual from its prior given its shared code, then both decoders.

        Needs a proper shared prior (``shared_prior = "gaussian"`` or ``"flow"``). τ tempers
        every prior; ``component_temperature`` the residual priors' mixtures (as in
        :meth:`translate`; both residual priors must have one).
        """
        check_positive_int(n, "n")
        if not self.shared_prior.proper:
            raise ValueError(
                f"sample_joint needs a proper shared prior; this bridge uses "
                f"{self.config.shared_prior!r}. Train with shared_prior = 'gaussian' or 'flow'."
            )
        with self._evaluating():
            shared_b = self.shared_prior.sample(n, temperature=temperature, generator=generator)
            shared_a, _ = self.shared_map.inverse(shared_b)
            outputs = []
            for side, shared in (("a", shared_a), ("b", shared_b)):
                residual = self.priors[side].sample(
                    1,
                    shared,
                    temperature=temperature,
                    generator=generator,
                    component_temperature=component_temperature,
                )[:, 0]
                outputs.append(self._generate(side, shared, residual, generator, generate_options))
        return outputs[0], outputs[1]

    def _generate(
        self,
        side: str,
        shared: torch.Tensor,
        residual: torch.Tensor,
        generator: torch.Generator | None,
        options: dict[str, Any],
    ) -> list:
        """``side``'s decoded items, one per row of the latents. A domain whose decoding draws
        random numbers (text's word sampling) takes a ``generator`` keyword: it gets the one
        that drew the latents, so one seed fixes the whole output.

        Raises:
            ValueError: the domain's ``generate`` made more or fewer items than latents (the
                outputs would be cut into the wrong samples, or some silently lost).
        """
        domain = self.domains[side]
        if generator is not None and "generator" in inspect.signature(domain.generate).parameters:
            options = {**options, "generator": generator}
        items = []
        for rows in _row_chunks(shared.shape[0], self.generate_batch):
            part = (shared[rows], residual[rows])
            with noted(
                lambda part=part: (
                    f"in the {domain.name!r} domain's generate (side {side}) of shared "
                    f"{shapes_of(part[0])} and residual {shapes_of(part[1])}"
                )
            ):
                made = domain.generate(self.decoders[side], *part, **options)
            if len(made) != part[0].shape[0]:
                raise ValueError(
                    f"the {domain.name!r} domain's generate made {len(made)} items from "
                    f"{part[0].shape[0]} latents; it must return one item per latent row"
                )
            items.extend(made)
        return items

    def extra_repr(self) -> str:
        a, b = self.domains["a"], self.domains["b"]
        return (
            f"{a.name!r} (residual {self.specs['a'].residual}) <-> {b.name!r} (residual "
            f"{self.specs['b'].residual}), shared {self.config.shared_features}"
        )

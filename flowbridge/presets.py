r"""Named starting points for a run configuration.

A preset is a partial :class:`~flowbridge.config.RunConfig` as a plain dict; a TOML file (or
``flowbridge train --preset NAME``) names one and overrides any of its settings::

    preset = "captioning"
    [data]
    dataset = "coco"

``small`` is sized for a laptop CPU: the shapes testbed model on it trains at 10.7-14.8 steps/s
on 2 CPU threads (``benchmarks/README.md``). ``captioning`` and ``text-to-image`` are the
original LNFMM settings.

Besides the run's own tables, a preset may hold ``domain_options``: option defaults for
domains *by name*, given to whichever side uses that domain (under the file's own options,
key by key). ``small`` sizes the text domain that way: the text plugin's defaults are the
original captioning model's (a 30 M-parameter bridge, ~0.9 s a step on 2 CPU threads next to
a 32×32 image domain), the preset's are the shapes testbed's (0.9 M, 0.1-0.15 s). The paper
presets place their domains on fixed sides instead, with every option spelled out.

Converting the original loss weights
------------------------------------
flowbridge's loss terms are per-sample negative log-likelihoods in **nats**, averaged over
the batch (:class:`~flowbridge.config.LossWeights`). The original code (``train.py`` of
visinf/lnfmm) scales its terms differently, so its λ values are converted before they mean
the same thing here; with the conversions below each term weighs what it weighs there, in
absolute terms too, which matters under its clipping of the gradients by value:

* **Residual priors** are in bits per dimension there,
  :math:`\mathrm{bpd} = -\log p(r|c) / (d_r \ln 2)`, so
  :math:`λ \cdot \mathrm{bpd} = \frac{λ}{d_r \ln 2} \cdot (-\log p(r|c))` and the weight
  here is :math:`λ / (d_r \ln 2)`: captioning text (:math:`d_r = 32`) 5000 → 225.42, image
  (:math:`d_r = 64`) 200 → 4.508; text-to-image 2500 → 112.71 and 10 → 0.2254.
* **Volume term** of the uniform shared prior: :math:`1000 \cdot (-\log|\det J_f|) /
  (\ln 2 \cdot 992)` with λ1 = 1, so ``shared`` = :math:`1000 / (992 \ln 2) = 1.4543`.
* **Reconstructions** are per-sample sums here (token NLL in nats, pixel L1), but not there.
  The original's token NLL is ``NLLLoss(size_average=False)``, summed over the whole batch:
  B times the per-sample mean, so the weight here is :math:`λ B`. Its image L1 is each
  sample's sum divided by the batch size, then averaged, on pixels in [−1, 1] (twice the
  [0, 1] pixels' L1): the weight here is :math:`2 λ / B`. With the original batches (B = 128
  for captioning, 63 for text-to-image): own reconstructions text λ4 = 0.6 → 76.8 and 37.8,
  image λ5 = 20 → 0.3125 (captioning) and 1 → 0.0317 (text-to-image); cross-reconstructions
  (inside the original's λ1 = 1 bracket) text 0.6 → 76.8 and 37.8, image 1.5 → 0.0234 and
  0.0476 (``cross = 0``, ``cross_a``, ``cross_b``). The image weights assume the image
  domain's ``loss = "l1"``, set below.
* The explicit alignment MSE is computed but never added in the original: ``align = 0``.

Domain **a is text, b is image**: the original's shared map goes from the text's shared space
to the image's, so f: A → B matches it and each prior keeps its original condition.

What the original does that these presets do not: gradient clipping by value is 1.0
everywhere (the original uses 5.0 for the image prior), the fixed posterior noise is 0.05 on
every dimension (the original adds 0.10 more on the text residual), and the adversarial term
(λ5_G) and the fine-tuned VGG image encoder are left to the image domain's options. The text
encoder concatenates its GRU's two directions (a Linear(2048 → 1024) head) where the original
sums them (Linear(1024 → 1024)).
"""

from __future__ import annotations

import copy
import math
from typing import Any

from .config import ConfigError

__all__ = [
    "PRESETS",
    "preset_settings",
    "bits_per_dim_weight",
    "batch_sum_weight",
    "pixel_l1_weight",
    "VOLUME_WEIGHT",
]

_SHARED = 992
_TEXT_RESIDUAL = 32
_IMAGE_RESIDUAL = 64


def bits_per_dim_weight(weight: float, features: int) -> float:
    r"""The nats-per-sample weight equal to ``weight`` on a bits-per-dim term of ``features``
    dims: :math:`λ / (d \ln 2)`."""
    return weight / (features * math.log(2))


def batch_sum_weight(weight: float, batch_size: int) -> float:
    r"""The per-sample weight equal to ``weight`` on a loss summed over a batch of
    ``batch_size`` (the original's token NLL): :math:`λ B`."""
    return weight * batch_size


def pixel_l1_weight(weight: float, batch_size: int) -> float:
    r"""The per-sample weight, on the L1 of pixels in [0, 1], equal to ``weight`` on the
    original's image L1: each sample's sum over pixels in [−1, 1] (twice as large) divided by
    the batch size ``B``: :math:`2 λ / B`."""
    return 2 * weight / batch_size


#: ``shared`` weight equal to the original's 1000 · (−log|det J_f|) / (ln 2 · 992).
VOLUME_WEIGHT = 1000 / (_SHARED * math.log(2))


def _paper(
    prior_text: float, prior_image: float, rec_image: float, image_size: int, batch: int
) -> dict[str, Any]:
    """The original LNFMM settings; its two configs differ in three λ, the image size and the
    batch its losses were summed over (``batch``; both presets train with batches of 128)."""
    return {
        "domains": {
            "a": {
                "name": "text",
                "options": {
                    "embedding": 300,
                    "hidden": 1024,
                    "decoder_hidden": 512,
                    "max_length": 40,
                    "word_dropout": 0.8,
                    "embedding_dropout": 0.5,
                },
            },
            "b": {"name": "image", "options": {"size": image_size, "loss": "l1", "channels": 3}},
        },
        "model": {
            "shared_features": _SHARED,
            "residual_a": _TEXT_RESIDUAL,
            "residual_b": _IMAGE_RESIDUAL,
            "shared_map": "additive",
            "shared_steps": 12,
            "shared_hidden": 1024,
            "shared_prior": "uniform",
            "residual_prior": "flow",
            "residual_steps": 16,
            "residual_hidden_a": 1024,
            "residual_hidden_b": 512,
            "base_scale": 0.25,
            "coupling_scale": "sigmoid",
            "posterior": "fixed",
            "posterior_noise": 0.05,
            "weights": {
                "shared": VOLUME_WEIGHT,
                "prior_a": bits_per_dim_weight(prior_text, _TEXT_RESIDUAL),
                "prior_b": bits_per_dim_weight(prior_image, _IMAGE_RESIDUAL),
                "rec_a": batch_sum_weight(0.6, batch),
                "rec_b": pixel_l1_weight(rec_image, batch),
                "cross": 0.0,
                "cross_a": batch_sum_weight(0.6, batch),
                "cross_b": pixel_l1_weight(1.5, batch),
                "align": 0.0,
            },
        },
        "train": {
            # ~300 epochs of COCO's 113k Karpathy training images at batch 128.
            "steps": 265_000,
            "batch_size": 128,
            "lr": 1e-4,
            "grad_clip": 1.0,
            "grad_clip_mode": "value",
            "seed": 149,
            "device": "auto",
            "validate_every": 5000,
            "checkpoint_every": 5000,
            "log_every": 100,
        },
    }


PRESETS: dict[str, dict[str, Any]] = {
    # Sized like a throwaway LNFMM prototype that calibrated what 2 CPU cores reach (shared 16,
    # residuals 8, 4-step flows 128 wide, batch 64, Adam 1e-3, posterior sigma 0.05; ~8 steps/s).
    # There, residual-prior weights of 0.1-0.3 next to summed-token reconstruction NLLs kept
    # captions diverse, while a weight of 1 made all 10 captions drawn for an image the same.
    "small": {
        "model": {
            "shared_features": 16,
            "residual_a": 8,
            "residual_b": 8,
            "shared_steps": 4,
            "shared_hidden": 128,
            "residual_steps": 4,
            "residual_hidden": 128,
            "posterior_noise": 0.05,
            "weights": {"prior_a": 0.2, "prior_b": 0.2},
        },
        "train": {
            "steps": 2000,
            "batch_size": 64,
            "lr": 1e-3,
            "grad_clip": 5.0,
            "grad_clip_mode": "norm",
            "device": "cpu",
            "validate_every": 250,
            "checkpoint_every": 250,
            "log_every": 25,
        },
        # The shapes testbed's text network (the calibration model's GRU encoder and LSTM
        # decoder); word dropout 0.5 kept the captions diverse there (0.3-0.5 in calibration).
        "domain_options": {
            "text": {
                "embedding": 64,
                "hidden": 128,
                "decoder_hidden": 128,
                "layers": 1,
                "word_dropout": 0.5,
                "embedding_dropout": 0.1,
            }
        },
    },
    "captioning": _paper(prior_text=5000, prior_image=200, rec_image=20, image_size=64, batch=128),
    # The original trained text-to-image with batches of 63 (21 on each of 3 GPUs).
    "text-to-image": _paper(prior_text=2500, prior_image=10, rec_image=1, image_size=256, batch=63),
}


def preset_settings(name: str) -> dict[str, Any]:
    """A copy of the preset called ``name`` (a partial run config as a plain dict).

    Raises:
        ConfigError: no preset has that name.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; presets: {sorted(PRESETS)}")
    return copy.deepcopy(PRESETS[name])

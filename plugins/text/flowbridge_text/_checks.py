"""Checks on token batches at the encoder's and decoder's entry points."""

from __future__ import annotations

import torch

from .vocabulary import BOS

__all__ = ["check_tokens"]


def check_tokens(x: object, vocab_size: int, name: str = "x") -> torch.Tensor:
    """Check that ``x`` is a collated batch: integer ``[batch, T]``, ``T >= 2``, ids in range,
    every row starting with ``<bos>``."""
    hint = "build text batches with TextDomain.collate(list_of_str)"
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of token ids, got {type(x).__name__}; {hint}"
        )
    if x.dtype == torch.bool or x.is_floating_point() or x.is_complex():
        raise TypeError(f"{name} must hold integer token ids, got dtype {x.dtype}; {hint}")
    if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] < 2:
        raise ValueError(
            f"{name} must have shape [batch >= 1, T >= 2] (<bos> ... <eos>), got {list(x.shape)}; "
            f"{hint}"
        )
    low, high = int(x.min()), int(x.max())
    if low < 0 or high >= vocab_size:
        raise ValueError(
            f"{name} holds token ids in [{low}, {high}] but the vocabulary has ids "
            f"[0, {vocab_size - 1}]; was the batch collated with another vocabulary?"
        )
    if not bool((x[:, 0] == BOS).all()):
        raise ValueError(f"every row of {name} must start with <bos> (id {BOS}); {hint}")
    return x

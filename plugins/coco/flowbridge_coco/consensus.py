r"""Consensus re-ranking (Mao et al., m-RNN, 2015): pick the candidate caption the captions of
similar training images agree with.

For a test image: take its ``k`` nearest training images by cosine similarity of image
features, pool their reference captions, and score each candidate by the sum of its ``m``
highest CIDEr-D similarities to the pool (:class:`flowbridge.metrics.CiderD`, document
frequencies from the training references). Candidates are then ranked by that score; the best
one is what the re-ranked evaluation scores. LNFMM used ``k = 60`` and ``m = 125``.

References:
    J. Mao, W. Xu, Y. Yang, J. Wang, Z. Huang, A. Yuille. Deep captioning with multimodal
    recurrent neural networks (m-RNN). ICLR 2015.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from flowbridge.checks import check_positive_int
from flowbridge.metrics import CiderD
from flowbridge.progress import progress_bar

__all__ = ["nearest_neighbours", "consensus_scores", "consensus_order"]


def nearest_neighbours(
    queries: torch.Tensor,
    keys: torch.Tensor,
    k: int,
    chunk: int = 1024,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Indices ``[q, k]`` (on the CPU) of each query's ``k`` most cosine-similar keys, most
    similar first.

    Args:
        queries: ``[q, d]`` features of the test images.
        keys: ``[n, d]`` features of the training images (same feature space).
        k: neighbours per query (at most ``n`` are returned).
        chunk: queries per similarity matrix (bounds memory at ``chunk × n``).
        device: where to compute (default: the keys' device).
    """
    check_positive_int(k, "k")
    if queries.dim() != 2 or keys.dim() != 2 or queries.shape[1] != keys.shape[1]:
        raise ValueError(
            f"queries and keys must be feature matrices [q, d] and [n, d] of one feature size, "
            f"got {list(queries.shape)} and {list(keys.shape)}"
        )
    keys = F.normalize(keys.to(device or keys.device).float(), dim=1)
    found = []
    for start in range(0, len(queries), chunk):
        part = F.normalize(queries[start : start + chunk].float().to(keys.device), dim=1)
        found.append(torch.topk(part @ keys.T, min(k, len(keys)), dim=1).indices.cpu())
    return torch.cat(found) if found else torch.empty(0, min(k, len(keys)), dtype=torch.long)


def consensus_scores(
    candidates: Sequence[str], pool: Sequence[str], cider: CiderD, m: int = 125
) -> np.ndarray:
    """Each candidate's consensus score ``[K]``: the sum of its ``m`` highest CIDEr-D
    similarities to the captions of ``pool`` (all of them when the pool is smaller)."""
    check_positive_int(m, "m")
    if not pool:
        raise ValueError("the consensus pool is empty: the neighbours have no reference captions")
    similarity = cider.similarity(candidates, pool)
    top = min(m, similarity.shape[1])
    # np.partition puts the `top` largest values last, in no particular order.
    return np.partition(similarity, -top, axis=1)[:, -top:].sum(axis=1)


def consensus_order(
    candidates: Sequence[Sequence[str]],
    neighbours: torch.Tensor,
    references: Sequence[Sequence[str]],
    cider: CiderD,
    m: int = 125,
    progress: bool = False,
) -> list[list[int]]:
    """For each input, its candidates' indices from the best consensus score to the worst
    (ties keep the sampling order).

    Args:
        candidates: ``candidates[i][j]``, sample ``j`` for test image ``i``.
        neighbours: ``[N, k]`` indices into ``references`` (:func:`nearest_neighbours`).
        references: the training images' reference captions.
        cider: the CIDEr-D scorer (document frequencies from ``references``).
        m: similarities summed per candidate.
        progress: show a progress bar.
    """
    if len(candidates) != len(neighbours):
        raise ValueError(
            f"got candidates for {len(candidates)} images but neighbours for {len(neighbours)}"
        )
    orders = []
    rows = zip(candidates, neighbours.tolist(), strict=True)
    for samples, near in progress_bar(
        iterable=rows, total=len(candidates), desc="consensus", disable=not progress
    ):
        pool = [caption for j in near for caption in references[j]]
        scores = consensus_scores(samples, pool, cider, m)
        orders.append(np.argsort(-scores, kind="stable").tolist())
    return orders

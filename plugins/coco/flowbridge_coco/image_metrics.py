r"""Feature-based scores of generated images: Fréchet distance, precision and recall.

Both compare two sets of feature vectors, of real and of generated images, from whatever
feature extractor the user supplies (FID proper uses Inception-v3 pool features; no
pretrained network can be downloaded here, so the extractor is the user's choice and the
numbers are only comparable between runs that use the same one).

* **Fréchet distance** between Gaussians fitted to the two sets (Heusel et al. 2017):

  .. math:: d^2 = \|\mu_r - \mu_g\|^2 + \operatorname{tr}\big(\Sigma_r + \Sigma_g
            - 2 (\Sigma_r^{1/2} \Sigma_g \Sigma_r^{1/2})^{1/2}\big)

  computed in float64 through symmetric eigendecompositions (the inner matrix is symmetric
  positive semi-definite, so no complex square root appears).
* **Precision and recall** (Kynkäänniemi et al. 2019): each real feature gets a ball reaching
  its ``k``-th nearest real neighbour; precision is the fraction of generated features inside
  some real ball, recall the fraction of real features inside some generated ball.

References:
    M. Heusel et al. GANs trained by a two time-scale update rule converge to a local Nash
    equilibrium. NeurIPS 2017.
    T. Kynkäänniemi et al. Improved precision and recall metric for assessing generative
    models. NeurIPS 2019.
"""

from __future__ import annotations

import torch

from flowbridge._warnings import warn
from flowbridge.checks import check_positive_int, check_vectors

__all__ = ["frechet_distance", "precision_recall", "image_feature_scores"]


def _check_pair(
    real: torch.Tensor, fake: torch.Tensor, least: int, why: str
) -> tuple[torch.Tensor, ...]:
    if not isinstance(real, torch.Tensor) or real.dim() != 2:
        raise ValueError(
            f"real features must be a tensor [n, d], got "
            f"{list(real.shape) if isinstance(real, torch.Tensor) else type(real).__name__}"
        )
    real = check_vectors(real, real.shape[1], "real features").double()
    fake = check_vectors(fake, real.shape[1], "generated features").double()
    for name, x in (("real", real), ("generated", fake)):
        if len(x) < least:
            raise ValueError(f"need at least {least} {name} feature vectors ({why}), got {len(x)}")
    return real, fake


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return vectors @ torch.diag(values.clamp(min=0).sqrt()) @ vectors.T


def _covariance(x: torch.Tensor) -> torch.Tensor:
    """Unbiased covariance ``[d, d]`` of the rows of ``x`` (torch.cov gives a scalar at d = 1)."""
    return torch.cov(x.T).reshape(x.shape[1], x.shape[1])


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Fréchet distance ``d²`` between Gaussians fitted to ``real [n, d]`` and ``fake [m, d]``
    (means and unbiased covariances; at least 2 vectors each)."""
    real, fake = _check_pair(real, fake, 2, "for a covariance")
    mu_r, mu_f = real.mean(0), fake.mean(0)
    cov_r, cov_f = _covariance(real), _covariance(fake)
    root = _psd_sqrt(cov_r)
    cross = torch.linalg.eigvalsh(root @ cov_f @ root).clamp(min=0).sqrt().sum()
    value = (mu_r - mu_f).square().sum() + cov_r.trace() + cov_f.trace() - 2 * cross
    return float(value.clamp(min=0))


def _kth_radius(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Distance of each row of ``x`` to its ``k``-th nearest other row."""
    radii = []
    for start in range(0, len(x), chunk):
        distances = torch.cdist(x[start : start + chunk], x)
        # The row itself is at distance 0 and comes first: take the (k + 1)-th smallest.
        radii.append(distances.kthvalue(k + 1, dim=1).values)
    return torch.cat(radii)


def _coverage(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int):
    inside = []
    for start in range(0, len(points), chunk):
        distances = torch.cdist(points[start : start + chunk], centres)
        inside.append((distances <= radii).any(dim=1))
    return float(torch.cat(inside).double().mean())


def precision_recall(
    real: torch.Tensor, fake: torch.Tensor, k: int = 3, chunk: int = 1024
) -> tuple[float, float]:
    """Improved precision and recall of ``fake [m, d]`` against ``real [n, d]`` with
    ``k``-nearest-neighbour balls (``k = 3`` as Kynkäänniemi et al.; each set needs more than
    ``k`` vectors)."""
    check_positive_int(k, "k")
    real, fake = _check_pair(real, fake, k + 1, f"k + 1 for k = {k} neighbours; lower k")
    precision = _coverage(fake, real, _kth_radius(real, k, chunk), chunk)
    recall = _coverage(real, fake, _kth_radius(fake, k, chunk), chunk)
    return precision, recall


def image_feature_scores(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """``{"FID": ..., "precision": ..., "recall": ..., "real": n, "generated": m}``.

    Warns where either set has no more vectors than dimensions: its covariance is then
    singular, and the distance is far from the value it converges to with more images (and
    from any published FID)."""
    precision, recall = precision_recall(real, fake, k)
    dims = real.shape[1]
    if min(len(real), len(fake)) <= dims:
        warn(
            f"FID from {len(real)} real and {len(fake)} generated feature vectors of {dims} "
            f"dims: with no more vectors than dims a covariance is singular, so the distance "
            f"is not what more images would give (published FIDs use 10,000 or more); "
            f"compare it only with runs scored on the same images"
        )
    return {
        "FID": frechet_distance(real, fake),
        "precision": precision,
        "recall": recall,
        "real": len(real),
        "generated": len(fake),
    }

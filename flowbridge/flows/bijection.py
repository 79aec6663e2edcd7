r"""The shared bijection f that carries a shared code from domain A's space to domain B's."""

from __future__ import annotations

from ..checks import check_positive_int
from .base import Chain, FlowTransform
from .coupling import AdditiveCoupling, AffineCoupling
from .elementwise import GlobalScale
from .nn import scale_activation

__all__ = ["SharedBijection", "SHARED_COUPLINGS"]

#: The couplings :class:`SharedBijection` can be built from (its ``coupling`` option).
SHARED_COUPLINGS = ("additive", "affine")


class SharedBijection(Chain):
    r"""An unconditional invertible map :math:`f: \mathbb{R}^{d_s} \to \mathbb{R}^{d_s}`.

    Each of the ``steps`` steps is

    * ``coupling="additive"`` (the original LNFMM): four NICE couplings that update the two
      halves in turn, :math:`h_2 = x_2 + t_1(x_1)`, :math:`h_1 = x_1 + t_2(h_2)`,
      :math:`y_2 = h_2 + t_3(h_1)`, :math:`y_1 = h_1 + t_4(y_2)`;
    * ``coupling="affine"``: two affine couplings (one per half);

    followed by a :class:`GlobalScale` (sigmoid(s + 5)). The original swaps the halves after
    each step; here odd steps instead update the halves in the opposite order, which is the
    same family of maps without moving data (for an even ``features``, a swap followed by a
    coupling *is* the flipped coupling, and the scales are per dimension). With additive
    couplings :math:`\log|\det J_f| = \sum_{\text{steps}} \sum_i \log\mathrm{sigmoid}(s_i + 5)`
    is the same for every input and never positive.

    The affine option uses the ``"sigmoid"`` scale by default: every factor is then at most
    ~1, so the uniform prior's :math:`-\log|\det J_f|` is bounded below and cannot be lowered
    by blowing space up (with an expanding scale it would reward exactly that).

    With ``features == 1`` there is nothing to split: the couplings are left out and f is the
    learned per-dimension scale alone (a linear map).

    Args:
        features: shared code size :math:`d_s`.
        steps: number of steps (12 in the original).
        hidden_features: width of each coupling MLP (1024 in the original).
        coupling: ``"additive"`` or ``"affine"`` (:data:`SHARED_COUPLINGS`).
        scale: name of the affine couplings' scale activation (a str, see
            :mod:`flowbridge.flows.nn`; not a standard deviation); unused by additive
            couplings.

    Shapes:
        ``forward(x [batch, d_s]) -> (f(x) [batch, d_s], log|det J_f(x)| [batch])``;
        ``inverse(y) -> (f^{-1}(y), log|det J_{f^{-1}}(y)|)``.

    Example:
        >>> import torch
        >>> f = SharedBijection(features=6, steps=2, hidden_features=16)
        >>> x = torch.randn(3, 6)
        >>> y, logabsdet = f(x)
        >>> torch.allclose(f.inverse(y)[0], x, atol=1e-5)
        True
    """

    def __init__(
        self,
        features: int,
        steps: int = 4,
        hidden_features: int = 256,
        coupling: str = "additive",
        scale: str = "sigmoid",
    ):
        check_positive_int(features, "features")
        self.steps = check_positive_int(steps, "steps")
        check_positive_int(hidden_features, "hidden_features")
        if coupling not in SHARED_COUPLINGS:
            raise ValueError(
                f"coupling must be {' or '.join(map(repr, SHARED_COUPLINGS))}, got {coupling!r}"
            )
        scale_activation(scale)  # a misspelt scale is an error even where it goes unused
        self.coupling = coupling
        layers: list[FlowTransform] = []

        def coupling_layer(flip: bool) -> FlowTransform:
            if coupling == "additive":
                return AdditiveCoupling(features, 0, hidden_features, flip=flip)
            return AffineCoupling(features, 0, hidden_features, flip=flip, scale=scale)

        pattern = (False, True, False, True) if coupling == "additive" else (False, True)
        for step in range(steps):
            odd = step % 2 == 1  # flipped odd steps stand in for the original's swap of halves
            if features > 1:
                layers += [coupling_layer(flip != odd) for flip in pattern]
            layers.append(GlobalScale(features))
        super().__init__(layers)

    def extra_repr(self) -> str:
        return f"features={self.features}, steps={self.steps}, coupling={self.coupling!r}"

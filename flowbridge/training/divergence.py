"""Stopping a run whose loss or gradient is no longer finite: the error, and its advice.

Which advice fits depends on what the run kept: nothing trained yet (the data's or a
domain's fault, not a learning rate's), no checkpoint, a checkpoint of the very step before
(a resume would replay the failing step exactly), or an earlier one to go back to with a
lower learning rate, the last finite step beside it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["NonFiniteLossError", "non_finite_error"]


class NonFiniteLossError(FloatingPointError):
    """A loss term (or the gradient) became NaN or infinite; training stopped before the update.

    Attributes:
        terms: the offending terms' names (``("gradient norm",)`` for the gradient).
        step: the step (1-based) that produced it.
        checkpoint: the run's checkpoint (``checkpoint.pt``): an earlier step, untouched, or
            the last finite one where the run had none; ``None`` if none was written.
        last_finite: where the last finite step went when ``checkpoint.pt`` keeps an
            earlier one (``checkpoint-step<N>.pt``), else ``None``.
    """

    def __init__(
        self,
        message: str,
        terms: tuple[str, ...],
        step: int,
        checkpoint: Path | None,
        last_finite: Path | None = None,
    ):
        super().__init__(message)
        self.terms, self.step, self.checkpoint = terms, step, checkpoint
        self.last_finite = last_finite


def non_finite_error(
    what: str,
    named: list[str],
    step: int,
    before: str,
    *,
    trained: int,
    last_saved: int | None,
    checkpoint: Path,
    domains: dict[str, str],
    last_finite: Path | None = None,
) -> NonFiniteLossError:
    """The error that stops a run at ``step`` for ``what`` (``named``: the terms), with the
    advice that fits.

    Args:
        before: ``"before that update "`` where the update was held back, else ``""``.
        trained: the last completed step (``step - 1``).
        last_saved: the step of the run's checkpoint, ``None`` without one.
        checkpoint: the run's checkpoint file (``checkpoint.pt``).
        domains: each side's domain name, for the terms that end in their side.
        last_finite: where the last finite step went when ``checkpoint`` keeps an earlier one.
    """
    sides = ", ".join(f"{side} = {name!r}" for side, name in domains.items())
    retune = "a lower train.lr or a train.grad_clip"
    replay = (
        f"a resume replays step {step} exactly, so from step {trained} it goes on only "
        f"once a cause in a domain or the data is fixed"
    )
    if not trained:
        # No update yet: not a learning rate's doing, but the data's or a domain's.
        advice = (
            "nothing was trained before it: look for NaN or infinite values in the data, "
            "or a domain's loss that is not finite for the untrained model"
        )
    elif last_saved is None:
        advice = f"no checkpoint was written before it. Start again with {retune}"
    elif last_saved == trained:
        advice = (
            f"the checkpoint of step {trained}, the last finite one, is {checkpoint}: "
            f"{replay}. With {retune}, start again (no earlier step was kept to go back to)"
        )
    else:
        advice = (
            f"the checkpoint of step {last_saved} is {checkpoint}: continue from it with "
            f"--resume (resume=True) and {retune}"
        )
        if last_finite is not None:
            advice += (
                f". Step {trained}, the last finite one, is in {last_finite} (load_bridge "
                f"reads it; {replay}, moved to {checkpoint.name})"
            )
    return NonFiniteLossError(
        f"{what} (sides: {sides}); training stopped {before}and {advice}",
        tuple(named),
        step,
        checkpoint if last_saved is not None else None,
        last_finite,
    )

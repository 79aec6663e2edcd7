"""Parts of the model that the loss does not reach, named after a run's first backward pass.

A parameter whose gradient is still ``None`` after ``backward`` has no path from the loss:
it will never train, silently. The usual cause is in a domain plugin: a reconstruction loss
that detaches the decoder's output (``.detach()``, ``.item()``, numpy), or a network whose
forward does not use one of its modules. The plugin contract checks
(``flowbridge.testing.check_domain``) catch it too, but a run should say so as well.
"""

from __future__ import annotations

from torch import nn

__all__ = ["untrained_parts", "untrained_warning"]


def _part(name: str) -> str:
    """The part a parameter belongs to: ``"decoders.a"`` for ``"decoders.a.net.0.weight"``,
    ``"shared_map"`` for ``"shared_map.steps.0.net.weight"``."""
    first, _, rest = name.partition(".")
    side = rest.split(".", 1)[0]
    return f"{first}.{side}" if side in ("a", "b") else first


def untrained_parts(named_parameters: list[tuple[str, nn.Parameter]]) -> dict[str, tuple[int, int]]:
    """Per part, ``(tensors without a gradient, tensors)`` for every part with at least one
    trainable parameter tensor whose ``grad`` is ``None``; in the order the parts come."""
    counts: dict[str, list[int]] = {}
    for name, parameter in named_parameters:
        if not parameter.requires_grad:
            continue
        count = counts.setdefault(_part(name), [0, 0])
        count[0] += parameter.grad is None
        count[1] += 1
    return {part: (none, total) for part, (none, total) in counts.items() if none}


def untrained_warning(parts: dict[str, tuple[int, int]], domains: dict[str, str], step: int) -> str:
    """The warning naming ``parts`` (from :func:`untrained_parts`); ``domains`` maps a side to
    its domain's name."""
    named = []
    for part, (none, total) in parts.items():
        side = part.rpartition(".")[2] if "." in part else None
        domain = f" (domain {domains[side]!r})" if side in domains else ""
        named.append(f"{part}{domain}: {none} of its {total} parameter tensors")
    return (
        f"the loss of step {step} gave no gradient to {'; '.join(named)}. The loss does not "
        f"reach them, so they do not train. If that is not meant: a domain's "
        f"reconstruction_loss, or a network's forward, that detaches what it gets (.detach(), "
        f".item(), numpy) or leaves a module unused is the usual cause "
        f"(flowbridge.testing.check_domain finds it)"
    )

"""Contract checks for domain plugins, to call from a plugin's own tests.

:func:`check_domain` builds a domain's encoder and decoder for a few latent sizes and checks
everything the bridge relies on: shapes, a finite per-sample loss that depends on its own
sample only, gradients, determinism, options and state that survive a checkpoint, generation
and writing files. A failure raises ``AssertionError`` naming the domain and the check::

    from flowbridge.testing import check_domain

    def test_contract():
        check_domain(SignalDomain(length=32))

``on_result`` hears each check's :class:`CheckResult` as it ends (passed, failed or skipped);
``flowbridge check-domain NAME`` prints them for a registered domain.

:func:`latent_specs` is a Hypothesis strategy of latent sizes, for running the checks over
many of them (it needs ``hypothesis``, part of flowbridge's ``test`` extra).
"""

from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from .checkpoint import first_line, savable_options, weights_only_copy
from .checks import noted, shapes_of
from .domain import Domain, EncoderOutput, LatentSpec
from .plugins import NAME_PATTERN, PluginError, constructor_options

__all__ = ["CHECKS", "CheckResult", "check_domain", "default_specs", "latent_specs"]

#: Every check :func:`check_domain` can run, in order.
CHECKS = (
    "name and options",
    "example_batch",
    "check_batch",
    "build",
    "encoder output",
    "reconstruction loss",
    "gradients",
    "eval determinism",
    "per-sample independence",
    "generate",
    "collate generated",
    "discriminator",
    "read_item",
    "state_dict",
    "write_items",
)


class CheckResult(NamedTuple):
    """How one check of :func:`check_domain` ended, as its ``on_result`` hears it.

    Attributes:
        check: the check's name, one of :data:`CHECKS`.
        spec: the latent spec it ran with; ``None`` for the checks that run once.
        status: ``"passed"``, ``"failed"`` or ``"skipped"`` (it does not apply).
        detail: why it failed (the raised ``AssertionError``'s message after the domain, check
            and spec it names) or why it was skipped; ``""`` when it passed.
    """

    check: str
    spec: LatentSpec | None
    status: str
    detail: str = ""


class _Checker:
    """Runs named checks; turns any failure into an AssertionError naming domain and check,
    and tells ``on_result`` how each check ended."""

    def __init__(self, domain: Domain, on_result: Callable[[CheckResult], None] | None = None):
        self.label = f"domain {getattr(domain, 'name', '?')!r} ({type(domain).__qualname__})"
        self.passed: list[str] = []
        self.on_result = on_result or (lambda result: None)

    @contextlib.contextmanager
    def __call__(self, check: str, spec: LatentSpec | None = None) -> Iterator[None]:
        where = f" with {spec}" if spec is not None else ""
        try:
            yield
        except Exception as exc:
            detail = str(exc) if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {exc}"
            # Notes say where inside the check it happened (which call, of which shapes).
            detail = " ".join([detail, *(str(note) for note in getattr(exc, "__notes__", ()))])
            self.on_result(CheckResult(check, spec, "failed", detail))
            raise AssertionError(f"{self.label} failed check {check!r}{where}: {detail}") from exc
        self.on_result(CheckResult(check, spec, "passed"))
        if check not in self.passed:
            self.passed.append(check)

    def skip(self, check: str, reason: str, spec: LatentSpec | None = None) -> None:
        """Tell ``on_result`` that ``check`` does not apply, and why."""
        self.on_result(CheckResult(check, spec, "skipped", reason))


def _expect(condition: bool, message: str) -> None:
    # Not ``assert``: the checks must also run under ``python -O``.
    if not condition:
        raise AssertionError(message)


def _expect_batch(value: object, name: str, shape: tuple[int, ...] | None = None) -> None:
    _expect(isinstance(value, torch.Tensor), f"{name} must be a tensor, got {type(value).__name__}")
    if shape is not None:
        _expect(
            tuple(value.shape) == shape,
            f"{name} must have shape {list(shape)}, got {list(value.shape)}",
        )


def _expect_finite_float(value: torch.Tensor, name: str) -> None:
    _expect(value.is_floating_point(), f"{name} must be floating point, got {value.dtype}")
    _expect(bool(torch.isfinite(value).all()), f"{name} has NaN or Inf values: {value}")


def _expect_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    # Float32 kernels may sum in another order for another batch size: allow rounding only.
    try:
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5)
    except AssertionError as exc:
        raise AssertionError(f"{what}: {exc}") from None


def _same(a: Any, b: Any) -> bool:
    """Deep equality of state: tensors by value, containers element by element."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and torch.equal(a, b)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def default_specs(domain: Domain, shared: int = 4) -> list[LatentSpec]:
    """The latent sizes :func:`check_domain` tries by default: the domain's default residual
    (3 if that is 0), a zero residual, and the default with a learned posterior variance."""
    residual = domain.default_residual_features or 3
    return [
        LatentSpec(shared, residual),
        LatentSpec(shared, 0),
        LatentSpec(shared, residual, learned_variance=True),
    ]


def _check_encoder_output(out: object, spec: LatentSpec, batch: int) -> EncoderOutput:
    _expect(
        isinstance(out, EncoderOutput),
        f"the encoder must return flowbridge.EncoderOutput(shared, residual, log_var), "
        f"got {type(out).__name__}",
    )
    _expect_batch(out.shared, "shared", (batch, spec.shared))
    _expect_batch(out.residual, "residual", (batch, spec.residual))
    _expect_finite_float(out.shared, "shared")
    _expect_finite_float(out.residual, "residual")
    if spec.learned_variance:
        _expect_batch(out.log_var, "log_var", (batch, spec.total))
        _expect_finite_float(out.log_var, "log_var")
    else:
        _expect(
            out.log_var is None,
            "log_var must be None when spec.learned_variance is false, got a "
            f"{type(out.log_var).__name__}",
        )
    return out


def _check_loss(loss: object, batch: int) -> torch.Tensor:
    _expect_batch(loss, "reconstruction_loss", (batch,))
    _expect_finite_float(loss, "reconstruction_loss")
    return loss


def _check_not_broadcast(output: object, x: torch.Tensor) -> None:
    # An elementwise loss broadcasts a decoder output that is too narrow (one column for
    # several) without an error, and the model can never rebuild its input. Only a tensor
    # output of the batch's rank is compared: a tuple may hold a per-sample scale [batch, 1]
    # on purpose, and an output of another rank (text logits) has a layout of its own.
    if not isinstance(output, torch.Tensor) or output.dim() != x.dim():
        return
    broadcast = [d for d in range(1, x.dim()) if output.shape[d] == 1 < x.shape[d]]
    _expect(
        not broadcast,
        f"the decoder output has shape {list(output.shape)} for a batch of shape "
        f"{list(x.shape)}: an elementwise loss broadcasts it over dimension "
        f"{', '.join(map(str, broadcast))} without an error; decode every element of the batch",
    )


def _check_decoder_reads(
    domain: Domain, decoder: nn.Module, out: EncoderOutput, x: torch.Tensor, spec: LatentSpec
) -> None:
    # A decoder that ignores the residual still gets gradients for every weight, yet all K
    # translations of an input come out the same; one that ignores the shared code cannot
    # translate at all.
    shared = out.shared.detach().requires_grad_()
    residual = out.residual.detach().requires_grad_()
    loss = domain.reconstruction_loss(decoder(shared, residual, x), x).sum()
    codes = {"shared code": shared, **({"residual": residual} if spec.residual else {})}
    grads = torch.autograd.grad(loss, list(codes.values()), allow_unused=True)
    for name, grad in zip(codes, grads, strict=True):
        _expect(
            grad is not None and bool(grad.abs().sum() > 0),
            f"the decoder ignores the {name}: the reconstruction loss does not change with it",
        )


def _check_loss_has_gradient(output: object, loss: torch.Tensor) -> None:
    # torch's own error on backward ("element 0 of tensors does not require grad and does not
    # have a grad_fn") says neither which part cut the graph nor that training would then
    # never move the decoder.
    if loss.requires_grad:
        return
    if isinstance(output, dict):
        parts = list(output.values())
    elif isinstance(output, (tuple, list)):
        parts = list(output)
    else:
        parts = [output]
    if any(isinstance(part, torch.Tensor) and part.requires_grad for part in parts):
        raise AssertionError(
            "the reconstruction loss does not depend on the decoder output through autograd, so "
            "no gradient reaches the decoder: reconstruction_loss cuts the output off the graph "
            "(.detach(), .item(), .tolist(), numpy or torch.no_grad()); compute the loss from "
            "the output with torch operations"
        )
    raise AssertionError(
        f"the decoder output {shapes_of(output)} has no gradient, so training could not move "
        f"the decoder: the decoder cuts it off the graph (.detach(), numpy or "
        f"torch.no_grad()); compute it with torch operations"
    )


def _check_no_batch_statistics(modules: dict[str, nn.Module]) -> None:
    # In eval mode batch norm uses its running statistics and passes the checks below; in
    # training it normalises by the batch's, so a sample's loss depends on the others (and
    # the bridge decodes several terms' reconstructions as one batch).
    for part, module in modules.items():
        found = [
            f"{name} ({type(layer).__name__})"
            for name, layer in module.named_modules()
            if isinstance(layer, nn.modules.batchnorm._BatchNorm)
        ]
        _expect(
            not found,
            f"the {part}'s {', '.join(found)} normalises by the batch's statistics in training, "
            f"so a sample's loss depends on the rest of its batch; use a per-sample "
            f"normalisation (GroupNorm, LayerNorm)",
        )


def _check_gradients(modules: dict[str, nn.Module]) -> None:
    # A parameter without a gradient is dead weight, and multi-process training (DDP) stops
    # with an error on it by default.
    for part, module in modules.items():
        missing, bad, total = [], [], 0.0
        for name, p in module.named_parameters():
            if not p.requires_grad:
                continue
            if p.grad is None:
                missing.append(name)
            elif not torch.isfinite(p.grad).all():
                bad.append(name)
            else:
                total += float(p.grad.abs().sum())
        _expect(not missing, f"no gradient reaches {part} parameters {missing}")
        _expect(not bad, f"{part} parameters {bad} have NaN or Inf gradients")
        _expect(
            total > 0 or not list(module.parameters()), f"all {part} gradients are exactly zero"
        )


def _check_model(
    domain: Domain,
    spec: LatentSpec,
    x: torch.Tensor,
    check: _Checker,
    generate_options: dict[str, Any],
    collate_generated: bool,
) -> list:
    """The checks for one latent spec; return the generated items."""
    batch = x.shape[0]
    with check("build", spec):
        encoder, decoder = domain.build_encoder(spec), domain.build_decoder(spec)
        critic = domain.build_discriminator(spec)
        parts = {"build_encoder": encoder, "build_decoder": decoder}
        if critic is not None:
            parts["build_discriminator"] = critic
        for part, module in parts.items():
            _expect(
                isinstance(module, nn.Module),
                f"{part} must return an nn.Module, got {type(module).__name__}",
            )
    # The notes give the shapes each call got, as training's errors do (Python >= 3.11).
    with check("encoder output", spec):
        with noted(lambda: f"(in the encoder, of x {shapes_of(x)})"):
            encoded = encoder(x)
        out = _check_encoder_output(encoded, spec, batch)
    with check("reconstruction loss", spec):
        with noted(
            lambda: (
                f"(in the decoder, of shared {shapes_of(out.shared)}, residual "
                f"{shapes_of(out.residual)} and x {shapes_of(x)})"
            )
        ):
            output = decoder(out.shared, out.residual, x)
        with noted(
            lambda: (
                f"(in reconstruction_loss, of decoder output {shapes_of(output)} against x "
                f"{shapes_of(x)})"
            )
        ):
            loss = _check_loss(domain.reconstruction_loss(output, x), batch)
        _check_not_broadcast(output, x)
    with check("gradients", spec):
        _check_loss_has_gradient(output, loss)
        # The log-variance enters the real loss through the KL term; stand in for it here.
        total = loss.sum() + (out.log_var.sum() if out.log_var is not None else 0)
        total.backward()
        _check_gradients({"encoder": encoder, "decoder": decoder})
        _check_decoder_reads(domain, decoder, out, x, spec)

    encoder.eval()
    decoder.eval()

    def losses(inputs: torch.Tensor) -> torch.Tensor:
        code = encoder(inputs)
        return domain.reconstruction_loss(decoder(code.shared, code.residual, inputs), inputs)

    with torch.no_grad():
        with check("eval determinism", spec):
            reference = losses(x)
            _expect(torch.equal(losses(x), reference), "two eval-mode passes gave other losses")
        with check("per-sample independence", spec):
            _check_no_batch_statistics({"encoder": encoder, "decoder": decoder})
            flipped = torch.arange(batch - 1, -1, -1)
            _expect_close(losses(x[flipped]), reference[flipped], "losses of a reversed batch")
            _expect_close(losses(x[:1]), reference[:1], "loss of the first sample alone")
        code = encoder(x)
        with check("generate", spec):
            items = domain.generate(decoder, code.shared, code.residual, **generate_options)
            _expect(isinstance(items, list), f"generate must return a list, got {type(items)}")
            _expect(len(items) == batch, f"generate made {len(items)} items from {batch} latents")
        if collate_generated:
            with check("collate generated", spec):
                _expect_batch(domain.collate(items), "collate(generate(...))")
                _expect(
                    len(domain.collate(items)) == batch,
                    "collate(generate(...)) must have one row per item",
                )
        else:
            check.skip("collate generated", "collate_generated=False", spec)
    if critic is not None:
        _check_discriminator(domain, critic, decoder, code, x, check, spec)
    else:
        check.skip("discriminator", "build_discriminator returned None (no critic)", spec)
    return items


def _check_discriminator(
    domain: Domain,
    critic: nn.Module,
    decoder: nn.Module,
    code: EncoderOutput,
    x: torch.Tensor,
    check: _Checker,
    spec: LatentSpec,
) -> None:
    with check("discriminator", spec):
        score = critic(x, code.shared)
        _expect_batch(score, "discriminator score", (x.shape[0],))
        _expect_finite_float(score, "discriminator score")
        score.sum().backward()
        _check_gradients({"discriminator": critic})
        # The generator's adversarial gradient reaches the decoder through output_to_batch.
        decoder.zero_grad(set_to_none=True)
        fake = domain.output_to_batch(decoder(code.shared, code.residual, x))
        _expect_batch(fake, "output_to_batch(decoder output)", tuple(x.shape))
        _expect_finite_float(fake, "output_to_batch(decoder output)")
        critic(fake, code.shared).sum().backward()
        _expect(
            any(p.grad is not None and bool(p.grad.any()) for p in decoder.parameters()),
            "the critic's score of output_to_batch(decoder output) has no gradient for the "
            "decoder: output_to_batch must stay differentiable (no detach, no rounding)",
        )


def _parameter_shapes(domain: Domain, spec: LatentSpec) -> dict[str, list[int]]:
    """Every encoder and decoder parameter (and buffer) of ``domain`` by name, with its shape."""
    parts = {"encoder": domain.build_encoder(spec), "decoder": domain.build_decoder(spec)}
    return {
        f"{part}.{name}": list(value.shape)
        for part, module in parts.items()
        for name, value in module.state_dict().items()
    }


def _check_rebuilt_model(domain: Domain, rebuilt: Domain, spec: LatentSpec) -> None:
    # An option that records another value than the one the domain was built with still
    # rebuilds equal options: only the model built from them, as a checkpoint would, differs.
    own, again = _parameter_shapes(domain, spec), _parameter_shapes(rebuilt, spec)
    if own == again:
        return
    differing = [
        f"{name} {own.get(name, '(none)')} != {again.get(name, '(none)')}"
        for name in sorted(own.keys() | again.keys())
        if own.get(name) != again.get(name)
    ]
    # The usual culprit keeps an option's value in an attribute of the same name too.
    suspects = [
        f"{key}={getattr(domain, key)!r} but options say {value!r}"
        for key, value in domain.options.items()
        if hasattr(domain, key) and not _same(getattr(domain, key), getattr(rebuilt, key, ...))
    ]
    raise AssertionError(
        f"type(d)(**d.options) builds another model than d ({'; '.join(differing[:3])}"
        f"{'; ...' if len(differing) > 3 else ''}): an option records another value than the "
        f"domain was built with"
        + (f" (likely {'; '.join(suspects)})" if suspects else "")
        + ", and a checkpoint would rebuild the other model"
    )


def _state_or_none(domain: Domain) -> dict[str, Any] | None:
    """A copy of the domain's state, or ``None`` where ``state_dict`` fails (the state check
    names that)."""
    try:
        return copy.deepcopy(domain.state_dict())
    except Exception:
        return None


def _check_state(
    domain: Domain, rebuilt: Domain, x: torch.Tensor, items: list, seed: int, check: _Checker
) -> None:
    with check("state_dict"):
        state = domain.state_dict()
        _expect(isinstance(state, dict), f"state_dict must return a dict, got {type(state)}")
        try:
            loaded = weights_only_copy(state)
        except Exception as exc:
            # torch's refusal spans lines of advice (weights_only=False) that do not apply.
            raise AssertionError(
                "state_dict does not load with torch.load(weights_only=True); keep to tensors, "
                f"numbers, strings, lists and dicts ({first_line(exc)})"
            ) from exc
        rebuilt.load_state_dict(loaded)
        _expect(_same(rebuilt.state_dict(), state), "load_state_dict did not restore the state")
        again = rebuilt.example_batch(x.shape[0], torch.Generator().manual_seed(seed))
        _expect(torch.equal(again, x), "the restored domain makes another example_batch")
        if items:
            _expect(
                torch.equal(rebuilt.collate(items), domain.collate(items)),
                "the restored domain collates the generated items differently",
            )


def _check_write(domain: Domain, items: list, directory: Path, check: _Checker) -> None:
    with check("write_items"):
        # Sample k of input i, as the translate command passes them.
        grid = [items[i : i + 2] for i in range(0, len(items) - 1, 2)]
        # A dot in the name: write_items adds its suffix, it does not replace the name's end
        # (Path.with_suffix would write samples.png, and "run.v1", "run.v2" to one file).
        target = directory / "samples.v1"
        written = domain.write_items(grid, target)
        _expect(isinstance(written, Path), f"write_items must return a Path, got {written!r}")
        _expect(written.is_file(), f"write_items returned {written}, which is not a file")
        _expect(written.stat().st_size > 0, f"write_items wrote an empty file {written}")
        _expect(
            written.parent == directory and written.name.startswith(target.name),
            f"write_items was asked for {target} (plus a suffix) but wrote {written}",
        )
        left = sorted(p.name for p in directory.iterdir() if p != written)
        _expect(not left, f"write_items left other files behind: {left} (temporary files?)")


def check_domain(
    domain: Domain,
    specs: Sequence[LatentSpec] | LatentSpec | None = None,
    *,
    batch: int = 4,
    seed: int = 0,
    generate_options: dict[str, Any] | None = None,
    collate_generated: bool = True,
    sources: Sequence[str] = (),
    on_result: Callable[[CheckResult], None] | None = None,
) -> list[str]:
    """Check that ``domain`` keeps the :class:`~flowbridge.Domain` contract.

    For every latent spec, on ``x = domain.example_batch(batch, Generator(seed))``:

    * the encoder returns ``EncoderOutput`` with ``shared [batch, d_s]``, ``residual
      [batch, d_r]`` and ``log_var [batch, d_s + d_r]`` exactly when the variance is learned;
    * ``reconstruction_loss(decoder(shared, residual, x), x)`` is finite, shaped ``[batch]``,
      and a decoder output tensor of the batch's rank has no size-1 dimension where the batch
      has more (which a loss would broadcast silently);
    * its gradient reaches every encoder and decoder parameter (finite, not all zero);
    * in eval mode it is deterministic and per-sample: reversing the batch reverses the
      losses, and the first sample alone gets the same loss as inside the batch; and no
      batch norm layer makes it depend on the batch in training;
    * ``generate`` turns ``[batch, d_s]``, ``[batch, d_r]`` latents into ``batch`` items, and
      ``collate`` turns those items back into a batch (unless ``collate_generated=False``);
    * ``build_discriminator``, when not ``None``, scores ``[batch]`` with gradients, and
      ``output_to_batch`` turns decoder output into a batch shaped like ``x`` that the
      critic's gradient flows back through to the decoder.

    Once: the name is valid, ``options`` are JSON and rebuild the domain, whose encoder and
    decoder have the same parameter shapes (an option recording another value than the
    domain was built with shows there), ``check_batch`` returns ``example_batch`` unchanged
    (a batch tensor is collate's output, not raw data), ``example_batch`` is
    deterministic given the seed, ``read_item`` reads each of ``sources``, ``state_dict``
    survives ``torch.save``/``torch.load(weights_only=True)`` and ``load_state_dict`` into the
    rebuilt domain, and ``write_items`` writes one non-empty file next to the path it is given.
    The domain's state is put back afterwards: an unfitted domain that ``example_batch``
    fitted with built-in examples is unfitted again.

    Args:
        domain: the domain to check, fitted if it needs fitting.
        specs: latent spec(s) to try; default :func:`default_specs`.
        batch: batch size (at least 2, to test independence).
        seed: seed of ``example_batch`` and of the global torch RNG while checking (the
            caller's RNG state is restored afterwards).
        generate_options: keyword options for ``generate`` (e.g. ``{"max_length": 8}``).
        collate_generated: whether ``collate(generate(...))`` must work.
        sources: command-line arguments ``read_item`` must accept (e.g. a file path).
        on_result: called with a :class:`CheckResult` as each check ends: once per latent
            spec for the checks of the model, and for a check that does not apply (no
            discriminator, no ``sources``, ``collate_generated=False``) with its reason. A
            failed check is reported before its ``AssertionError`` is raised; the checks
            after it are not run, and not reported.

    Returns:
        The names of the checks that ran (a subset of :data:`CHECKS`).

    Raises:
        AssertionError: a check failed; the message names the domain and the check.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 2:
        raise ValueError(f"batch must be an int >= 2 to test per-sample independence, got {batch}")
    if isinstance(specs, LatentSpec):
        specs = [specs]
    if specs is not None and (not specs or not all(isinstance(s, LatentSpec) for s in specs)):
        raise TypeError(f"specs must be a LatentSpec or a non-empty list of them, got {specs!r}")
    check = _Checker(domain, on_result)
    with check("name and options"):
        # Not _expect: a Domain's repr reads its options, which the next lines check.
        if not isinstance(domain, Domain):
            raise AssertionError(
                f"expected a flowbridge.Domain instance, got {domain!r}"
                + ("; pass an instance, e.g. MyDomain()" if isinstance(domain, type) else "")
            )
        _expect(
            isinstance(domain.name, str) and bool(NAME_PATTERN.fullmatch(domain.name)),
            f"name must be lowercase letters, digits, '_' and '-', got {domain.name!r}",
        )
        try:
            savable_options(domain, "the domain")
        except PluginError as exc:  # training's own words (check_savable), as a failed check
            raise AssertionError(str(exc)) from None
        rebuilt = type(domain)(**domain.options)
        _expect(rebuilt.options == domain.options, "type(d)(**d.options) has other options")
        # A constructor argument left out of options is lost in a checkpoint: the rebuilt
        # domain silently takes its default.
        named, _ = constructor_options(type(domain))
        left_out = [name for name in named if name not in domain.options]
        _expect(
            not left_out,
            f"options leave out the constructor arguments {left_out}: a checkpoint rebuilds the "
            f"domain as type(d)(**d.options), which would give them their defaults",
        )
    specs = list(specs) if specs is not None else default_specs(domain)
    generate_options = dict(generate_options or {})

    # The domain is handed back as it came: example_batch may have fitted an unfitted one
    # (the text domain's built-in words), which a model built from it later would keep.
    initial = _state_or_none(domain)
    try:
        with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(seed)
            with check("example_batch"):
                x = domain.example_batch(batch, torch.Generator().manual_seed(seed))
                _expect_batch(x, "example_batch")
                _expect(len(x) == batch, f"example_batch({batch}, ...) has {len(x)} rows")
                again = domain.example_batch(batch, torch.Generator().manual_seed(seed))
                _expect(torch.equal(again, x), "example_batch differs for the same generator seed")
            with check("check_batch"):
                checked = domain.check_batch(x)
                _expect_batch(checked, "check_batch(example_batch)")
                _expect(
                    checked.shape == x.shape and torch.equal(checked, x.to(checked.dtype)),
                    "check_batch changed the domain's own example batch: a batch tensor handed "
                    "to translate, encode or reconstruct is the model's input as collate makes "
                    "it, not raw data, so check_batch must return a collated batch unchanged (it "
                    "may only convert another form of the same batch, as the image domain turns "
                    "uint8 pixels into floats in [0, 1]); do any preprocessing, such as "
                    "normalising, in collate",
                )
            items: list = []
            for spec in specs:
                items = _check_model(domain, spec, x, check, generate_options, collate_generated)
            if sources:
                with check("read_item"):
                    read = [domain.read_item(source) for source in sources]
                    _expect_batch(domain.collate(read), "collate(read_item(...))")
            else:
                check.skip("read_item", "no sources given to read")
            _check_state(domain, rebuilt, x, items if collate_generated else [], seed, check)
            with check("name and options"):
                # After the state check: a model's size may come from fitted state (a vocabulary).
                _check_rebuilt_model(domain, rebuilt, specs[0])
            _check_write(domain, items, Path(tmp), check)
    finally:
        if initial is not None:
            # A load_state_dict that fails is the state check's to name, not this.
            with contextlib.suppress(Exception):
                domain.load_state_dict(initial)
    return check.passed


def latent_specs(max_shared: int = 8, max_residual: int = 8):
    """Hypothesis strategy of :class:`~flowbridge.LatentSpec` values: ``shared`` in
    ``[1, max_shared]``, ``residual`` in ``[0, max_residual]``, either posterior mode.

    Example::

        @given(spec=latent_specs())
        def test_any_sizes(spec):
            check_domain(SignalDomain(length=16), spec)
    """
    # Imported here: hypothesis is a test dependency, check_domain must work without it.
    from hypothesis import strategies as st

    return st.builds(
        LatentSpec,
        shared=st.integers(1, max_shared),
        residual=st.integers(0, max_residual),
        learned_variance=st.booleans(),
    )

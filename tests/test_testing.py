"""flowbridge.testing.check_domain: it passes a correct domain and catches each broken one."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from toy_domains import VectorDomain

from flowbridge import plugins
from flowbridge.testing import CHECKS, CheckResult, check_domain, default_specs, latent_specs

ALWAYS = [c for c in CHECKS if c not in ("discriminator", "read_item")]


def test_the_vector_domain_passes_every_check_that_applies():
    assert check_domain(VectorDomain()) == ALWAYS


def test_read_item_sources_are_checked_when_given():
    assert "read_item" in check_domain(VectorDomain(), sources=["1,2,3,4"])
    with pytest.raises(AssertionError, match="failed check 'read_item'.*cannot read a vector"):
        check_domain(VectorDomain(), sources=["1,two"])


def test_default_specs_cover_zero_residual_and_learned_variance():
    specs = default_specs(VectorDomain())
    assert [(s.residual, s.learned_variance) for s in specs] == [(2, False), (0, False), (2, True)]


@settings(max_examples=15)
@given(spec=latent_specs(max_shared=5, max_residual=5))
def test_any_latent_spec_passes(spec):
    assert "encoder output" in check_domain(VectorDomain(hidden=8), spec, batch=2)


def test_the_callers_random_state_is_left_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    check_domain(VectorDomain())
    assert torch.equal(torch.get_rng_state(), before)


def test_the_domain_is_handed_back_in_the_state_it_came_in():
    class SelfFitting(VectorDomain):
        """Fits itself in example_batch when unfitted, as the text domain does."""

        fitted = None

        def example_batch(self, n, generator):
            if self.fitted is None:
                self.fitted = "built-in examples"
            return super().example_batch(n, generator)

        def state_dict(self):
            return {} if self.fitted is None else {"fitted": self.fitted}

        def load_state_dict(self, state):
            self.fitted = state.get("fitted")

    unfitted = SelfFitting()
    check_domain(unfitted)
    assert unfitted.fitted is None
    fitted = SelfFitting()
    fitted.fitted = "the user's data"
    check_domain(fitted)
    assert fitted.fitted == "the user's data"


def test_a_domain_class_instead_of_an_instance_is_named():
    with pytest.raises(AssertionError, match="pass an instance, e.g. MyDomain()"):
        check_domain(VectorDomain)


def test_batch_and_specs_are_validated():
    with pytest.raises(ValueError, match="batch must be an int >= 2"):
        check_domain(VectorDomain(), batch=1)
    with pytest.raises(TypeError, match="non-empty list of them, got \\[\\]"):
        check_domain(VectorDomain(), [])


# -- a critic -------------------------------------------------------------------------------
class Critic(torch.nn.Module):
    def __init__(self, features, shared, squeeze=True):
        super().__init__()
        self.net, self.squeeze = torch.nn.Linear(features + shared, 1), squeeze

    def forward(self, x, shared):
        score = self.net(torch.cat((x, shared), dim=1))
        return score.squeeze(1) if self.squeeze else score


class CriticDomain(VectorDomain):
    squeeze = True

    def build_discriminator(self, spec):
        return Critic(self.features, spec.shared, self.squeeze)

    def output_to_batch(self, output):
        return output


def test_a_discriminator_is_checked_when_the_domain_has_one():
    assert "discriminator" in check_domain(CriticDomain())
    broken = type("Broken", (CriticDomain,), {"squeeze": False})
    shape = r"'discriminator'.*must have shape \[4\], got \[4, 1\]"
    with pytest.raises(AssertionError, match=shape):
        check_domain(broken())


@pytest.mark.parametrize(
    ("output_to_batch", "message"),
    [
        (VectorDomain.output_to_batch, "does not turn decoder output into a batch"),
        (lambda self, output: output[:, :2], r"must have shape \[4, 4\], got \[4, 2\]"),
        (lambda self, output: output.detach(), "must stay differentiable"),
    ],
)
def test_a_discriminator_needs_a_differentiable_output_to_batch(output_to_batch, message):
    broken = type("Broken", (CriticDomain,), {"output_to_batch": output_to_batch})
    with pytest.raises(AssertionError, match=f"'discriminator'.*{message}"):
        check_domain(broken())


# -- broken domains: each must fail the check named after its defect ------------------------
class Stateful(VectorDomain):
    """Holds an offset fitted on data, like a vocabulary."""

    def __init__(self, features=4, hidden=32):
        super().__init__(features, hidden)
        self.offset = torch.zeros(features)

    def fit(self, items):
        self.offset = torch.stack(list(items)).mean(0)

    def example_batch(self, n, generator):
        return super().example_batch(n, generator) + self.offset

    def state_dict(self):
        return {"offset": self.offset}

    def load_state_dict(self, state):
        self.offset = state["offset"]


def wider_shared(self, spec):
    encoder = VectorDomain.build_encoder(self, spec)
    forward = encoder.forward

    def wide(x):
        out = forward(x)
        return out._replace(shared=torch.cat((out.shared, out.shared[:, :1]), dim=1))

    encoder.forward = wide
    return encoder


def patched_encoder(transform):
    def build(self, spec):
        encoder = VectorDomain.build_encoder(self, spec)
        forward = encoder.forward
        encoder.forward = lambda x: transform(forward(x))
        return encoder

    return build


def patched_decoder(transform):
    def build(self, spec):
        decoder = VectorDomain.build_decoder(self, spec)
        forward = decoder.forward
        decoder.forward = lambda shared, residual, x=None: transform(forward, shared, residual)
        return decoder

    return build


def no_options(self, features=4, hidden=32):
    # Neither Domain.__init__ nor a self.options of its own.
    self.features, self.hidden = features, hidden


def unserialisable_options(self, features=4, hidden=32):
    VectorDomain.__init__(self, features, hidden)
    self.options["vocabulary"] = {"a", "b"}


def options_without_hidden(self, features=4, hidden=32):
    VectorDomain.__init__(self, features, hidden)
    del self.options["hidden"]


def options_that_do_not_rebuild(self, features=4, hidden=32):
    VectorDomain.__init__(self, features, hidden)
    self.options["extra"] = 1


def options_recording_another_value(self, features=4, hidden=16):
    VectorDomain.__init__(self, features, hidden)
    self.options["hidden"] = 32


def decoder_with_batch_norm(self, spec):
    decoder = VectorDomain.build_decoder(self, spec)
    decoder.net.insert(1, torch.nn.BatchNorm1d(self.hidden))
    return decoder


def write_nothing(self, items, path):
    return Path(path).with_suffix(".txt")


def write_over_the_end_of_the_name(self, items, path):
    path = Path(path).with_suffix(".txt")  # samples.v1 -> samples.txt: a dot in the name lost
    path.write_text("written", encoding="utf-8")
    return path


def write_and_leave_a_temporary(self, items, path):
    Path(path).with_suffix(".tmp").write_text("half", encoding="utf-8")
    return VectorDomain.write_items(self, items, path)


BROKEN = {
    "no options dict": (
        {"__init__": no_options},
        "name and options",
        "the domain has no options dict (got NoneType): a checkpoint rebuilds the domain as "
        "type(d)(**d.options); set self.options in __init__, as Domain.__init__ does",
    ),
    "options not JSON": (
        {"__init__": unserialisable_options},
        "name and options",
        "not JSON serializable",
    ),
    "options do not rebuild": (
        {"__init__": options_that_do_not_rebuild},
        "name and options",
        "unexpected keyword argument 'extra'",
    ),
    "options leave out an argument": (
        {"__init__": options_without_hidden},
        "name and options",
        "options leave out the constructor arguments ['hidden']",
    ),
    "options record another value": (
        {"__init__": options_recording_another_value},
        "name and options",
        "type(d)(**d.options) builds another model than d (decoder.net.0.bias [16] != [32]; "
        "decoder.net.0.weight [16, 6] != [32, 6]; decoder.net.2.weight [4, 16] != [4, 32]; ...): "
        "an option records another value than the domain was built with (likely hidden=16 but "
        "options say 32)",
    ),
    "example_batch ignores the generator": (
        {"example_batch": lambda self, n, generator: torch.randn(n, self.features)},
        "example_batch",
        "differs for the same generator seed",
    ),
    "check_batch changes the domain's own batch": (
        {"check_batch": lambda self, x: x[:, :2]},
        "check_batch",
        "check_batch changed the domain's own example batch",
    ),
    "check_batch preprocesses a collated batch again": (
        {"check_batch": lambda self, x: (x - x.mean(0)) / x.std(0)},
        "check_batch",
        "is the model's input as collate makes it, not raw data, so check_batch must return a "
        "collated batch unchanged",
    ),
    "encoder is not a module": (
        {"build_encoder": lambda self, spec: lambda x: x},
        "build",
        "build_encoder must return an nn.Module, got function",
    ),
    "shared too wide": (
        {"build_encoder": wider_shared},
        "encoder output",
        "shared must have shape [4, 4], got [4, 5]",
    ),
    "plain tuple": (
        {"build_encoder": patched_encoder(tuple)},
        "encoder output",
        "must return flowbridge.EncoderOutput",
    ),
    "log_var when fixed": (
        {"build_encoder": patched_encoder(lambda o: o._replace(log_var=o.shared))},
        "encoder output",
        "log_var must be None",
    ),
    "NaN residual": (
        {"build_encoder": patched_encoder(lambda o: o._replace(residual=o.residual * torch.nan))},
        "encoder output",
        "residual has NaN or Inf",
    ),
    "mean loss": (
        {"reconstruction_loss": lambda self, out, x: (out - x).square().mean()},
        "reconstruction loss",
        "must have shape [4], got []",
    ),
    "infinite loss": (
        {"reconstruction_loss": lambda self, out, x: (out - x).sum(1) / 0},
        "reconstruction loss",
        "has NaN or Inf",
    ),
    "decoder output broadcasts": (
        {"build_decoder": patched_decoder(lambda f, s, r: f(s, r)[:, :1])},
        "reconstruction loss",
        "the decoder output has shape [4, 1] for a batch of shape [4, 4]: an elementwise loss "
        "broadcasts it over dimension 1",
    ),
    "decoder ignores the latent": (
        {"build_decoder": patched_decoder(lambda f, s, r: f(s.detach(), r.detach()))},
        "gradients",
        "no gradient reaches encoder parameters ['net.0.weight'",
    ),
    "loss cuts the decoder output off the graph": (
        {
            "reconstruction_loss": lambda self, out, x: VectorDomain.reconstruction_loss(
                self, out.detach(), x
            )
        },
        "gradients",
        "the reconstruction loss does not depend on the decoder output through autograd, so no "
        "gradient reaches the decoder",
    ),
    "decoder cuts its output off the graph": (
        {"build_decoder": patched_decoder(lambda f, s, r: f(s, r).detach())},
        "gradients",
        "the decoder output [4, 4] has no gradient, so training could not move the decoder",
    ),
    "decoder ignores the residual": (
        {"build_decoder": patched_decoder(lambda f, s, r: f(s, torch.zeros_like(r)))},
        "gradients",
        "the decoder ignores the residual: the reconstruction loss does not change with it",
    ),
    "decoder ignores the shared code": (
        {"build_decoder": patched_decoder(lambda f, s, r: f(torch.zeros_like(s), r))},
        "gradients",
        "the decoder ignores the shared code",
    ),
    "loss mixes samples": (
        {"reconstruction_loss": lambda self, out, x: (out - x.mean(0)).square().sum(1)},
        "per-sample independence",
        "loss of the first sample alone",
    ),
    "loss weighted by position": (
        {"reconstruction_loss": lambda self, out, x: (out - x).square().sum(1).cumsum(0)},
        "per-sample independence",
        "losses of a reversed batch",
    ),
    "batch norm mixes a batch in training": (
        {"build_decoder": decoder_with_batch_norm},
        "per-sample independence",
        "the decoder's net.1 (BatchNorm1d) normalises by the batch's statistics in training",
    ),
    "noisy in eval mode": (
        {"build_decoder": patched_decoder(lambda f, s, r: f(s, r) + torch.randn(len(s), 4))},
        "eval determinism",
        "two eval-mode passes gave other losses",
    ),
    "generate drops one": (
        {"generate": lambda self, d, s, r, **o: VectorDomain.generate(self, d, s, r)[1:]},
        "generate",
        "made 3 items from 4 latents",
    ),
    "collate rejects generated items": (
        {"collate": lambda self, items: torch.stack([torch.as_tensor(i) for i in items]).numpy()},
        "collate generated",
        "must be a tensor, got ndarray",
    ),
    "state not loadable with weights_only": (
        {"state_dict": lambda self: {"fitted": Path("vocab.txt")}},
        "state_dict",
        "does not load with torch.load(weights_only=True)",
    ),
    "load_state_dict forgets": (
        {"__bases__": (Stateful,), "load_state_dict": lambda self, state: None},
        "state_dict",
        "load_state_dict did not restore the state",
    ),
    "write_items writes nothing": (
        {"write_items": write_nothing},
        "write_items",
        "which is not a file",
    ),
    "write_items replaces the end of a dotted name": (
        {"write_items": write_over_the_end_of_the_name},
        "write_items",
        "samples.v1 (plus a suffix) but wrote",
    ),
    "write_items leaves a temporary file": (
        {"write_items": write_and_leave_a_temporary},
        "write_items",
        "left other files behind: ['samples.tmp']",
    ),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_broken_domain_fails_the_check_named_after_its_defect(case):
    attributes, check, detail = BROKEN[case]
    attributes = dict(attributes)
    bases = attributes.pop("__bases__", (VectorDomain,))
    domain = type("Broken", bases, {"name": "broken", **attributes})()
    domain.fit([torch.full((4,), 3.0)])
    with pytest.raises(AssertionError) as info:
        check_domain(domain)
    message = str(info.value)
    assert message.startswith(f"domain 'broken' (Broken) failed check {check!r}"), message
    assert detail in message, message


@pytest.mark.skipif(not hasattr(Exception, "add_note"), reason="exception notes: Python 3.11")
@pytest.mark.parametrize(
    ("attributes", "check", "where"),
    [
        (  # [b, 7] for [b, 8] data
            {"build_decoder": patched_decoder(lambda f, s, r: f(s, r)[:, :7])},
            "reconstruction loss",
            "(in reconstruction_loss, of decoder output [4, 7] against x [4, 8])",
        ),
        (
            {"build_decoder": patched_decoder(lambda f, s, r: f(s, r).unsqueeze(-1))},
            "reconstruction loss",
            "(in reconstruction_loss, of decoder output [4, 8, 1] against x [4, 8])",
        ),
        (
            {"build_decoder": patched_decoder(lambda f, s, r: f(s[:, 1:], r))},
            "reconstruction loss",
            "(in the decoder, of shared [4, 4], residual [4, 2] and x [4, 8])",
        ),
        (
            {"example_batch": lambda self, n, generator: torch.randn(n, 9, generator=generator)},
            "encoder output",
            "(in the encoder, of x [4, 9])",
        ),
    ],
)
def test_an_error_inside_a_model_call_is_named_with_the_shapes_it_got(attributes, check, where):
    # As training names them: torch's own error names neither the call nor the shapes.
    broken = type("Broken", (VectorDomain,), {"name": "broken", **attributes})
    with pytest.raises(AssertionError) as info:
        check_domain(broken(features=8))
    message = str(info.value)
    assert message.startswith(f"domain 'broken' (Broken) failed check {check!r}"), message
    assert "RuntimeError: " in message and message.endswith(where), message


def test_on_result_hears_how_each_check_ended():
    results: list[CheckResult] = []
    specs = default_specs(VectorDomain())
    check_domain(VectorDomain(), collate_generated=False, on_result=results.append)
    assert [r.spec for r in results if r.check == "build"] == specs
    assert {r.check for r in results} == set(CHECKS)
    skipped = {(r.check, r.detail) for r in results if r.status == "skipped"}
    assert skipped == {
        ("collate generated", "collate_generated=False"),
        ("discriminator", "build_discriminator returned None (no critic)"),
        ("read_item", "no sources given to read"),
    }
    assert all(r.status == "passed" and r.detail == "" for r in results if r.check == "generate")


def test_on_result_hears_a_failure_last():
    results: list[CheckResult] = []
    broken = type("Broken", (VectorDomain,), {"build_encoder": wider_shared})
    with pytest.raises(AssertionError):
        check_domain(broken(), on_result=results.append)
    assert results[-1] == CheckResult(
        "encoder output",
        default_specs(broken())[0],
        "failed",
        "shared must have shape [4, 4], got [4, 5]",
    )
    assert [r.check for r in results[:-1]] == [
        "name and options",
        "example_batch",
        "check_batch",
        "build",
    ]


def test_state_that_cannot_be_saved_is_named_in_one_line():
    # torch's own refusal spans lines of coloured advice, its point cut off at the end.
    numpy_state = {"name": "broken", "state_dict": lambda self: {"offset": np.zeros(3)}}
    with pytest.raises(AssertionError) as info:
        check_domain(type("Broken", (VectorDomain,), numpy_state)())
    message = str(info.value)
    assert "\n" not in message and "\x1b" not in message, message
    assert message.endswith("(UnpicklingError: Unsupported global: GLOBAL numpy)")


def test_the_stateful_domain_itself_passes():
    domain = Stateful()
    domain.fit([torch.full((4,), 3.0)])
    assert check_domain(domain) == ALWAYS


def test_the_failing_spec_is_named():
    def fail_without_residual(out):
        if out.residual.shape[1] == 0:
            raise RuntimeError("cannot encode without a residual")
        return out

    build_encoder = patched_encoder(fail_without_residual)
    broken = type("Broken", (VectorDomain,), {"build_encoder": build_encoder})
    with pytest.raises(AssertionError, match=re.escape("with LatentSpec(shared=4, residual=0")):
        check_domain(broken())


# -- every installed domain plugin ----------------------------------------------------------
INSTALLED = sorted(ep.name for ep in metadata.entry_points(group=plugins.ENTRY_POINT_GROUP))


@pytest.mark.parametrize("plugin", INSTALLED or [None])
def test_every_installed_domain_plugin_keeps_the_contract(plugin, monkeypatch):
    if plugin is None:
        pytest.skip("no flowbridge plugin is installed: no entry point in group 'flowbridge'")
    # Load this one plugin explicitly, whatever the suite's FLOWBRIDGE_LOAD_PLUGINS says.
    monkeypatch.setenv(plugins.ENV_VAR, plugin)
    with plugins.isolated(entry_points=True) as registry:
        found, datasets = registry.domains(), registry.datasets()
    # A dataset-only plugin (shapes, coco) has no domain to check, but must register something.
    assert found or datasets, f"plugin {plugin!r} registers neither a domain nor a dataset"
    for cls in found.values():
        assert "write_items" in check_domain(cls())

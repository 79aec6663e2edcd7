"""Bad input to every public flow and prior fails at once with a message that says what was
expected and what was given."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from flowbridge.checks import check_positive_int, check_positive_number
from flowbridge.domain import EncoderOutput
from flowbridge.flows import (
    AdditiveCoupling,
    AffineCoupling,
    Chain,
    ConditionalActNorm,
    ConditionalGaussianPrior,
    ConditionalResidualPrior,
    FlowPrior,
    FlowTransform,
    GaussianMixtureBase,
    GlobalScale,
    NoResidualPrior,
    NormalBase,
    SharedBijection,
    StandardNormalPrior,
    UniformPrior,
    build_residual_prior,
    build_shared_prior,
)
from flowbridge.posterior import sample_posterior

F, C, BATCH = 4, 3, 2


def _modules():
    """``name -> (module, conditional)`` for every public transform and prior."""
    return {
        "SharedBijection": (SharedBijection(F, steps=1, hidden_features=8), False),
        "SharedBijection-affine": (SharedBijection(F, 1, 8, coupling="affine"), False),
        "AdditiveCoupling": (AdditiveCoupling(F, C, hidden_features=8), True),
        "AffineCoupling": (AffineCoupling(F, C, hidden_features=8), True),
        "AffineCoupling-unconditional": (AffineCoupling(F, hidden_features=8), False),
        "GlobalScale": (GlobalScale(F), False),
        "ConditionalActNorm": (ConditionalActNorm(F, C, hidden_features=8), True),
        "ConditionalActNorm-plain": (ConditionalActNorm(F, 0, hidden_features=8), False),
        "Chain": (Chain([ConditionalActNorm(F, C), AffineCoupling(F, hidden_features=8)]), True),
        "FlowPrior": (FlowPrior(F, steps=1, hidden_features=8), False),
        "ConditionalResidualPrior": (ConditionalResidualPrior(F, C, steps=1), True),
        "ConditionalGaussianPrior": (ConditionalGaussianPrior(F, C, hidden_features=8), True),
        "StandardNormalPrior": (StandardNormalPrior(F), False),
        "UniformPrior": (UniformPrior(F), False),
    }


def _calls(conditional: bool | None = None) -> list:
    """Every public entry point that takes ``(inputs, context)``, as ``(call, conditional)``."""
    calls = []
    for name, (module, needs_context) in _modules().items():
        if conditional is not None and needs_context != conditional:
            continue
        methods = ["log_prob"] if hasattr(module, "log_prob") else ["forward", "inverse"]
        calls += [
            pytest.param(getattr(module, m), needs_context, id=f"{name}.{m}") for m in methods
        ]
    return calls


def _context(conditional: bool, rows: int = BATCH):
    return torch.randn(rows, C) if conditional else None


def _with(value, *index) -> torch.Tensor:
    x = torch.randn(BATCH, F)
    x[index] = value
    return x


BAD_INPUTS = {
    "list": (
        [[0.0] * F] * BATCH,
        TypeError,
        r"must be a torch\.Tensor of shape \[batch, 4\], got list",
    ),
    "numpy": (np.zeros((BATCH, F)), TypeError, r"torch\.Tensor .*got ndarray.*torch\.as_tensor"),
    "int64": (
        torch.zeros(BATCH, F, dtype=torch.int64),
        TypeError,
        r"floating-point tensor, got dtype torch\.int64; convert with \.float\(\)",
    ),
    "bool": (torch.ones(BATCH, F, dtype=torch.bool), TypeError, r"got dtype torch\.bool"),
    "float64": (
        torch.zeros(BATCH, F, dtype=torch.float64),
        TypeError,
        r"inputs must have dtype torch\.float32 \(the module's\), got torch\.float64; "
        r"convert them with \.to\(torch\.float32\), or the module with \.to\(torch\.float64\)",
    ),
    "float16": (
        torch.zeros(BATCH, F, dtype=torch.float16),
        TypeError,
        r"dtype torch\.float32 \(the module's\), got torch\.float16",
    ),
    "bfloat16": (
        torch.zeros(BATCH, F, dtype=torch.bfloat16),
        TypeError,
        r"dtype torch\.float32 \(the module's\), got torch\.bfloat16",
    ),
    "too many features": (torch.randn(BATCH, F + 1), ValueError, r"\[batch, 4\], got \[2, 5\]"),
    "too few features": (torch.randn(BATCH, F - 1), ValueError, r"\[batch, 4\], got \[2, 3\]"),
    "no batch dim": (torch.randn(F), ValueError, r"\[batch, 4\], got \[4\]; add a batch dim"),
    "3-D": (torch.randn(BATCH, 1, F), ValueError, r"\[batch, 4\], got \[2, 1, 4\]"),
    "NaN": (_with(float("nan"), 1, 2), ValueError, r"NaN or Inf values \(in 1 of 2 rows\)"),
    "Inf": (_with(float("inf"), 0, 0), ValueError, r"NaN or Inf values \(in 1 of 2 rows\)"),
    "-Inf": (_with(-float("inf"), 0), ValueError, r"NaN or Inf values \(in 1 of 2 rows\)"),
}


@pytest.mark.parametrize("bad", BAD_INPUTS, ids=str)
@pytest.mark.parametrize(("call", "conditional"), _calls())
def test_bad_inputs_are_refused(call, conditional, bad):
    inputs, error, message = BAD_INPUTS[bad]
    with pytest.raises(error, match=message):
        call(inputs, _context(conditional))


@pytest.mark.parametrize("name", list(_modules()))
def test_a_converted_module_takes_inputs_and_context_in_its_own_dtype(name):
    module, conditional = _modules()[name]
    module.double()
    context = _context(conditional)
    methods = ["log_prob"] if hasattr(module, "log_prob") else ["forward", "inverse"]
    for call in [getattr(module, method) for method in methods]:
        with pytest.raises(TypeError, match=r"dtype torch\.float64 \(the module's\), got .*32"):
            call(torch.randn(BATCH, F), None if context is None else context.double())
        if conditional:
            with pytest.raises(TypeError, match=r"context must have dtype torch\.float64"):
                call(torch.randn(BATCH, F, dtype=torch.float64), context)
        results = call(
            torch.randn(BATCH, F, dtype=torch.float64),
            None if context is None else context.double(),
        )
        # Outputs and log-determinant alike (a plain ActNorm's once came out in float32).
        for result in results if isinstance(results, tuple) else (results,):
            assert result.dtype == torch.float64


def test_a_transform_with_a_child_set_to_none_reads_its_dtype_past_it():
    # torch keeps a child set to None (an optional part left out) and skips it in
    # parameters(); the input check's dtype lookup once called None._parameters.
    class Wrapped(FlowTransform):
        def __init__(self):
            super().__init__()
            self.features = F
            self.register_module("conditioner", None)
            self.inner = AffineCoupling(F).double()

        def _forward(self, inputs, context):
            return self.inner._forward(inputs, context)

        def _inverse(self, inputs, context):
            return self.inner._inverse(inputs, context)

    wrapped = Wrapped()
    assert wrapped(torch.randn(BATCH, F, dtype=torch.float64))[0].dtype == torch.float64
    with pytest.raises(TypeError, match=r"dtype torch\.float64 \(the module's\)"):
        wrapped(torch.randn(BATCH, F))


@pytest.mark.parametrize(("call", "conditional"), _calls())
def test_large_finite_inputs_are_not_mistaken_for_inf(call, conditional):
    # Their float32 sum overflows; the finiteness check must not report them.
    call(torch.full((BATCH, F), 3e38), _context(conditional))


BAD_CONTEXTS = {
    "missing": (
        None,
        ValueError,
        r"is conditional and needs a context of shape \[batch, 3\], got None",
    ),
    "too wide": (
        torch.randn(BATCH, C + 1),
        ValueError,
        r"context must have shape \[batch, 3\], got \[2, 4\]",
    ),
    "no batch dim": (torch.randn(C), ValueError, r"context has 3 rows but the inputs have 2"),
    "wrong rows": (
        torch.randn(BATCH + 1, C),
        ValueError,
        r"context has 3 rows but the inputs have 2; give one",
    ),
    "0-dim": (torch.tensor(1.0), ValueError, r"context must have shape \[batch, 3\].*got a 0-dim"),
    "list": ([[0.0] * C] * BATCH, TypeError, r"context must be a torch\.Tensor .*got list"),
    "int64": (torch.zeros(BATCH, C, dtype=torch.int64), TypeError, r"context must be a floating"),
    "float64": (
        torch.zeros(BATCH, C, dtype=torch.float64),
        TypeError,
        r"context must have dtype torch\.float32 .*got torch\.float64",
    ),
    "NaN": (
        torch.full((BATCH, C), float("nan")),
        ValueError,
        r"context contains NaN or Inf .*2 of 2 rows",
    ),
}


@pytest.mark.parametrize("bad", BAD_CONTEXTS, ids=str)
@pytest.mark.parametrize(("call", "conditional"), _calls(conditional=True))
def test_conditional_modules_refuse_bad_contexts(call, conditional, bad):
    context, error, message = BAD_CONTEXTS[bad]
    with pytest.raises(error, match=message):
        call(torch.randn(BATCH, F), context)


@pytest.mark.parametrize(("call", "conditional"), _calls(conditional=False))
def test_unconditional_modules_ignore_a_context_but_check_its_rows(call, conditional):
    inputs = torch.randn(BATCH, F)
    # Any width and dtype: a residual prior may be handed the shared code it does not use.
    ignored = torch.randn(BATCH, 7, dtype=torch.float64)
    torch.testing.assert_close(call(inputs, ignored), call(inputs, None), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"context has 3 rows but the inputs have 2"):
        call(inputs, torch.randn(BATCH + 1, C))
    with pytest.raises(TypeError, match=r"context must be a torch\.Tensor"):
        call(inputs, "context")


# ---------------------------------------------------------------------------------------------
# Sampling

PRIORS = [
    FlowPrior(F, C, steps=1),
    ConditionalGaussianPrior(F, C),
    StandardNormalPrior(F),
    build_shared_prior("flow", F, steps=1),
]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_samples": 0}, ValueError, r"num_samples must be >= 1, got 0"),
        ({"num_samples": -3}, ValueError, r"num_samples must be >= 1, got -3"),
        ({"num_samples": 2.0}, TypeError, r"num_samples must be an int, got float \(2\.0\)"),
        ({"num_samples": True}, TypeError, r"num_samples must be an int, got bool"),
        ({"temperature": -0.5}, ValueError, r"temperature must be a finite number >= 0, got -0\.5"),
        ({"temperature": float("nan")}, ValueError, r"temperature must be a finite .*got nan"),
        ({"temperature": float("inf")}, ValueError, r"temperature must be a finite .*got inf"),
        ({"temperature": "hot"}, TypeError, r"temperature must be a number, got str \('hot'\)"),
        # Zeros, not random values: the ids print them, and every pytest-xdist worker must
        # collect the same ids.
        ({"context": torch.zeros(BATCH, C + 1)}, ValueError, r"\[batch, 3\], got \[2, 4\]"),
        ({"context": torch.zeros(BATCH, C).double()}, TypeError, r"dtype torch\.float32"),
    ],
    ids=str,
)
@pytest.mark.parametrize("prior", PRIORS[:2], ids=lambda p: type(p).__name__)
def test_sampling_refuses_bad_arguments(prior, kwargs, error, message):
    arguments = {"num_samples": 2, "context": torch.randn(BATCH, C), **kwargs}
    with pytest.raises(error, match=message):
        prior.sample(**arguments)


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (-0.5, ValueError, r"component_temperature must be a finite number >= 0, got -0\.5"),
        (float("nan"), ValueError, r"component_temperature must be a finite .*got nan"),
        ("cold", TypeError, r"component_temperature must be a number, got str \('cold'\)"),
    ],
    ids=str,
)
def test_a_mixture_refuses_a_bad_component_temperature(value, error, message):
    mixture = FlowPrior(F, C, steps=1, components=3)
    with pytest.raises(error, match=message):
        mixture.sample(2, torch.randn(BATCH, C), component_temperature=value)


@pytest.mark.parametrize("prior", PRIORS, ids=lambda p: type(p).__name__)
def test_a_prior_without_a_mixture_refuses_a_component_temperature(prior):
    # Nothing for it to temper: saying so beats ignoring an option the caller meant to use.
    context = torch.randn(BATCH, C)
    message = rf"component_temperature .* this {type(prior).__name__} has no mixture"
    for method in (prior.sample, prior.sample_and_log_prob):
        with pytest.raises(ValueError, match=message):
            method(2, context, component_temperature=1.0)


@pytest.mark.parametrize("prior", PRIORS[:2], ids=lambda p: type(p).__name__)
def test_conditional_priors_refuse_to_sample_without_a_context(prior):
    with pytest.raises(ValueError, match=r"needs a context of shape \[batch, 3\], got None"):
        prior.sample(5)


@pytest.mark.parametrize("prior", PRIORS[2:], ids=lambda p: type(p).__name__)
def test_unconditional_priors_sample_in_their_own_dtype_whatever_the_context(prior):
    context = torch.randn(BATCH, 5, dtype=torch.float64)
    assert prior.sample(3, context).dtype == torch.float32
    with pytest.raises(ValueError, match=r"context must have shape \[batch, \.\.\.\].*0-dim"):
        prior.sample(3, torch.tensor(1.0))


ALL_PRIORS = {
    "FlowPrior": FlowPrior(F, C, steps=1, hidden_features=8),
    "FlowPrior-mixture": FlowPrior(F, C, steps=1, hidden_features=8, components=3),
    "ConditionalResidualPrior": ConditionalResidualPrior(F, C, steps=1, hidden_features=8),
    "ConditionalGaussianPrior": ConditionalGaussianPrior(F, C, hidden_features=8),
    "StandardNormalPrior": StandardNormalPrior(F),
    "shared flow": build_shared_prior("flow", F, steps=1, hidden_features=8),
    "NoResidualPrior": NoResidualPrior(),
}


@pytest.mark.parametrize("name", ALL_PRIORS)
def test_a_context_of_no_rows_gives_no_rows_of_samples(name):
    # An empty (filtered) batch is ordinary; it once gave one row, or a raw torch error.
    prior = ALL_PRIORS[name]
    context = torch.zeros(0, C)
    assert prior.sample(3, context).shape == (0, 3, prior.features)
    samples, log_prob = prior.sample_and_log_prob(3, context)
    assert samples.shape == (0, 3, prior.features)
    assert log_prob.shape == (0, 3)


def test_numpy_scalars_count_as_numbers():
    # As np.arange and np.linspace(..., dtype=np.float32) give them; the result is the same.
    prior = ALL_PRIORS["FlowPrior-mixture"]
    context = torch.randn(BATCH, C)
    expected = prior.sample(
        3,
        context,
        temperature=0.5,
        generator=torch.Generator().manual_seed(0),
        component_temperature=0.25,
    )
    got = prior.sample(
        np.int64(3),
        context,
        temperature=np.float32(0.5),
        generator=torch.Generator().manual_seed(0),
        component_temperature=np.float16(0.25),
    )
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert type(check_positive_int(np.uint8(3), "n")) is int
    assert type(check_positive_number(np.float32(0.5), "x")) is float
    with pytest.raises(ValueError, match=r"num_samples must be >= 1, got 0"):
        prior.sample(np.int64(0), context)
    with pytest.raises(ValueError, match=r"temperature must be a finite number >= 0, got nan"):
        prior.sample(2, context, temperature=np.float32("nan"))
    with pytest.raises(TypeError, match=r"temperature must be a number, got bool"):
        prior.sample(2, context, temperature=np.bool_(True))


def test_the_uniform_prior_cannot_be_sampled():
    with pytest.raises(NotImplementedError, match=r"improper .*use shared_prior = 'gaussian'"):
        UniformPrior(F).sample(2)


# ---------------------------------------------------------------------------------------------
# The exported mixture base, called on its own

MIXTURE = GaussianMixtureBase(F, C, components=3, scale=0.25, hidden_features=8)
Z, CONTEXT = torch.zeros(BATCH, F), torch.zeros(BATCH, C)

BAD_MIXTURE_CALLS = {
    "no context": (
        lambda: MIXTURE.log_prob(Z, None),
        ValueError,
        r"GaussianMixtureBase is conditional and needs a context of shape \[batch, 3\], got None",
    ),
    "1-D z": (
        lambda: MIXTURE.log_prob(Z[0], CONTEXT[0]),
        ValueError,
        r"GaussianMixtureBase z must have shape \[batch, 4\], got \[4\]; add a batch",
    ),
    "z too wide": (
        lambda: MIXTURE.log_prob(torch.zeros(BATCH, F + 2), CONTEXT),
        ValueError,
        r"z must have shape \[batch, 4\], got \[2, 6\]",
    ),
    "context too wide": (
        lambda: MIXTURE.log_prob(Z, torch.zeros(BATCH, C + 2)),
        ValueError,
        r"GaussianMixtureBase context must have shape \[batch, 3\], got \[2, 5\]",
    ),
    "context rows": (
        lambda: MIXTURE.log_prob(Z, torch.zeros(BATCH + 1, C)),
        ValueError,
        r"the context has 3 rows but the inputs have 2",
    ),
    "float64 z": (
        lambda: MIXTURE.log_prob(Z.double(), CONTEXT.double()),
        TypeError,
        r"z must have dtype torch\.float32 \(the module's\), got torch\.float64",
    ),
    "NaN noise": (
        lambda: MIXTURE.sample(torch.full((BATCH, F), float("nan")), CONTEXT, 1.0),
        ValueError,
        r"GaussianMixtureBase noise contains NaN or Inf values",
    ),
    "noise too narrow": (
        lambda: MIXTURE.sample(torch.zeros(BATCH, F - 1), CONTEXT, 1.0),
        ValueError,
        r"noise must have shape \[batch, 4\], got \[2, 3\]",
    ),
    "negative temperature": (
        lambda: MIXTURE.sample(Z, CONTEXT, -1.0),
        ValueError,
        r"temperature must be a finite number >= 0, got -1\.0",
    ),
    "negative component temperature": (
        lambda: MIXTURE.sample(Z, CONTEXT, 1.0, None, -0.5),
        ValueError,
        r"component_temperature must be a finite number >= 0, got -0\.5",
    ),
}


@pytest.mark.parametrize("bad", BAD_MIXTURE_CALLS, ids=str)
def test_the_mixture_base_refuses_bad_arguments(bad):
    call, error, message = BAD_MIXTURE_CALLS[bad]
    with pytest.raises(error, match=message):
        call()


def test_an_unconditional_mixture_base_ignores_a_context_but_checks_its_rows():
    # As the unconditional priors do, so that a base can stand in for another.
    mixture = GaussianMixtureBase(F, 0, components=3, scale=0.25)
    z = torch.randn(BATCH, F)
    ignored = torch.randn(BATCH, 7, dtype=torch.float64)
    torch.testing.assert_close(mixture.log_prob(z, ignored), mixture.log_prob(z, None))
    with pytest.raises(ValueError, match=r"context has 3 rows but the inputs have 2"):
        mixture.log_prob(z, torch.randn(BATCH + 1, C))


# ---------------------------------------------------------------------------------------------
# Constructors

CONSTRUCTORS = {
    "features 0": (lambda: SharedBijection(0), ValueError, r"features must be >= 1, got 0"),
    "features -1": (lambda: GlobalScale(-1), ValueError, r"features must be >= 1, got -1"),
    "features float": (
        lambda: SharedBijection(4.0),
        TypeError,
        r"features must be an int, got float \(4\.0\)",
    ),
    "features str": (
        lambda: FlowPrior("4"),
        TypeError,
        r"features must be an int, got str \('4'\)",
    ),
    "features bool": (lambda: GlobalScale(True), TypeError, r"features must be an int, got bool"),
    "coupling of 1": (
        lambda: AffineCoupling(1),
        ValueError,
        r"features >= 2 to split in two, got 1; use an elementwise",
    ),
    "coupling of 0": (lambda: AdditiveCoupling(0), ValueError, r"features must be >= 1, got 0"),
    "context -1": (
        lambda: AffineCoupling(4, -1),
        ValueError,
        r"context_features must be >= 0, got -1",
    ),
    "actnorm context float": (
        lambda: ConditionalActNorm(4, 2.0),
        TypeError,
        r"context_features must be an int",
    ),
    "residual context 0": (
        lambda: ConditionalResidualPrior(4, 0),
        ValueError,
        r"context_features must be >= 1, got 0",
    ),
    "gaussian context 0": (
        lambda: ConditionalGaussianPrior(4, 0),
        ValueError,
        r"context_features must be >= 1, got 0",
    ),
    "unknown coupling": (
        lambda: SharedBijection(4, coupling="spline"),
        ValueError,
        r"coupling must be 'additive' or 'affine', got 'spline'",
    ),
    "unknown scale": (
        lambda: AffineCoupling(4, scale="softmax"),
        ValueError,
        r"unknown scale activation 'softmax'; choose one of \['exp', 'sigmoid', 'softplus'\]",
    ),
    "unknown scale, unused": (
        lambda: SharedBijection(4, scale="softmax"),
        ValueError,
        r"unknown scale activation 'softmax'",
    ),
    "unknown prior scale, 1 feature": (
        lambda: FlowPrior(1, scale="tanh"),
        ValueError,
        r"unknown scale activation 'tanh'",
    ),
    "unknown actnorm scale": (
        lambda: ConditionalActNorm(4, 2, scale="relu"),
        ValueError,
        r"unknown scale activation 'relu'",
    ),
    "steps 0": (lambda: SharedBijection(4, steps=0), ValueError, r"steps must be >= 1, got 0"),
    "prior steps 0": (lambda: FlowPrior(4, steps=0), ValueError, r"steps must be >= 1, got 0"),
    "hidden 0": (
        lambda: AffineCoupling(4, hidden_features=0),
        ValueError,
        r"hidden_features must be >= 1, got 0",
    ),
    "hidden 0, 1 feature": (
        lambda: SharedBijection(1, hidden_features=0),
        ValueError,
        r"hidden_features must be >= 1, got 0",
    ),
    "hidden layers -1": (
        lambda: FlowPrior(4, hidden_layers=-1),
        ValueError,
        r"hidden_layers must be >= 0, got -1",
    ),
    "base scale 0": (
        lambda: FlowPrior(4, base_scale=0),
        ValueError,
        r"base_scale must be a finite number > 0, got 0",
    ),
    "base scale nan": (
        lambda: ConditionalGaussianPrior(4, 2, base_scale=float("nan")),
        ValueError,
        r"base_scale must be a finite number > 0, got nan",
    ),
    "base scale str": (
        lambda: FlowPrior(4, base_scale="0.25"),
        TypeError,
        r"base_scale must be a number, got str",
    ),
    "normal scale -1": (
        lambda: StandardNormalPrior(4, scale=-1.0),
        ValueError,
        r"scale must be a finite number > 0, got -1\.0",
    ),
    "1-feature flow without layers": (
        lambda: FlowPrior(1, actnorm=False),
        ValueError,
        r"actnorm=False would leave it without layers",
    ),
    "residual of a no-residual prior": (
        lambda: NoResidualPrior(3),
        ValueError,
        r"0-dim residual, got features=3",
    ),
    "unknown residual prior": (
        lambda: build_residual_prior("vamp", 4, 2),
        ValueError,
        r"unknown residual prior 'vamp'; choose one of \('flow', 'gaussian', 'standard', 'none'\)",
    ),
    "chain of mixed sizes": (
        lambda: Chain([GlobalScale(4), GlobalScale(5)]),
        ValueError,
        r"a Chain needs layers of one feature count, got sizes \{4, 5\}",
    ),
    "empty chain": (lambda: Chain([]), ValueError, r"a Chain needs at least one layer, got none"),
    "chain of a torch layer": (
        lambda: Chain([GlobalScale(4), torch.nn.Linear(4, 4)]),
        TypeError,
        r"Chain layers must be FlowTransforms .*got Linear at index 1",
    ),
    "chain of mixed contexts": (
        lambda: Chain([ConditionalActNorm(4, 2), ConditionalActNorm(4, 3)]),
        ValueError,
        r"a Chain needs layers of one context size, got sizes \{2, 3\}",
    ),
    "'none' with features": (
        lambda: build_residual_prior("none", 4, 2),
        ValueError,
        r"'none' means a 0-dim residual, but residual features = 4",
    ),
    "unknown shared prior": (
        lambda: build_shared_prior("laplace", 4),
        ValueError,
        r"unknown shared prior 'laplace'; choose one of \('uniform', 'gaussian', 'flow'\)",
    ),
}


@pytest.mark.parametrize("bad", CONSTRUCTORS, ids=str)
def test_bad_constructor_arguments_are_refused(bad):
    build, error, message = CONSTRUCTORS[bad]
    with pytest.raises(error, match=message):
        build()


# ---------------------------------------------------------------------------------------------
# A 1-D tensor: the hint names the dimension that is missing

ONE_FEATURE_CALLS = {
    "FlowPrior inputs": (
        lambda x: FlowPrior(1, steps=2, hidden_features=8).log_prob(x),
        "FlowPrior inputs",
    ),
    "ConditionalActNorm inputs": (
        lambda x: ConditionalActNorm(1, 0, 8)(x),
        "ConditionalActNorm inputs",
    ),
    "Chain inputs, inverse": (
        lambda x: FlowPrior(1, steps=2, hidden_features=8).transform.inverse(x),
        "Chain inputs",
    ),
    "mixture base z": (
        lambda x: GaussianMixtureBase(1, 0, components=2, scale=0.25).log_prob(x, None),
        "GaussianMixtureBase z",
    ),
    "context of a log-density": (
        lambda x: ConditionalResidualPrior(2, 1, steps=1).log_prob(torch.zeros(len(x), 2), x),
        "ConditionalResidualPrior context",
    ),
    "context of a sample": (
        lambda x: ConditionalResidualPrior(2, 1, steps=1).sample(3, x),
        "ConditionalResidualPrior context",
    ),
    "context of a layer": (
        lambda x: AffineCoupling(2, 1, 8)(torch.zeros(len(x), 2), x),
        "AffineCoupling context",
    ),
}


@pytest.mark.parametrize("call", ONE_FEATURE_CALLS)
def test_n_values_of_one_feature_are_told_to_add_the_feature_dimension(call):
    # [N] for a 1-feature module is N rows of one value, not one row: x[None] gives [1, N],
    # which fails again. The fix that works is named.
    run, name = ONE_FEATURE_CALLS[call]
    x = torch.randn(100)
    message = (
        rf"{name} must have shape \[batch, 1\], got \[100\]; add the feature dimension with "
        r"x\[:, None\] \(or x\.unsqueeze\(1\)\)"
    )
    with pytest.raises(ValueError, match=message):
        run(x)
    run(x[:, None])  # the hint works


def test_a_1d_tensor_that_is_no_single_vector_gets_no_batch_hint():
    # [100] for 4 features is neither one vector nor a column: no fix is guessed.
    with pytest.raises(ValueError, match=r"inputs must have shape \[batch, 4\], got \[100\]$"):
        FlowPrior(F, steps=1).log_prob(torch.randn(100))
    # One vector of the right size still gets the batch dimension hint.
    with pytest.raises(ValueError, match=r"got \[4\]; add a batch dimension with x\[None\]$"):
        FlowPrior(F, steps=1).log_prob(torch.randn(F))


# ---------------------------------------------------------------------------------------------
# Sampling options are keywords: nflows' third positional argument is batch_size


@pytest.mark.parametrize("name", ALL_PRIORS)
def test_sampling_options_are_keyword_only(name):
    prior = ALL_PRIORS[name]
    context = torch.zeros(BATCH, C)
    for method in (prior.sample, prior.sample_and_log_prob):
        # nflows' sample(num_samples, context, batch_size): here it would have been read as
        # a temperature of 100, silently.
        with pytest.raises(TypeError, match=r"positional argument"):
            method(10, context, 100)
        with pytest.raises(TypeError, match=r"positional argument"):
            method(10, context, 1.0, torch.Generator().manual_seed(0))
        parameters = inspect.signature(method).parameters
        for option in ("temperature", "generator", "component_temperature"):
            assert parameters[option].kind is inspect.Parameter.KEYWORD_ONLY
        method(2, context, temperature=0.5, generator=torch.Generator().manual_seed(0))


# ---------------------------------------------------------------------------------------------
# The exported single-normal base checks its arguments as the mixture base does

NORMAL = NormalBase(0.25, features=F)

BAD_NORMAL_CALLS = {
    "1-D z": (
        lambda: NORMAL.log_prob(Z[0], None),
        ValueError,
        r"NormalBase z must have shape \[batch, 4\], got \[4\]; add a batch dimension",
    ),
    "3-D z": (
        lambda: NORMAL.log_prob(torch.zeros(2, 3, F), None),
        ValueError,
        r"NormalBase z must have shape \[batch, 4\], got \[2, 3, 4\]",
    ),
    "z too wide": (
        lambda: NORMAL.log_prob(torch.zeros(BATCH, F + 2), None),
        ValueError,
        r"NormalBase z must have shape \[batch, 4\], got \[2, 6\]",
    ),
    "int z": (
        lambda: NORMAL.log_prob(torch.zeros(BATCH, F, dtype=torch.int64), None),
        TypeError,
        r"NormalBase z must be a floating-point tensor, got dtype torch\.int64",
    ),
    "list z": (lambda: NORMAL.log_prob([[0.0] * F], None), TypeError, r"must be a torch\.Tensor"),
    "context rows": (
        lambda: NORMAL.log_prob(Z, torch.zeros(BATCH + 1, C)),
        ValueError,
        r"NormalBase: the context has 3 rows but the inputs have 2",
    ),
    "NaN noise": (
        lambda: NORMAL.sample(torch.full((BATCH, F), float("nan")), None, 1.0),
        ValueError,
        r"NormalBase noise contains NaN or Inf values",
    ),
    "noise too narrow": (
        lambda: NORMAL.sample(torch.zeros(BATCH, F - 1), None, 1.0),
        ValueError,
        r"NormalBase noise must have shape \[batch, 4\], got \[2, 3\]",
    ),
    "negative temperature": (
        lambda: NORMAL.sample(Z, None, -1.0),
        ValueError,
        r"temperature must be a finite number >= 0, got -1\.0",
    ),
    "temperature str": (
        lambda: NORMAL.sample(Z, None, "hot"),
        TypeError,
        r"temperature must be a number, got str",
    ),
    "a component temperature": (
        lambda: NORMAL.sample(Z, None, 1.0, None, 0.5),
        ValueError,
        r"component_temperature tempers the choice of a mixture component, and a NormalBase "
        r"has one component; leave it None",
    ),
    "a seed for a generator": (
        lambda: NORMAL.sample(Z, None, 1.0, 7),
        TypeError,
        r"generator must be a torch\.Generator",
    ),
}


@pytest.mark.parametrize("bad", BAD_NORMAL_CALLS, ids=str)
def test_the_normal_base_refuses_bad_arguments(bad):
    call, error, message = BAD_NORMAL_CALLS[bad]
    with pytest.raises(error, match=message):
        call()


def test_the_normal_base_ignores_a_context_and_works_in_any_float_dtype():
    z = torch.randn(BATCH, F, dtype=torch.float64)
    ignored = torch.randn(BATCH, 7)
    torch.testing.assert_close(NORMAL.log_prob(z, ignored), NORMAL.log_prob(z, None))
    assert NORMAL.sample(z, ignored, 0.5).dtype == torch.float64
    # The flow prior's base knows its width.
    assert FlowPrior(3, steps=1).base.features == 3


# ---------------------------------------------------------------------------------------------
# build_residual_prior refuses an option the chosen kind would ignore

UNUSED_OPTIONS = {
    "standard": {
        "steps": 8,
        "hidden_features": 64,
        "base_scale": 0.5,
        "scale": "sigmoid",
        "components": 4,
    },
    "gaussian": {"steps": 8, "scale": "softplus", "components": 4},
    "none": {
        "steps": 8,
        "hidden_features": 64,
        "base_scale": 0.5,
        "scale": "sigmoid",
        "components": 4,
    },
}


@pytest.mark.parametrize(
    ("kind", "option"),
    [(kind, option) for kind, options in UNUSED_OPTIONS.items() for option in options],
)
def test_build_residual_prior_refuses_an_option_its_kind_does_not_use(kind, option):
    features = 0 if kind == "none" else F
    value = UNUSED_OPTIONS[kind][option]
    message = (
        rf"the {kind!r} residual prior does not use {option} \(got {value!r}\); leave it at "
        rf"its default"
    )
    with pytest.raises(ValueError, match=message):
        build_residual_prior(kind, features, C, **{option: value})
    # The default itself, given explicitly, is no option set: it is accepted.
    default = inspect.signature(build_residual_prior).parameters[option].default
    build_residual_prior(kind, features, C, **{option: default})


def test_the_standard_residual_prior_is_n_0_i():
    prior = build_residual_prior("standard", F, C)
    assert isinstance(prior, StandardNormalPrior) and prior.scale == 1.0
    # Every option the flow kind uses reaches it.
    flow = build_residual_prior(
        "flow", F, C, steps=2, hidden_features=8, base_scale=0.5, scale="sigmoid", components=3
    )
    assert (flow.steps, flow.base_scale, flow.base.components) == (2, 0.5, 3)
    assert flow.transform.layers[1].scale == "sigmoid"
    assert flow.transform.layers[1].net[0].out_features == 8
    gaussian = build_residual_prior("gaussian", F, C, hidden_features=8, base_scale=0.5)
    assert gaussian.base_scale == 0.5 and gaussian.net[0].out_features == 8


def test_a_collapsed_global_scale_stays_finite_both_ways():
    layer = GlobalScale(3)
    x = torch.randn(4, 3)
    with torch.no_grad():
        layer.log_scale_raw.fill_(-100.0)  # sigmoid(-95) = 6e-42: past float32's range
        y, logabsdet = layer(x)
        back, inverse_logabsdet = layer.inverse(y)
    assert torch.isfinite(y).all() and (y != 0).all()
    torch.testing.assert_close(back, x)
    torch.testing.assert_close(logabsdet, torch.full((4,), -90.0), rtol=1e-5, atol=0)
    torch.testing.assert_close(inverse_logabsdet, -logabsdet)
    # Above the floor the layer is what it always was.
    with torch.no_grad():
        layer.log_scale_raw.fill_(-20.0)
        torch.testing.assert_close(layer(x)[0], x * torch.sigmoid(torch.tensor(-15.0)))


def test_a_runaway_learned_log_variance_gives_finite_posterior_samples():
    encoded = EncoderOutput(
        torch.zeros(2, 3), torch.zeros(2, 2), torch.tensor([[200.0] * 5, [-200.0] * 5])
    )
    sample = sample_posterior(encoded, "learned", 0.05)
    for part in sample:
        assert torch.isfinite(part).all()

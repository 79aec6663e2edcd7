"""A ``Chain`` passes the halves of its input from coupling to coupling without merging them:
it must compute exactly what its layers compute one by one through their public calls."""

from __future__ import annotations

import copy

import pytest
import torch

from flowbridge.flows import (
    AdditiveCoupling,
    AffineCoupling,
    Chain,
    ConditionalActNorm,
    FlowPrior,
    GlobalScale,
    SharedBijection,
)

DTYPE = torch.float64


def _mixed(features: int, context: int) -> Chain:
    # Runs of 2, 1 and 2 couplings, split by elementwise layers, both flips, both kinds.
    return Chain(
        [
            AffineCoupling(features, context, 8, flip=False, scale="softplus"),
            AdditiveCoupling(features, context, 8, flip=True),
            GlobalScale(features),
            AffineCoupling(features, context, 8, hidden_layers=2, flip=True, scale="sigmoid"),
            ConditionalActNorm(features, context, 8),
            AffineCoupling(features, context, 8, flip=True),
            AffineCoupling(features, context, 8, flip=False),
        ]
    )


CHAINS = {
    "mixed, odd features": lambda: (_mixed(5, 3), 5, 3),
    "mixed, unconditional": lambda: (_mixed(4, 0), 4, 0),
    "FlowPrior without ActNorm": lambda: (
        FlowPrior(6, 2, steps=5, hidden_features=8, actnorm=False).transform,
        6,
        2,
    ),
    "SharedBijection, affine": lambda: (
        SharedBijection(7, steps=2, hidden_features=8, coupling="affine"),
        7,
        0,
    ),
}


def _realise(name: str):
    torch.manual_seed(0)
    chain, features, context_features = CHAINS[name]()
    chain = chain.to(DTYPE)
    with torch.no_grad():
        for parameter in chain.parameters():
            # Away from the zero initialisation, where every coupling is the identity.
            parameter.add_(0.5 * torch.randn_like(parameter))
    x = torch.randn(9, features, dtype=DTYPE)
    context = torch.randn(9, context_features, dtype=DTYPE) if context_features else None
    return chain, x, context


def _one_by_one(chain: Chain, x, context, inverse: bool):
    """Each layer's own public call, the output of one fed to the next."""
    terms = []
    for layer in reversed(chain.layers) if inverse else chain.layers:
        x, term = layer.inverse(x, context) if inverse else layer(x, context)
        terms.append(term)
    return x, torch.stack(terms).sum(dim=0)


@pytest.mark.parametrize("name", CHAINS)
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_a_chain_computes_what_its_layers_compute_one_by_one(name, inverse):
    chain, x, context = _realise(name)
    y, logabsdet = chain.inverse(x, context) if inverse else chain(x, context)
    expected_y, expected_logabsdet = _one_by_one(chain, x, context, inverse)
    # The same kernels on the same numbers, equal to float64's rounding: a chain hands a layer
    # its half as a strided view where the layer's own call slices a fresh tensor, and some
    # CPUs' kernels (AMD EPYC's AVX-512 path) round the two differently in the last bit.
    torch.testing.assert_close(y, expected_y, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(logabsdet, expected_logabsdet, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", CHAINS)
def test_a_chain_backpropagates_what_its_layers_do_one_by_one(name):
    chain, x, context = _realise(name)
    gradients = []
    for run in (lambda x: chain(x, context), lambda x: _one_by_one(chain, x, context, False)):
        chain.zero_grad()
        x_ = x.clone().requires_grad_(True)
        y, logabsdet = run(x_)
        (y.square().sum() + logabsdet.sum()).backward()
        gradients.append([x_.grad] + [p.grad for p in chain.parameters()])
    for ours, theirs in zip(*gradients, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-13, atol=1e-13)


def test_the_state_dict_keys_are_the_layers_own():
    prior = FlowPrior(4, 2, steps=2, hidden_features=8, hidden_layers=1, actnorm=False)
    assert list(prior.state_dict()) == [
        f"transform.layers.{i}.net.{j}.{kind}"
        for i in range(2)
        for j in (0, 2)
        for kind in ("weight", "bias")
    ]


def test_a_chain_takes_its_layers_from_a_generator():
    # The constructor's checks must not use the generator up before the layers are kept.
    chain = Chain(GlobalScale(3) for _ in range(2))
    assert len(chain.layers) == 2


def test_a_copied_chain_runs_its_own_layers():
    chain, x, context = _realise("mixed, odd features")
    before = chain(x, context)[0]
    twin = copy.deepcopy(chain)
    with torch.no_grad():
        for parameter in twin.parameters():
            parameter.mul_(2)
    assert not torch.equal(twin(x, context)[0], before)
    assert torch.equal(chain(x, context)[0], before)


# ---------------------------------------------------------------------------------------------
# Editing the layers after construction: a chain runs what ``chain.layers`` holds


def _composed(chain: Chain, x, context):
    y = x
    for layer in chain.layers:
        y = layer(y, context)[0]
    return y


EDITS = {
    "replace a coupling": lambda layers, new: layers.__setitem__(1, new()),
    "replace an elementwise layer": lambda layers, new: layers.__setitem__(
        2, ConditionalActNorm(5, 3, 8)
    ),
    "append": lambda layers, new: layers.append(new()),
    "insert": lambda layers, new: layers.insert(0, new()),
    "delete": lambda layers, new: layers.__delitem__(4),
    "extend": lambda layers, new: layers.extend([new(), GlobalScale(5)]),
}


@pytest.mark.parametrize("edit", EDITS)
def test_an_edited_chain_runs_its_new_layers(edit):
    chain, x, context = _realise("mixed, odd features")
    chain(x, context)  # run once before the edit, so anything it keeps is in place

    def new():
        coupling = AffineCoupling(5, 3, 8, flip=True).to(DTYPE)
        with torch.no_grad():
            for parameter in coupling.parameters():
                parameter.add_(0.5 * torch.randn_like(parameter))
        return coupling

    EDITS[edit](chain.layers, new)
    chain.to(DTYPE)
    y, logabsdet = chain(x, context)
    expected_y, expected_logabsdet = _one_by_one(chain, x, context, inverse=False)
    assert torch.equal(y, expected_y) and torch.equal(logabsdet, expected_logabsdet)
    x_back, inverse_logabsdet = chain.inverse(y, context)
    expected_x, expected_inverse = _one_by_one(chain, y, context, inverse=True)
    assert torch.equal(x_back, expected_x) and torch.equal(inverse_logabsdet, expected_inverse)
    assert torch.equal(chain._invert(y, context), x_back)
    torch.testing.assert_close(x_back, x, rtol=1e-9, atol=1e-9)


def test_an_edited_chain_saves_and_loads_as_the_model_it_runs():
    # The state_dict always held the new layer; the chain now runs it too, so a reload
    # reproduces the model in memory.
    chain, x, context = _realise("mixed, odd features")
    chain(x, context)
    chain.layers[0] = AffineCoupling(5, 3, 8, flip=True, scale="softplus").to(DTYPE)
    with torch.no_grad():
        chain.layers[0].net[-1].weight.normal_()
    twin = _realise("mixed, odd features")[0]
    twin.layers[0] = AffineCoupling(5, 3, 8, flip=True, scale="softplus").to(DTYPE)
    twin.load_state_dict(chain.state_dict())
    assert torch.equal(twin(x, context)[0], chain(x, context)[0])
    assert torch.equal(chain(x, context)[0], _composed(chain, x, context))


def test_the_flow_prior_and_the_shared_bijection_run_their_edited_layers():
    torch.manual_seed(0)
    prior = FlowPrior(4, 2, steps=2, hidden_features=8)
    x, context = torch.randn(6, 4), torch.randn(6, 2)
    before = prior.log_prob(x, context)
    coupling = AffineCoupling(4, 2, 8, flip=True)
    with torch.no_grad():
        coupling.net[-1].weight.normal_()
    prior.transform.layers[1] = coupling
    noise, logabsdet = _one_by_one(prior.transform, x, context, inverse=False)
    expected = prior.base.log_prob(noise, context) + logabsdet
    assert torch.equal(prior.log_prob(x, context), expected)
    assert not torch.equal(expected, before)
    # Sampling inverts the new layers too.
    samples = prior.sample(1, context, generator=torch.Generator().manual_seed(0))[:, 0]
    drawn = torch.randn(6, 4, generator=torch.Generator().manual_seed(0)) * prior.base_scale
    torch.testing.assert_close(samples, _one_by_one(prior.transform, drawn, context, True)[0])

    f = SharedBijection(4, steps=1, hidden_features=8)
    f.layers.append(GlobalScale(4))
    with torch.no_grad():
        f.layers[-1].log_scale_raw.fill_(-5.0)  # scale sigmoid(0) = 1/2
    torch.testing.assert_close(f(x)[0], _composed(f, x, None))
    assert len(f.layers) == 6


EDITS_REFUSED = {
    "another width": (
        lambda layers: layers.append(GlobalScale(6)),
        ValueError,
        r"edited after it was built, and a Chain needs layers of one feature count, "
        r"got sizes \{5, 6\}",
    ),
    "another context": (
        lambda layers: layers.append(ConditionalActNorm(5, 4, 8)),
        ValueError,
        r"edited after it was built, and a Chain needs layers of one context size, "
        r"got sizes \{3, 4\}",
    ),
    "a torch layer": (
        lambda layers: layers.append(torch.nn.Linear(5, 5)),
        TypeError,
        r"edited after it was built, and Chain layers must be FlowTransforms .*got Linear "
        r"at index 7",
    ),
    "no layers": (
        lambda layers: [layers.__delitem__(0) for _ in range(len(layers))],
        ValueError,
        r"edited after it was built, and a Chain needs at least one layer, got none",
    ),
}


@pytest.mark.parametrize("edit", EDITS_REFUSED)
def test_an_edit_that_breaks_the_chain_is_refused_when_it_runs(edit):
    chain, x, context = _realise("mixed, odd features")
    change, error, message = EDITS_REFUSED[edit]
    change(chain.layers)
    for call in (chain, chain.inverse, chain._invert):
        with pytest.raises(error, match=message):
            call(x, context)


def test_an_unconditional_chain_refuses_a_conditional_layer_added_later():
    chain = Chain([GlobalScale(3)])
    chain.layers.append(ConditionalActNorm(3, 2, 8))
    message = r"edited after it was built into layers of 3 features and context size 2, but "
    with pytest.raises(ValueError, match=message + r"it was built for 3 and 0; build a new"):
        chain(torch.randn(4, 3), torch.randn(4, 2))


# ---------------------------------------------------------------------------------------------
# Every layer's log-determinant is an ordinary tensor of its own


LAYERS = {
    "GlobalScale": lambda: GlobalScale(4),
    "ConditionalActNorm": lambda: ConditionalActNorm(4, 0, 8),
    "ConditionalActNorm-conditional": lambda: ConditionalActNorm(4, 2, 8),
    "AffineCoupling": lambda: AffineCoupling(4, 2, 8),
    "AdditiveCoupling": lambda: AdditiveCoupling(4, 2, 8),
    "Chain": lambda: Chain([GlobalScale(4), AffineCoupling(4, 2, 8)]),
}


@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_a_layers_logabsdet_can_be_added_to_in_place(name, inverse):
    # The usual accumulation of a hand-written flow loop; an expanded (stride-0) tensor, as
    # GlobalScale once returned, makes torch refuse the in-place add.
    layer = LAYERS[name]()
    x, context = torch.randn(3, 4), torch.randn(3, 2)
    _, logabsdet = layer.inverse(x, context) if inverse else layer(x, context)
    expected = logabsdet.clone() + 1.0
    logabsdet += torch.ones(3)
    assert torch.equal(logabsdet, expected)

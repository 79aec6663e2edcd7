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
    # The same kernels on the same numbers: bit for bit.
    assert torch.equal(y, expected_y)
    assert torch.equal(logabsdet, expected_logabsdet)


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

import torch

from flowbridge.flows import ConditionalResidualPrior, SharedBijection


def test_shared_bijection_round_trip():
    f = SharedBijection(features=6, steps=2, hidden_features=16).double()
    x = torch.randn(5, 6, dtype=torch.float64)
    y, logabsdet = f(x)
    x_back, inverse_logabsdet = f.inverse(y)
    torch.testing.assert_close(x_back, x)
    torch.testing.assert_close(inverse_logabsdet, -logabsdet)


def test_residual_prior_sample_shape():
    prior = ConditionalResidualPrior(features=4, context_features=3, steps=2)
    assert prior.sample(7, torch.randn(5, 3)).shape == (5, 7, 4)

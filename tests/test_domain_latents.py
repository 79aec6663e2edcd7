"""The latent layout every domain shares: LatentSpec.encoder_features and
EncoderOutput.from_flat, the split of an encoder's flat output."""

from __future__ import annotations

import pytest
import torch

from flowbridge.domain import EncoderOutput, LatentSpec


def test_a_flat_output_splits_into_shared_residual_and_log_variance():
    spec = LatentSpec(shared=3, residual=2)
    assert spec.encoder_features == 5
    h = torch.arange(10.0).reshape(2, 5)
    out = EncoderOutput.from_flat(h, spec)
    assert out.shared.tolist() == [[0, 1, 2], [5, 6, 7]]
    assert out.residual.tolist() == [[3, 4], [8, 9]] and out.log_var is None

    learned = LatentSpec(shared=3, residual=2, learned_variance=True)
    assert learned.encoder_features == 10
    out = EncoderOutput.from_flat(torch.arange(20.0).reshape(2, 10), learned)
    assert out.shared.tolist()[0] == [0, 1, 2] and out.residual.tolist()[0] == [3, 4]
    assert out.log_var.tolist()[0] == [5, 6, 7, 8, 9]  # one per latent dimension, after them

    # No residual: an empty [batch, 0] part, as the bridge expects of a deterministic domain.
    assert EncoderOutput.from_flat(torch.zeros(4, 3), LatentSpec(3, 0)).residual.shape == (4, 0)


@pytest.mark.parametrize("shape", [(2, 4), (2, 6), (5,), (2, 5, 1)])
def test_a_flat_output_of_another_width_is_refused_with_the_width_expected(shape):
    with pytest.raises(ValueError, match=r"must have shape \[batch, 5\] .* got \["):
        EncoderOutput.from_flat(torch.zeros(shape), LatentSpec(shared=3, residual=2))

"""A minimal domain for the core's tests: real-valued vectors, MLP encoder and decoder.

Two instances with different names make a two-domain bridge without any plugin installed.
"""

from __future__ import annotations

import torch
from torch import nn

from flowbridge.domain import Domain, EncoderOutput, LatentSpec
from flowbridge.files import suffixed


class VectorEncoder(nn.Module):
    def __init__(self, features: int, spec: LatentSpec, hidden: int):
        super().__init__()
        self.spec = spec
        self.net = nn.Sequential(
            nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, spec.encoder_features)
        )

    def forward(self, x):
        return EncoderOutput.from_flat(self.net(x), self.spec)


class VectorDecoder(nn.Module):
    def __init__(self, features: int, spec: LatentSpec, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(spec.total, hidden), nn.ReLU(), nn.Linear(hidden, features)
        )

    def forward(self, shared, residual, x=None):
        return self.net(torch.cat((shared, residual), dim=1))


class VectorDomain(Domain):
    """Vectors in R^features; Gaussian reconstruction loss (summed squared error / 2)."""

    name = "vector"
    default_residual_features = 2

    def __init__(self, features: int = 4, hidden: int = 32):
        self.features, self.hidden = features, hidden
        self.options = {"features": features, "hidden": hidden}

    def build_encoder(self, spec):
        return VectorEncoder(self.features, spec, self.hidden)

    def build_decoder(self, spec):
        return VectorDecoder(self.features, spec, self.hidden)

    def reconstruction_loss(self, output, x):
        return 0.5 * (output - x).square().sum(dim=1)

    def generate(self, decoder, shared, residual, **options):
        return list(decoder(shared, residual).detach().unbind(0))

    def collate(self, items):
        return torch.stack([torch.as_tensor(item, dtype=torch.float32) for item in items])

    def example_batch(self, n, generator):
        return torch.randn(n, self.features, generator=generator)

    def read_item(self, source):
        try:
            return torch.tensor([float(v) for v in source.split(",")])
        except ValueError:
            raise ValueError(f"cannot read a vector from {source!r}: expected 'a,b,c'") from None

    def write_items(self, items, path):
        path = suffixed(path, ".txt")
        lines = [" | ".join(",".join(f"{v:.3f}" for v in s.tolist()) for s in row) for row in items]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


class VectorCritic(nn.Module):
    """A discriminator ``(x [batch, features], shared [batch, d_s]) -> score [batch]``."""

    def __init__(self, features: int, spec: LatentSpec, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features + spec.shared, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, x, shared):
        return self.net(torch.cat((x, shared), dim=1)).squeeze(1)


class CriticVectorDomain(VectorDomain):
    """A VectorDomain with a discriminator; its decoder output already is a batch."""

    name = "critic-vector"

    def build_discriminator(self, spec):
        return VectorCritic(self.features, spec, self.hidden)

    def output_to_batch(self, output):
        return output


def make_domain_class(name: str) -> type[VectorDomain]:
    """A VectorDomain subclass registered under another name (for a second domain)."""
    return type(f"VectorDomain_{name}", (VectorDomain,), {"name": name})

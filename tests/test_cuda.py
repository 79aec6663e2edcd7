"""The GPU path: priors, training, checkpoints, resume and translation on CUDA.

Skipped where torch sees no CUDA device (CI has none). On a GPU machine::

    pytest tests/test_cuda.py plugins/shapes/tests/test_shapes_devices.py

What must hold there: a seed gives the same samples on the GPU as on the CPU (the noise is
drawn on the generator's device, so a CPU generator seeds a model on the GPU too), a run
trained on the GPU reloads on the CPU and translates alike, and resuming on the GPU continues
the run as if it had not stopped (the CUDA RNG state is checkpointed with the rest).
"""

from __future__ import annotations

import pytest
import torch
from test_training_support import (  # noqa: F401
    parameters,
    plugin,
    toy_config,
    toy_settings,
    toy_split,
)

from flowbridge import load_run_config
from flowbridge.checkpoint import load_bridge, load_checkpoint
from flowbridge.flows import build_residual_prior, build_shared_prior
from flowbridge.training import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")
PRIORS = {
    "flow": lambda: build_residual_prior("flow", 3, 4, steps=2, hidden_features=16),
    "flow-mixture": lambda: build_residual_prior(
        "flow", 3, 4, steps=2, hidden_features=16, components=4
    ),
    "gaussian": lambda: build_residual_prior("gaussian", 3, 4, hidden_features=16),
    "standard": lambda: build_residual_prior("standard", 3, 4),
    "shared-flow": lambda: build_shared_prior("flow", 3, steps=2, hidden_features=16),
}


def _perturbed(build):
    """A prior whose zero-initialised layers are moved off zero (else every flow is near the
    identity and a device mismatch could hide), in float64 so CPU and GPU agree closely."""
    torch.manual_seed(0)
    prior = build().double()
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return prior


@pytest.mark.parametrize("name", sorted(PRIORS))
@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_a_seed_samples_alike_on_cpu_and_cuda(name, temperature):
    cpu = _perturbed(PRIORS[name])
    gpu = _perturbed(PRIORS[name]).to(CUDA)
    context = None if name.startswith("shared") else torch.randn(5, 4, dtype=torch.float64)

    def draw(prior, generator, device="cpu"):
        on = None if context is None else context.to(device)
        return prior.sample(3, on, temperature=temperature, generator=generator)

    expected = draw(cpu, torch.Generator().manual_seed(7))
    # A CPU generator seeds the GPU model: same noise, same samples (to float rounding).
    from_cpu_seed = draw(gpu, torch.Generator().manual_seed(7), CUDA)
    assert from_cpu_seed.device.type == "cuda"
    torch.testing.assert_close(from_cpu_seed.cpu(), expected, rtol=1e-9, atol=1e-9)
    # A CUDA generator works too (its own stream of numbers), reproducibly.
    own = draw(gpu, torch.Generator(CUDA).manual_seed(7), CUDA)
    torch.testing.assert_close(own, draw(gpu, torch.Generator(CUDA).manual_seed(7), CUDA))
    flat = expected.reshape(-1, expected.shape[-1])
    flat_context = None if context is None else context.repeat_interleave(3, dim=0)
    log_prob = cpu.log_prob(flat, flat_context)
    on_gpu = gpu.log_prob(flat.to(CUDA), None if context is None else flat_context.to(CUDA))
    torch.testing.assert_close(on_gpu.cpu(), log_prob, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("component_temperature", [1.0, 0.0])
def test_a_component_temperature_samples_alike_on_cpu_and_cuda(component_temperature):
    cpu = _perturbed(PRIORS["flow-mixture"])
    gpu = _perturbed(PRIORS["flow-mixture"]).to(CUDA)
    context = torch.randn(5, 4, dtype=torch.float64)

    def draw(prior, device="cpu"):
        generator = torch.Generator().manual_seed(7)
        return prior.sample(
            3,
            context.to(device),
            temperature=0.5,
            generator=generator,
            component_temperature=component_temperature,
        )

    torch.testing.assert_close(draw(gpu, CUDA).cpu(), draw(cpu), rtol=1e-9, atol=1e-9)


@pytest.mark.usefixtures("plugin")
def test_a_run_on_cuda_reloads_on_the_cpu_and_translates_alike(tmp_path):
    result = Trainer(toy_config(tmp_path, steps=30, validate_every=10, device="cuda")).run()
    assert result.bridge.device.type == "cuda"
    assert all(p.device.type == "cuda" for p in result.bridge.parameters())
    checkpoint = load_checkpoint(result.checkpoint)  # weights_only=True, onto the CPU
    assert checkpoint["step"] == 30
    assert all(t.device.type == "cpu" for t in checkpoint["model"].values())
    on_cpu = load_bridge(result.checkpoint)
    inputs = toy_split(4, seed=9).a

    def outputs(bridge, candidates=1):
        generator = torch.Generator().manual_seed(1)
        rows = bridge.translate(
            inputs, "vector", samples=3, generator=generator, candidates=candidates
        )
        return torch.stack([torch.stack(row) for row in rows]).cpu()

    torch.testing.assert_close(outputs(result.bridge), outputs(on_cpu), rtol=1e-4, atol=1e-5)
    on_gpu = load_bridge(result.checkpoint, map_location="cuda")
    torch.testing.assert_close(outputs(on_gpu), outputs(result.bridge), rtol=0, atol=0)
    # The best of several candidates is scored on the GPU and picks the CPU's choice.
    torch.testing.assert_close(outputs(on_gpu, 3), outputs(on_cpu, 3), rtol=1e-4, atol=1e-5)


@pytest.mark.usefixtures("plugin")
def test_half_a_run_on_cuda_plus_resume_equals_the_straight_run(tmp_path):
    # Posterior noise and the density contrast's negatives are drawn from the CUDA RNG:
    # resuming must restore its state too. The run averages its weights (the average lives on
    # the GPU and resumes with the run).
    settings = dict(
        device="cuda", checkpoint_every=3, log_every=1, paired_fraction=0.5, ema_decay=0.5
    )

    def config(out, steps):
        run = toy_settings(out, steps=steps, **settings)
        run["model"].update(weights={"prior_nce_a": 1.0}, prior_nce_negatives=3)
        return load_run_config(run)

    straight = Trainer(config(tmp_path / "straight", 8)).run()
    Trainer(config(tmp_path / "halves", 4)).run()
    resumed = Trainer(config(tmp_path / "halves", 8), resume=True).run()
    expected, actual = parameters(straight.bridge), parameters(resumed.bridge)
    assert actual.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=1e-6, msg=key)

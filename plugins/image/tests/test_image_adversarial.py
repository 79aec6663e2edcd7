"""Text → image with the projection discriminator trained by the bridge: the original
text-to-image set-up in miniature, through the trainer, a checkpoint and a resume."""

from __future__ import annotations

import pytest
import torch

import flowbridge_image.plugin
from flowbridge import plugins
from flowbridge.checkpoint import load_bridge, load_checkpoint
from flowbridge.config import load_run_config
from flowbridge.domain import PairedSplit
from flowbridge.training import Trainer
from flowbridge_image import ImageDomain, ProjectionDiscriminator

text_plugin = pytest.importorskip("flowbridge_text.plugin")

IMAGE = {"size": 16, "channels": 1, "hidden": 4, "adversarial": True}
TEXT = {"embedding": 8, "hidden": 8, "decoder_hidden": 8, "layers": 1, "max_length": 6}


def pairs(n: int = 12) -> PairedSplit:
    images = ImageDomain(**IMAGE).example_batch(n, torch.Generator().manual_seed(3))
    words = ("red", "green", "blue")
    captions = [f"a {words[i % 3]} blob" for i in range(n)]
    return PairedSplit(captions, list(images))


def config(out, steps: int):
    return load_run_config(
        {
            "domains": {
                "a": {"name": "text", "options": TEXT | {"min_count": 1}},
                "b": {"name": "image", "options": IMAGE},
            },
            "model": {
                "shared_features": 4,
                "residual_a": 2,
                "residual_b": 3,
                "shared_steps": 2,
                "shared_hidden": 8,
                "residual_steps": 1,
                "residual_hidden": 8,
                "weights": {"adversarial": 10.0},
            },
            "train": {
                "steps": steps,
                "batch_size": 4,
                "log_every": 1,
                "checkpoint_every": 2,
                "out": str(out),
                "progress": False,
            },
        }
    )


@pytest.fixture
def registered():
    with plugins.isolated(flowbridge_image.plugin, text_plugin):
        yield


@pytest.mark.usefixtures("registered")
def test_text_to_image_trains_the_critic_and_resumes_exactly(tmp_path):
    trainer = Trainer(config(tmp_path / "straight", 4), pairs())
    critic = {
        k: p.detach().clone() for k, p in trainer.bridge.discriminators["b"].named_parameters()
    }
    straight = trainer.run()
    # The critic learnt: its parameters moved (not only its spectral norm's power-iteration
    # buffers, which move in any forward pass), as its own Adam stepped them.
    trained = dict(straight.bridge.discriminators["b"].named_parameters())
    assert any(not torch.equal(trained[k], v) for k, v in critic.items())
    assert isinstance(straight.bridge.discriminators["b"], ProjectionDiscriminator)
    assert "a" not in straight.bridge.discriminators
    for key in ("adversarial", "adversarial_b", "critic", "critic_b", "critic_grad_norm"):
        assert torch.isfinite(torch.tensor(straight.terms[key])), key

    out = tmp_path / "halves"
    Trainer(config(out, 2), pairs()).run()
    resumed = Trainer(config(out, 4), pairs(), resume=True).run()
    expected = straight.bridge.state_dict()
    assert any(key.startswith("discriminators.b.") for key in expected)
    for key, value in resumed.bridge.state_dict().items():
        assert torch.equal(value, expected[key]), key
    saved = load_checkpoint(resumed.checkpoint)["critic_optimizer"]
    assert saved["param_groups"][0]["lr"] == 3e-4

    # The critic travels with the model; translation does not need it.
    reloaded = load_bridge(resumed.checkpoint)
    bias = "discriminators.b.linear.bias"
    assert torch.equal(reloaded.state_dict()[bias], expected[bias])
    (images,) = reloaded.translate(["a red blob"], "text", samples=2)
    assert len(images) == 2 and all(image.shape == (1, 16, 16) for image in images)

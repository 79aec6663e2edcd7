"""The testbed on each device: a run trains, evaluates and translates reproducibly on the CPU
and on CUDA (skipped without a GPU).

The testbed seeds its samples with CPU generators; on a GPU the noise is drawn on the CPU
and moved, so its evaluation runs unchanged and a seed repeats. One generator seeds the whole
output: the latents and the text decoder's word sampling alike.
"""

import pytest
import torch

import flowbridge.plugins as plugins
from flowbridge import train
from flowbridge_image import plugin as image_plugin
from flowbridge_shapes import plugin as shapes_plugin
from flowbridge_shapes.dataset import ShapesDataset
from flowbridge_shapes.experiment import evaluate, run_config
from flowbridge_text import plugin as text_plugin

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    ),
]


@pytest.mark.parametrize("device", DEVICES)
def test_a_testbed_run_evaluates_and_samples_reproducibly(device, tmp_path):
    with plugins.isolated(image_plugin, text_plugin, shapes_plugin):
        data = {"options": {"train_size": 40, "seed": 0}}
        config = run_config(
            "lnfmm",  # the mixture base: its component draw is seeded too
            str(tmp_path),
            data=data,
            train={"steps": 3, "checkpoint_every": 0, "progress": False, "device": device},
        )
        bridge = train(config).bridge
        assert bridge.device.type == device
        test = ShapesDataset(**data["options"]).split("test")
        first = evaluate(bridge, test, samples=3, inputs=4, seed=2, ceilings=False)
        again = evaluate(bridge, test, samples=3, inputs=4, seed=2, ceilings=False)
        assert first["outputs"]["captions"] == again["outputs"]["captions"]
        for row, row_again in zip(
            first["outputs"]["images"], again["outputs"]["images"], strict=True
        ):
            for image, image_again in zip(row, row_again, strict=True):
                # Equal up to float rounding: on a GPU, cuDNN's transposed convolutions may sum
                # in a different order from call to call.
                torch.testing.assert_close(image, image_again, rtol=1e-5, atol=1e-5)
        # Word sampling draws from the generator too (a CPU one, whatever the model's device).
        images = [test.a[i] for i in range(2)]

        def sampled(seed, **options):
            generator = torch.Generator().manual_seed(seed)
            return bridge.translate(
                images, "image", samples=2, generator=generator, method="sample", **options
            )

        assert sampled(5) == sampled(5) != sampled(6)
        assert all(isinstance(c, str) for row in sampled(5) for c in row)
        # The words' own temperature reaches the decoder (translate's is the residuals'): near
        # 0 each word is the most likely one, as greedy decoding of the same latents picks.
        greedy = bridge.translate(
            images, "image", samples=2, generator=torch.Generator().manual_seed(5)
        )
        assert sampled(5, word_temperature=1e-4) == greedy

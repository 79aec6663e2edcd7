"""The README's Python examples run as printed: the first code a user copies must work.

Each ```python block of "Using it on your own data" is executed in one namespace, in order,
with the names it leaves to the reader (``my_images``...) bound to small made-up data. The only
edits are the step count (2 instead of the printed 2,000) and METEOR left out, so the test
stays fast.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

import flowbridge.metrics.captions as captions_module
import flowbridge.plugins as plugins
from flowbridge_image import plugin as image_plugin
from flowbridge_text import plugin as text_plugin

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("## Using it on your own data", 1)[1].split("\n## ", 1)[0]
BLOCKS = re.findall(r"^```python\n(.*?)^```$", SECTION, flags=re.MULTILINE | re.DOTALL)
PRINTED_STEPS = '"steps": 2000'

WORDS = ["red", "green", "blue", "circle", "square", "small", "large", "at", "the", "top"]


def _captions(n: int, generator: torch.Generator) -> list[str]:
    lengths = torch.randint(2, 6, (n,), generator=generator).tolist()
    picks = [torch.randint(len(WORDS), (k,), generator=generator).tolist() for k in lengths]
    return ["a " + " ".join(WORDS[i] for i in pick) for pick in picks]


def test_the_section_has_the_examples_this_test_runs():
    assert len(BLOCKS) == 2
    assert BLOCKS[0].count(PRINTED_STEPS) == 1


def test_the_own_data_examples_run_as_printed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the example writes runs/mine
    # METEOR starts Java for ~8 s; tests/test_metrics_captions.py covers it.
    monkeypatch.setattr(captions_module, "meteor_unavailable", lambda: "not in this test")
    generator = torch.Generator().manual_seed(0)
    namespace = {
        "my_images": list(torch.rand(64, 3, 32, 32, generator=generator)),
        "my_captions": _captions(64, generator),
        "my_test_images": list(torch.rand(3, 3, 32, 32, generator=generator)),
        "my_reference_captions": [_captions(2, generator) for _ in range(3)],
        # (diversity, accuracy) per temperature, as the comment in the example describes
        "curve_a": [(0.2, 0.9), (0.5, 0.8), (0.8, 0.6)],
        "curve_b": [(0.3, 0.7), (0.6, 0.5), (0.9, 0.2)],
    }
    with plugins.isolated(image_plugin, text_plugin):
        exec(BLOCKS[0].replace(PRINTED_STEPS, '"steps": 2'), namespace)
        exec(BLOCKS[1], namespace)

    assert (tmp_path / "runs" / "mine" / "checkpoint.pt").is_file()
    captions, images = namespace["captions"], namespace["images"]
    assert len(captions) == 3 and all(len(row) == 10 for row in captions)
    assert all(isinstance(caption, str) for row in captions for caption in row)
    assert len(images) == 1 and len(images[0]) == 10
    assert all(image.shape == (3, 32, 32) for image in images[0])
    scores, diversity = namespace["scores"], namespace["diversity"]
    assert {"BLEU-4", "CIDEr-D"} <= set(scores["best"]) & set(scores["mean"])
    assert set(diversity) == {"div-2", "unique", "self-cider"}
    assert 0 < diversity["div-2"] <= 1 and 0 < diversity["unique"] <= 1
    # The two made-up curves overlap between diversities 0.3 and 0.8.
    assert [diversity for diversity, _ in namespace["gaps"]] == [0.3, 0.5, 0.6, 0.8]

"""Progress bars where a person watches: a terminal or a Jupyter notebook's cell (whose
stderr is no terminal), none into a file or a pipe, and no warning from tqdm on import."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from test_training_support import plugin, toy_settings  # noqa: F401 (fixture)

from flowbridge.config import load_run_config
from flowbridge.training import train

pytestmark = pytest.mark.usefixtures("plugin")


class KernelStream(io.StringIO):
    """What a Jupyter kernel makes of ``sys.stderr``: ipykernel's stream, no terminal."""


KernelStream.__module__ = "ipykernel.iostream"


def run_with_stderr(tmp_path, monkeypatch, stream: io.StringIO) -> str:
    monkeypatch.setattr("tqdm.notebook.IProgress", None)  # the text bar, ipywidgets or not
    settings = toy_settings(tmp_path, steps=5)
    settings["train"]["progress"] = True
    monkeypatch.setattr(sys, "stderr", stream)
    assert train(load_run_config(settings)).step == 5
    return stream.getvalue()


def test_a_run_in_a_notebook_shows_its_bar(tmp_path, monkeypatch):
    shown = run_with_stderr(tmp_path, monkeypatch, KernelStream())
    assert "train: 100%" in shown and "5/5" in shown


def test_a_run_into_a_file_or_pipe_shows_none(tmp_path, monkeypatch):
    assert run_with_stderr(tmp_path, monkeypatch, io.StringIO()) == ""


def test_importing_the_training_and_plugins_leaves_tqdm_auto_alone():
    # tqdm.auto, imported in a Jupyter kernel without ipywidgets, warns "IProgress not
    # found" at once, before any bar is drawn.
    code = (
        "import sys, flowbridge.training, flowbridge_coco.sampling, flowbridge_coco.consensus, "
        "flowbridge_shapes.side_by_side; print('tqdm.autonotebook' in sys.modules)"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"

"""Checkpoints: atomic writes, safe loading, clear errors for files that are not ours."""

from __future__ import annotations

import math
import os
import re
import struct
import zipfile

import numpy as np
import pytest
import torch
from test_training_support import (  # noqa: F401 (fixtures)
    COLOURS,
    plugin,
    toy_settings,
)
from toy_domains import VectorDomain

from flowbridge.bridge import Bridge
from flowbridge.checkpoint import (
    CHECKPOINT_VERSION,
    CheckpointError,
    check_savable,
    load_bridge,
    load_checkpoint,
    save_bridge,
    save_checkpoint,
)
from flowbridge.config import BridgeConfig, load_run_config
from flowbridge.files import atomic_write
from flowbridge.plugins import PluginError, register, unregister
from flowbridge.training import Trainer, train

pytestmark = pytest.mark.usefixtures("plugin")


def words_config(out, **train):
    settings = toy_settings(out, **train)
    settings["data"] = {"dataset": "toy-words"}
    settings["domains"] = {"a": {"name": "words"}, "b": {"name": "vector"}}
    return load_run_config(settings)


@pytest.fixture
def words_checkpoint(tmp_path):
    return train(words_config(tmp_path / "run", steps=3)).checkpoint


def test_atomic_write_replaces_whole_files_or_nothing(tmp_path):
    path = tmp_path / "sub" / "file.bin"
    atomic_write(path, lambda f: f.write(b"old"))
    assert path.read_bytes() == b"old"

    def fail_halfway(file):
        file.write(b"new but incomplete")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full") as caught:
        atomic_write(path, fail_halfway)
    if hasattr(caught.value, "__notes__"):  # the file the full disk stopped (Python >= 3.11)
        assert caught.value.__notes__ == [f"(writing {path})"]
    assert path.read_bytes() == b"old"
    assert os.listdir(path.parent) == ["file.bin"]  # no temporary file left behind
    # A file where a folder belongs, or a folder where the file belongs, is named.
    with pytest.raises(NotADirectoryError, match=r"'.*file\.bin' is a file, not a directory"):
        atomic_write(path / "deeper" / "x.bin", lambda f: f.write(b"x"))
    with pytest.raises(IsADirectoryError, match=r"'.*sub': it is a directory"):
        atomic_write(path.parent, lambda f: f.write(b"x"))
    assert os.listdir(path.parent) == ["file.bin"]


def test_the_fitted_vocabulary_travels_with_the_model(words_checkpoint):
    checkpoint = load_checkpoint(words_checkpoint)
    record = checkpoint["domains"]["a"]
    assert record["name"] == "words" and record["state"] == {"vocabulary": list(COLOURS)}
    assert checkpoint["run"]["data"]["dataset"] == "toy-words"
    bridge = load_bridge(words_checkpoint)
    assert bridge.domains["a"].vocabulary == list(COLOURS)
    outputs = bridge.translate([torch.tensor([0.0, 0.0, 1.0, 0.3])], "vector", samples=4)
    assert len(outputs[0]) == 4 and set(outputs[0]) <= set(COLOURS)
    images = bridge.translate(["red", "blue"], "words", samples=2)
    assert [len(row) for row in images] == [2, 2]


def test_save_bridge_round_trips_a_model_without_training_state(tmp_path, words_checkpoint):
    bridge = load_bridge(words_checkpoint)
    path = save_bridge(bridge, tmp_path / "model.pt")
    checkpoint = load_checkpoint(path)
    assert checkpoint["run"] is None and checkpoint["optimizer"] is None
    again = load_bridge(path)
    for key, value in bridge.state_dict().items():
        assert torch.equal(value, again.state_dict()[key])
    # A bare model cannot be resumed as a run.
    out = tmp_path / "bare"
    out.mkdir()
    os.replace(path, out / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="not resumed"):
        Trainer(words_config(out, steps=4), resume=True)


def test_save_bridge_writes_into_a_directory_as_load_bridge_reads_one(tmp_path, words_checkpoint):
    bridge = load_bridge(words_checkpoint)
    (tmp_path / "existing").mkdir()
    assert save_bridge(bridge, tmp_path / "existing") == tmp_path / "existing" / "checkpoint.pt"
    # A path ending in a separator names a directory, made if needed (not a file "new").
    written = save_bridge(bridge, f"{tmp_path / 'new'}{os.sep}")
    assert written == tmp_path / "new" / "checkpoint.pt"
    assert load_bridge(tmp_path / "new").config == bridge.config


def test_save_bridge_does_not_end_a_run_by_writing_over_its_checkpoint(tmp_path, words_checkpoint):
    bridge = load_bridge(words_checkpoint)
    before = words_checkpoint.read_bytes()
    for target in (words_checkpoint, words_checkpoint.parent):
        with pytest.raises(FileExistsError, match=r"is a training run's checkpoint"):
            save_bridge(bridge, target)
    assert words_checkpoint.read_bytes() == before
    # A model alone, or any other file, is replaced as a save replaces files.
    model = save_bridge(bridge, tmp_path / "model.pt")
    assert save_bridge(bridge, model) == model
    (tmp_path / "notes.pt").write_text("not a checkpoint", encoding="utf-8")
    save_bridge(bridge, tmp_path / "notes.pt")
    assert load_bridge(tmp_path / "notes.pt").config == bridge.config


def _edited(checkpoint_path, out, **changes):
    """A copy of the run's checkpoint in ``out`` with ``changes`` to its payload."""
    payload = torch.load(checkpoint_path, weights_only=True)
    payload.update(changes)
    out.mkdir(parents=True)
    torch.save(payload, out / "checkpoint.pt")
    return out


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"optimizer": None}, r"holds a model and its run settings but no optimizer state"),
        ({"rng": None}, r"but no rng state, which a resume needs"),
        ({"step": -5}, r"is damaged: its step is -5, not a count of steps"),
        ({"step": "3"}, r"is damaged: its step is '3'"),
        ({"training": {"log_window": {"sums": 1}}}, r"is damaged: its training\.log_window"),
        ({"training": {"seconds": -1.0}}, r"is damaged: its training\.seconds is -1\.0, not a"),
        ({"training": {"seconds": "12"}}, r"is damaged: its training\.seconds is '12'"),
        ({"training": {"seconds": math.nan}}, r"is damaged: its training\.seconds is nan"),
    ],
)
def test_a_checkpoint_whose_training_state_cannot_be_restored_is_refused_by_name(
    tmp_path, words_checkpoint, changes, message
):
    out = _edited(words_checkpoint, tmp_path / "edited", **changes)
    with pytest.raises(CheckpointError, match=message):
        Trainer(words_config(out, steps=4), resume=True)


def test_weights_that_do_not_fit_are_named_when_resuming_and_loading(tmp_path, words_checkpoint):
    model = torch.load(words_checkpoint, weights_only=True)["model"]
    key = next(iter(model))
    model[key] = torch.zeros(3)
    out = _edited(words_checkpoint, tmp_path / "edited", model=model)
    message = rf"its weights do not fit .*\(size mismatch for {re.escape(key)}: "
    with pytest.raises(CheckpointError, match=message):
        Trainer(words_config(out, steps=4), resume=True)
    with pytest.raises(CheckpointError, match=message):
        load_bridge(out)


def test_sizes_a_checkpoint_declares_are_checked_against_its_weights_before_building(
    tmp_path, words_checkpoint
):
    # A few kilobytes edited to declare a model of 2**46 hidden units (256 TB: past any
    # machine's address space, so the unfixed build fails at once rather than swapping).
    payload = torch.load(words_checkpoint, weights_only=True)
    huge = {**payload["model_config"], "shared_hidden": 2**46}
    out = _edited(words_checkpoint, tmp_path / "huge", model_config=huge)
    with pytest.raises(CheckpointError, match=r"do not fit .*\(size mismatch for shared_map"):
        load_bridge(out)
    # Leaving the huge layers' weights out of the file is no way around it.
    model = {k: v for k, v in payload["model"].items() if not k.startswith("shared_map.")}
    out = _edited(words_checkpoint, tmp_path / "left-out", model_config=huge, model=model)
    with pytest.raises(CheckpointError, match=r'Missing key\(s\) in state_dict: "shared_map'):
        load_bridge(out)
    # Nor are weights of the shapes the file declares that hold one number each (an expanded
    # view, a few bytes in the file whatever its shape), which would pass a check of shapes.
    model = {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in payload["model"].items()}
    out = _edited(words_checkpoint, tmp_path / "expanded", model=model)
    with pytest.raises(
        CheckpointError, match=r"do not fit .*\(\S+ of shape \[\d+.* is backed by \d bytes"
    ):
        load_bridge(out)


def _expanded(state):
    """``state`` with every tensor one number expanded to its shape (a few bytes in a file)."""
    return {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in state.items()}


def _with_moment(optimizer, moment):
    """``optimizer`` (a state_dict) with its first parameter's ``exp_avg`` replaced."""
    index = next(iter(optimizer["state"]))
    state = {**optimizer["state"], index: {**optimizer["state"][index], "exp_avg": moment}}
    return {**optimizer, "state": state}, index


def test_a_resume_checks_the_checkpoint_s_tensors_before_using_them(tmp_path, words_checkpoint):
    # As load_bridge does: a weight of one number expanded to its shape resumed as zeros.
    payload = torch.load(words_checkpoint, weights_only=True)
    key = next(iter(payload["model"]))
    cases = {
        "expanded": {"model": _expanded(payload["model"])},
        "averaged": {"optimised_model": _expanded(payload["model"])},
        "huge": {"model": {**payload["model"], key: torch.zeros(1).expand(2**30, 2**30)}},
    }
    for name, changes in cases.items():
        out = _edited(words_checkpoint, tmp_path / name, **changes)
        file = re.escape(str(out / "checkpoint.pt"))
        message = rf"^{file}: its weights do not fit .*\({re.escape(key)} of shape \[.* is backed"
        with pytest.raises(CheckpointError, match=message):
            Trainer(words_config(out, steps=4), resume=True)
    # Adam's moments too: fused Adam stepped one of another shape out of bounds (a crash).
    first = next(iter(payload["optimizer"]["state"].values()))["exp_avg"]
    for name, moment, problem in [
        ("moment-shape", torch.zeros(3), r"has shape \[3\], its parameter \[\d+"),
        ("moment-expanded", torch.zeros((), dtype=torch.float64).expand(first.shape), "is backed"),
    ]:
        optimizer, index = _with_moment(payload["optimizer"], moment)
        out = _edited(words_checkpoint, tmp_path / name, optimizer=optimizer)
        file = re.escape(str(out / "checkpoint.pt"))
        message = rf"^{file}: its optimizer state does not fit .*\(optimizer\.state\.{index}\."
        with pytest.raises(CheckpointError, match=rf"{message}exp_avg .*{problem}"):
            Trainer(words_config(out, steps=4), resume=True)


def test_a_mixture_base_travels_with_the_model(tmp_path):
    settings = toy_settings(tmp_path / "run", steps=3)
    settings["model"]["residual_components"] = 3
    checkpoint = train(load_run_config(settings)).checkpoint
    bridge = load_bridge(checkpoint)
    assert bridge.config.residual_components == 3
    assert all(prior.base.components == 3 for prior in bridge.priors.values())
    x = [torch.tensor([0.0, 0.0, 1.0, 0.3])]

    def translated(model):
        return model.translate(x, "vector", samples=4, generator=torch.Generator().manual_seed(0))

    again = load_bridge(save_bridge(bridge, tmp_path / "model.pt"))
    for a, b in zip(translated(bridge)[0], translated(again)[0], strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_bytes_changed_inside_a_checkpoint_are_caught_by_the_archive_s_checksums(
    tmp_path, words_checkpoint
):
    """torch.load reads a tensor whose bytes changed on the disk as other weights; the zip
    archive torch.save writes keeps a CRC of each part, which loading now checks."""
    with zipfile.ZipFile(words_checkpoint) as archive:
        part = max(archive.infolist(), key=lambda info: info.file_size)  # a weight tensor
    data = bytearray(words_checkpoint.read_bytes())
    # The part's bytes follow its 30-byte local header, its name and its extra field.
    name_length, extra_length = struct.unpack(
        "<HH", data[part.header_offset + 26 : part.header_offset + 30]
    )
    start = part.header_offset + 30 + name_length + extra_length + part.file_size // 2
    data[start : start + 8] = bytes(255 - byte for byte in data[start : start + 8])
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(data))
    message = rf"is corrupt: its part {re.escape(part.filename)} fails the archive's checksum"
    with pytest.raises(CheckpointError, match=message):
        load_bridge(flipped)
    assert load_checkpoint(words_checkpoint)["format"]  # the untouched file loads
    # Saved without checksums (a torch serialization setting), none to check: it loads.
    serialization = pytest.importorskip("torch.utils.serialization").config
    saved = serialization.save.compute_crc32
    serialization.save.compute_crc32 = False
    try:
        unchecked = save_bridge(load_bridge(words_checkpoint), tmp_path / "unchecked.pt")
    finally:
        serialization.save.compute_crc32 = saved
    with zipfile.ZipFile(unchecked) as archive:
        assert not any(info.CRC for info in archive.infolist())
    assert load_checkpoint(unchecked)["format"]


def test_a_flipped_bit_in_the_archive_s_trailer_is_a_checkpoint_error(tmp_path, words_checkpoint):
    data = bytearray(words_checkpoint.read_bytes())
    data[-38] ^= 1  # zipfile: "zipfiles that span multiple disks are not supported"
    flipped = tmp_path / "trailer.pt"
    flipped.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="is truncated or corrupt: its zip directory"):
        load_checkpoint(flipped)


@pytest.mark.parametrize("offset", [8, 10])  # the directory entry's flags, its compression
def test_a_flipped_bit_in_the_zip_directory_is_a_checkpoint_error(tmp_path, offset):
    path = tmp_path / "flipped.pt"
    torch.save({"model": {"w": torch.arange(20.0)}}, path)
    data = bytearray(path.read_bytes())
    data[data.rfind(b"PK\x01\x02") + offset] ^= 1  # "encrypted", or an unknown method
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_files_that_are_not_checkpoints_are_named_for_what_they_are(tmp_path, words_checkpoint):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(words_checkpoint.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_bridge(truncated)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pt is empty \(0 bytes\)"):
        load_checkpoint(empty)
    text = tmp_path / "notes.txt"
    text.write_text("these are my notes\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="not a torch checkpoint file"):
        load_bridge(text)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"weight": torch.zeros(2)}}, foreign)
    with pytest.raises(CheckpointError, match=r"not a flowbridge checkpoint.*'state_dict'"):
        load_bridge(foreign)
    torch.save(torch.zeros(3), foreign)
    with pytest.raises(CheckpointError, match="holds a Tensor"):
        load_checkpoint(foreign)
    torch.save({"model": torch.nn.Linear(2, 2)}, foreign)  # a pickled module, not plain data
    with pytest.raises(CheckpointError, match="weights-only"):
        load_checkpoint(foreign)
    payload = torch.load(words_checkpoint, weights_only=True)
    payload["version"] = CHECKPOINT_VERSION + 1
    newer = tmp_path / "newer.pt"
    torch.save(payload, newer)
    with pytest.raises(CheckpointError, match="upgrade flowbridge"):
        load_bridge(newer)
    del payload["model"]
    payload["version"] = CHECKPOINT_VERSION
    torch.save(payload, newer)
    with pytest.raises(CheckpointError, match=r"incomplete.*'model'"):
        load_checkpoint(newer)
    payload = torch.load(words_checkpoint, weights_only=True)
    del payload["domains"]["b"]
    torch.save(payload, newer)
    with pytest.raises(CheckpointError, match="no complete record of side 'b'"):
        load_bridge(newer)
    payload = torch.load(words_checkpoint, weights_only=True)
    payload["model"] = {k: v[..., :1] for k, v in payload["model"].items()}
    torch.save(payload, newer)
    with pytest.raises(CheckpointError, match="weights do not fit the model"):
        load_bridge(newer)


def test_a_run_directory_stands_for_its_checkpoint(tmp_path, words_checkpoint):
    run = words_checkpoint.parent
    assert load_checkpoint(run)["step"] == load_checkpoint(words_checkpoint)["step"]
    assert isinstance(load_bridge(run), type(load_bridge(words_checkpoint)))
    with pytest.raises(FileNotFoundError, match="is a directory without a checkpoint.pt"):
        load_bridge(tmp_path / "..")


@pytest.mark.parametrize(
    "device, message",
    [
        ("gpu", "map_location must be a device such as 'cpu'.* got 'gpu'"),
        (3.5, "map_location must be a device"),
        pytest.param(
            "cuda",
            r"needs CUDA, but torch.cuda.is_available\(\) is False",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
    ],
)
def test_a_device_this_process_lacks_is_named(words_checkpoint, device, message):
    with pytest.raises(ValueError, match=message):
        load_bridge(words_checkpoint, map_location=device)
    assert load_bridge(words_checkpoint, map_location="auto") is not None


def test_a_missing_domain_plugin_is_named(words_checkpoint):
    from test_training_support import PLUGIN_NAME

    unregister(PLUGIN_NAME)
    try:
        # Registered in code when saved: no distribution to install, so the module is named.
        message = (
            r"needs domain 'words' \(side a, written with a plugin registered in code, module "
            r"test_training_support\), which no registered plugin provides: register its plugin"
            r" in code .*, or, for the flowbridge command, install it as a package with a "
            r"flowbridge entry point"
        )
        with pytest.raises(CheckpointError, match=message):
            load_bridge(words_checkpoint)
    finally:
        from test_training_support import ToyPlugin

        register(ToyPlugin(), name=PLUGIN_NAME)


def test_domain_options_the_installed_plugin_no_longer_takes_are_the_checkpoints_problem(
    words_checkpoint, tmp_path
):
    """A plugin that renamed an option since it saved the checkpoint: the message says so,
    not that a run config (there is none) misspells it."""
    payload = torch.load(words_checkpoint, weights_only=True)
    payload["domains"]["a"]["options"]["hidden_size"] = 8
    torch.save(payload, tmp_path / "renamed.pt")
    message = (
        r"renamed\.pt: domain 'words' \(side a\) was written with a plugin registered in code, "
        r"module test_training_support and the options \{.*'hidden_size': 8\}, which the "
        r"installed plugin does not take \(domain 'words' has no option 'hidden_size'.*\); "
        r"load it where the plugin version that wrote it is installed$"
    )
    with pytest.raises(CheckpointError, match=message):
        load_bridge(tmp_path / "renamed.pt")


def test_a_domain_that_fails_to_build_from_its_saved_options_keeps_its_cause(
    words_checkpoint, monkeypatch
):
    """Not every constructor error is the options' fault: a missing library, say. The
    message says what failed, and the plugin's own error stays chained for its traceback."""
    from test_training_support import Words

    def broken(self, **options):
        raise ValueError("libsndfile not found")

    monkeypatch.setattr(Words, "__init__", broken)
    message = (
        r"domain 'words' \(side a, written with .*\) could not be built from its saved "
        r"options \{.*\}: ValueError: libsndfile not found$"
    )
    with pytest.raises(CheckpointError, match=message) as raised:
        load_bridge(words_checkpoint)
    assert str(raised.value.__cause__) == "libsndfile not found"


def test_plugin_versions_are_recorded_and_a_change_is_warned_about(tmp_path):
    from flowbridge import Bridge, BridgeConfig
    from flowbridge.checkpoint import domain_record
    from flowbridge.hookspecs import hookimpl

    # A domain class that lives in an installed distribution's package (here: pluggy's).
    Shipped = type("Shipped", (VectorDomain,), {"name": "shipped", "__module__": "pluggy.x"})
    record = domain_record(Shipped())
    assert record["plugin"] == "pluggy" and record["plugin_version"]

    class ShippedPlugin:
        @hookimpl
        def flowbridge_register_domains(self, register):
            register(Shipped)

    register(ShippedPlugin(), name="shipped-plugin")
    try:
        bridge = Bridge(Shipped(), VectorDomain(), BridgeConfig(shared_features=3))
        path = save_bridge(bridge, tmp_path / "shipped.pt")
        payload = torch.load(path, weights_only=True)
        payload["domains"]["a"]["plugin_version"] = "0.0.1"
        torch.save(payload, path)
        with pytest.warns(UserWarning, match=r"saved with pluggy 0\.0\.1"):
            load_bridge(path)
    finally:
        unregister("shipped-plugin")


class NoOptions(VectorDomain):
    def __init__(self, features=4, hidden=32):
        self.features, self.hidden = features, hidden  # no self.options


class ForgetsHidden(VectorDomain):
    def __init__(self, features=4, hidden=32):
        super().__init__(features, hidden)
        del self.options["hidden"]


class NumpyState(VectorDomain):
    def state_dict(self):
        return {"mean": np.zeros(3)}


class ForgetfulState(VectorDomain):
    """Saves a mean but reads a mean and a scale back."""

    def state_dict(self):
        return {"mean": torch.zeros(3)}

    def load_state_dict(self, state):
        self.mean, self.scale = state["mean"], state["scale"]


@pytest.mark.parametrize(
    "domain, configured, message",
    [
        (NoOptions(), {}, r"has no options dict \(got NoneType\).*set self\.options"),
        (ForgetsHidden(hidden=8), {"hidden": 8}, r"configured with \{'hidden': 8\}.*'\(missing\)'"),
        (
            NumpyState(),
            {},
            r"state_dict\(\) does not survive .*\(UnpicklingError: Unsupported global: GLOBAL",
        ),
        (
            ForgetfulState(),
            {},
            r"cannot load its own state_dict\(\) \(KeyError: 'scale'\); load_state_dict must",
        ),
    ],
)
def test_a_domain_a_checkpoint_could_not_keep_is_named(domain, configured, message):
    with pytest.raises(PluginError, match=message) as caught:
        check_savable(domain, configured)
    assert "\x1b[" not in str(caught.value)  # torch's terminal colours are left out
    check_savable(VectorDomain(hidden=8), {"hidden": 8})


def test_a_state_that_does_not_load_back_is_named_with_its_domain(words_checkpoint):
    payload = torch.load(words_checkpoint, weights_only=True)
    payload["domains"]["a"]["state"] = {}
    torch.save(payload, words_checkpoint)
    message = r"domain 'words' \(side a, Words\) cannot load its saved state \(KeyError"
    with pytest.raises(CheckpointError, match=message):
        load_bridge(words_checkpoint)


def test_the_trainer_checks_its_domains_before_the_first_step(tmp_path, monkeypatch):
    monkeypatch.setattr(VectorDomain, "state_dict", NumpyState.state_dict)
    config = words_config(tmp_path / "run", steps=3)
    with pytest.raises(PluginError, match=r"domain 'vector' \(VectorDomain\): its state_dict"):
        Trainer(config)
    assert not (tmp_path / "run").exists()


def test_the_errors_train_and_load_bridge_raise_are_in_the_package_api():
    import flowbridge
    from flowbridge import checkpoint, training

    assert flowbridge.CheckpointError is checkpoint.CheckpointError
    assert flowbridge.NonFiniteLossError is training.NonFiniteLossError
    assert flowbridge.TrainingInterrupted is training.TrainingInterrupted
    assert {"CheckpointError", "NonFiniteLossError", "TrainingInterrupted"} <= set(
        flowbridge.__all__
    )


def test_the_save_functions_name_their_argument_order_when_given_it_swapped(tmp_path):
    bridge = Bridge(VectorDomain(), VectorDomain(features=6), BridgeConfig(shared_features=2))
    with pytest.raises(TypeError, match=r"save_bridge\(bridge, path\): bridge must be a "):
        save_bridge(tmp_path / "model.pt", bridge)
    with pytest.raises(TypeError, match=r"save_checkpoint\(path, bridge, \.\.\.\): bridge must"):
        save_checkpoint(bridge, tmp_path / "model.pt")
    with pytest.raises(ValueError, match="needs a path to write to, got an empty one"):
        save_bridge(bridge, "")
    assert not list(tmp_path.iterdir())

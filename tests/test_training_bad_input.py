"""The trainer's answers to bad training input: data of the wrong kind, items a domain refuses
(named by their split, list and index), and an out directory that cannot be one."""

from __future__ import annotations

import math
import os
import warnings

import pytest
import torch
from test_training_support import (  # noqa: F401
    COLOURS,
    Poisonable,
    Words,
    plugin,
    toy_config,
    toy_split,
)
from toy_domains import VectorDomain

import flowbridge.plugins as plugins
import flowbridge.training.data
from flowbridge import hookimpl
from flowbridge.checkpoint import CheckpointError, load_checkpoint
from flowbridge.domain import PairedSplit
from flowbridge.plugins import MissingOptionError, PluginError, UnknownOptionError
from flowbridge.training import Trainer, rundir, train
from flowbridge.training.data import spot_indices

pytestmark = pytest.mark.usefixtures("plugin")


def checked_config(out, **train):
    """The toy run with a = ``checked-vector`` and in-memory data."""
    config = toy_config(out, **train)
    config.domains.a.name = "checked-vector"
    config.data.dataset = ""
    return config


def words_config(out, **train):
    """The toy run with a = ``words`` (its fit refuses non-str items), b = ``vector``."""
    config = toy_config(out, **train)
    config.domains.a.name, config.domains.b.name = "words", "vector"
    config.domains.b.options = {}
    config.data.dataset = ""
    return config


def test_training_data_must_be_a_paired_split(tmp_path):
    split = toy_split(8, seed=0)
    for bad in ((split.a, split.b), {"a": split.a, "b": split.b}):
        with pytest.raises(TypeError, match=r"train_data must be a flowbridge\.PairedSplit\(a="):
            Trainer(checked_config(tmp_path), bad)
        with pytest.raises(TypeError, match=r"val_data must be .*, got (tuple|dict)"):
            Trainer(checked_config(tmp_path), split, bad)
    # Validation pairs without training pairs would be silently left out for the dataset's.
    with pytest.raises(ValueError, match="^val_data was given without train_data"):
        Trainer(toy_config(tmp_path), val_data=split)


def test_an_item_the_domain_cannot_fit_is_named_by_its_list_and_index(tmp_path):
    words = [COLOURS[i % 3] for i in range(8)]
    vectors = list(torch.randn(8, 4))
    # The index is the one in unpaired_a (1), not in the 10 items fitted together.
    split = PairedSplit(words, vectors, unpaired_a=["red", torch.zeros(4)])
    with pytest.raises(
        TypeError,
        match=r"^train_data\.unpaired_a\[1\] \(items for domain 'words'\): words must be str, got "
        r"Tensor at index 1$",
    ):
        Trainer(words_config(tmp_path), split)
    with pytest.raises(
        TypeError,
        match=r"^train_data\.a\[0\] \(items for domain 'words'\): .* at index 0 \(train_data"
        r"\.b would suit domain 'words': are a and b swapped\?\)",
    ):
        Trainer(words_config(tmp_path), PairedSplit(vectors, words))


def test_pairs_whose_sides_collate_the_other_way_round_are_asked_about(tmp_path):
    # The domains have no fit: the hint comes from collating, not fitting.
    split = toy_split(8, seed=0)
    with pytest.raises(
        ValueError,
        match=r"^train_data\.a\[0\] \(domain 'checked-vector', collated on its own\): item 0 "
        r"must have shape \[4\], got \[6\] \(train_data\.b would suit domain "
        r"'checked-vector' and train_data\.a domain 'other': are a and b swapped\?\)$",
    ):
        Trainer(checked_config(tmp_path), PairedSplit(split.b, split.a))
    # Items wrong on one side only get no such question.
    split.a[3] = torch.zeros(6)
    with pytest.raises(ValueError, match=r"got \[6\]$"):
        Trainer(checked_config(tmp_path), split)


def test_an_item_of_a_type_the_domain_refuses_is_named_even_if_its_message_does_not(
    tmp_path, monkeypatch
):
    def fit(self, items):  # a plugin whose error names no index
        if not all(isinstance(item, str) for item in items):
            raise TypeError("words must be str")
        self.vocabulary = sorted(set(items))

    monkeypatch.setattr(Words, "fit", fit)
    words = [COLOURS[i % 3] for i in range(8)]
    words[5] = {"colour": "red"}
    with pytest.raises(TypeError, match=r"^train_data\.a\[5\] \(items for domain 'words'\): "):
        Trainer(words_config(tmp_path), PairedSplit(words, list(torch.randn(8, 4))))


@pytest.mark.parametrize("paired_fraction", [1.0, 0.5])
def test_an_item_the_domain_cannot_collate_is_named_by_its_split_list_and_index(
    tmp_path, paired_fraction
):
    # Half of the pairs lose their link: the bad items then sit elsewhere in the
    # partition's lists, but are still named by their place in the user's split.
    config = checked_config(tmp_path, paired_fraction=paired_fraction, batch_size=4)
    split = toy_split(10, seed=0)
    split.a[7] = torch.zeros(5)
    with pytest.raises(
        ValueError,
        match=r"^train_data\.a\[7\] \(domain 'checked-vector', collated on its own\): "
        r"item 0 must have shape \[4\], got \[5\]$",
    ):
        Trainer(config, split)
    split = toy_split(10, seed=0)
    split.unpaired_a = [torch.zeros(4), torch.full((4,), torch.nan)]
    with pytest.raises(ValueError, match=r"^train_data\.unpaired_a\[1\] .*: item 0 contains NaN"):
        Trainer(config, split)
    val = toy_split(4, seed=1)
    val.a[2] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"^val_data\.a\[2\] \(domain 'checked-vector'"):
        Trainer(config, toy_split(10, seed=0), val)


@pytest.mark.parametrize(
    ("bad", "message"),
    [(torch.zeros(5), r"must have shape \[4\], got \[5\]"), (torch.full((4,), torch.nan), "NaN")],
)
def test_a_bad_item_found_mid_run_keeps_the_completed_steps_for_resume(tmp_path, bad, message):
    config = checked_config(tmp_path, steps=100, batch_size=4, collate_upfront=False)
    good = toy_split(300, seed=0)
    # The trainer collates a spot check of the items up front (the data's fingerprint): the
    # bad item is one it leaves to the batches.
    spots = set(spot_indices(300, 256).tolist())
    index = next(i for i in range(300) if i not in spots)
    split = PairedSplit([*good.a[:index], bad, *good.a[index + 1 :]], good.b)
    trainer = Trainer(config, split)
    with pytest.raises(ValueError, match=rf"^train_data\.a\[{index}\] .*{message}") as caught:
        trainer.run()
    # Some steps completed before a batch drew the item; the checkpoint keeps them.
    assert 0 < trainer.step < 100
    assert f"Training stopped after step {trainer.step}, whose checkpoint" in str(caught.value)
    assert "--resume" in str(caught.value)
    assert load_checkpoint(trainer.checkpoint_path)["step"] == trainer.step
    assert train(config, good, resume=True).step == 100


def test_a_bad_item_in_the_spot_check_or_the_first_batch_leaves_nothing_to_resume(
    tmp_path, monkeypatch
):
    config = checked_config(tmp_path, steps=2, batch_size=4, collate_upfront=False)
    split = toy_split(4, seed=0)
    split.a[1] = torch.zeros(5)
    with pytest.raises(ValueError, match=r"^train_data\.a\[1\] .*got \[5\]"):
        Trainer(config, split)  # four items: all of them in the spot check
    trainer = Trainer(config, toy_split(4, seed=0))
    refused = ValueError("item 0 is refused")
    monkeypatch.setattr(trainer.paired[0], "take", lambda indices: (_ for _ in ()).throw(refused))
    with pytest.raises(ValueError, match="No step had completed, so there is nothing to resume"):
        trainer.run()
    assert not trainer.checkpoint_path.exists()


def test_resuming_on_other_training_data_is_refused(tmp_path):
    config = checked_config(tmp_path, steps=2, batch_size=4)
    split = toy_split(12, seed=0)
    train(config, split)
    config.train.steps = 4
    fewer = PairedSplit(split.a[:10], split.b[:10])
    with pytest.raises(CheckpointError, match=r"other data: train_data\.a had 12 items, now 10"):
        train(config, fewer, resume=True)
    other = PairedSplit([item + 1 for item in split.a], split.b)
    with pytest.raises(CheckpointError, match=r"train_data\.a has as many items, but other ones"):
        train(config, other, resume=True)
    assert train(config, split, resume=True).step == 4


def test_an_out_directory_that_cannot_be_one_is_refused_before_the_data_is_loaded(
    tmp_path, monkeypatch
):
    file = tmp_path / "run.toml"
    file.write_text("", encoding="utf-8")
    # No training data at all: the data would fail to load, but the out directory fails first.
    no_data = checked_config(file)
    with pytest.raises(FileExistsError, match=r"train\.out '.*run\.toml' is a file, not a dir"):
        Trainer(no_data)
    no_data.train.out = str(file / "sub")
    with pytest.raises(NotADirectoryError, match=r"cannot be created: '.*run\.toml' is a file"):
        Trainer(no_data)
    monkeypatch.setattr(rundir.os, "access", lambda path, mode: path != tmp_path)
    no_data.train.out = str(tmp_path / "new")
    with pytest.raises(PermissionError, match=r"no write permission for '.*'; choose another"):
        Trainer(no_data)
    assert os.listdir(tmp_path) == ["run.toml"]


def test_a_dataset_whose_split_is_not_a_paired_split_is_named(tmp_path, monkeypatch):
    from test_training_support import ToyPairs

    monkeypatch.setattr(ToyPairs, "split", lambda self, name: (["x"], ["y"]))
    with pytest.raises(
        PluginError,
        match=r"dataset 'toy-pairs' \(ToyPairs\)\.split\('train'\) must return a "
        r"flowbridge\.PairedSplit, got tuple",
    ):
        Trainer(toy_config(tmp_path))


def test_an_option_a_domain_does_not_take_is_named_with_its_side(tmp_path):
    config = toy_config(tmp_path)
    config.domains.b.options = {**config.domains.b.options, "featurs": 3}
    with pytest.raises(
        UnknownOptionError,
        match=rf"^domains\.b\.options: domain '{config.domains.b.name}' has no option 'featurs' "
        r"\(did you mean 'features'\?\)",
    ):
        Trainer(config)


def test_an_option_a_domain_needs_is_named_with_its_side(tmp_path):
    class Strict(VectorDomain):
        name = "strict"

        def __init__(self, features, hidden=32):  # no default: it must be given
            super().__init__(features, hidden)

    class StrictPlugin:
        @hookimpl
        def flowbridge_register_domains(self, register):
            register(Strict)

    config = toy_config(tmp_path)
    config.domains.a.name, config.domains.a.options = "strict", {"hidden": 8}
    plugins.register(StrictPlugin(), name="strict")
    try:
        with pytest.raises(
            MissingOptionError,
            match=r"^domains\.a\.options: domain 'strict' needs the option 'features', which has "
            r"no default",
        ):
            Trainer(config)
    finally:
        plugins.unregister("strict")


@pytest.mark.parametrize("upfront", [True, False])
def test_items_that_require_grad_are_data_not_part_of_the_graph(tmp_path, upfront):
    # Features a user's own network computed without no_grad: one graph behind all items
    # (backpropagating into it twice had failed), and leaves that would collect gradients.
    split = toy_split(8, seed=0)
    backbone = torch.nn.Linear(4, 4)
    computed = list(backbone(torch.stack(split.a)))
    leaves = [item.clone().requires_grad_(True) for item in split.b]
    config = toy_config(tmp_path, steps=3, collate_upfront=upfront)
    config.data.dataset = ""
    result = train(config, train_data=PairedSplit(computed, leaves))
    assert result.step == 3
    assert backbone.weight.grad is None
    assert all(leaf.grad is None for leaf in leaves)


@pytest.mark.skipif(not hasattr(Exception, "add_note"), reason="no exception notes before 3.11")
def test_a_constructors_own_refusal_of_an_option_names_its_table(tmp_path, monkeypatch):
    original = VectorDomain.__init__

    def checked(self, features=4, hidden=32):
        if features < 1:
            raise ValueError(f"features must be >= 1, got {features}")
        original(self, features, hidden)

    monkeypatch.setattr(VectorDomain, "__init__", checked)
    config = toy_config(tmp_path, steps=1)
    config.domains.b.options = {"features": 0}
    with pytest.raises(ValueError, match="features must be >= 1") as caught:
        Trainer(config)
    assert caught.value.__notes__ == ["(domains.b.options of domain 'other')"]


def test_a_batch_larger_than_the_training_pairs_is_said(tmp_path):
    with pytest.warns(UserWarning, match=r"train\.batch_size \(64\) is more than the 10 training"):
        Trainer(toy_config(tmp_path, steps=1, batch_size=64), train_data=toy_split(10, seed=0))


def test_warnings_point_at_the_callers_line_through_train_and_trainer(tmp_path):
    # A notebook shows a warning's file and line: the user's cell, not flowbridge's source
    # (a fixed stacklevel pointed into loop.py for train(), one frame deeper than Trainer).
    data = toy_split(10, seed=0)
    with pytest.warns(UserWarning, match="is more than the 10 training") as caught:
        train(toy_config(tmp_path / "a", steps=1, batch_size=64), train_data=data)
    with pytest.warns(UserWarning, match="is more than the 10 training") as caught_too:
        Trainer(toy_config(tmp_path / "b", steps=1, batch_size=64), train_data=data).run()
    for resume in (
        lambda: train(toy_config(tmp_path / "a", steps=1), data, resume=True),
        lambda: Trainer(toy_config(tmp_path / "a", steps=1), data, resume=True).run(),
    ):
        with pytest.warns(UserWarning, match="already trained 1 steps") as nothing:
            resume()
        assert [w.filename for w in nothing] == [__file__]
    assert [w.filename for w in (*caught, *caught_too)] == [__file__, __file__]


def test_collating_a_large_split_up_front_is_said_before_it_is_done(tmp_path, monkeypatch):
    # COCO's 566k pairs at 64 px collate to 28 GB of floats: the run would be killed for its
    # memory with no word. 40 toy pairs collate to 640 bytes (a: 4 floats) and 960 (b: 6).
    monkeypatch.setattr(flowbridge.training.data, "UPFRONT_WARNING_BYTES", 600)
    split = toy_split(40, seed=0)
    with pytest.warns(
        UserWarning,
        match=r"^collating the 40 items of domain .* up front takes "
        r"at least 0\.0 GB of memory; train\.collate_upfront = false",
    ) as seen:
        Trainer(toy_config(tmp_path / "upfront", steps=1), train_data=split)
    assert sum("up front" in str(w.message) for w in seen) == 2  # the a and b streams
    # Said before the collation it warns of: as an error, it stops the run before any.
    collated = []
    collate = VectorDomain.collate

    def counted(self, items):
        collated.append(len(items))
        return collate(self, items)

    monkeypatch.setattr(VectorDomain, "collate", counted)
    with warnings.catch_warnings(), pytest.raises(UserWarning, match="up front"):
        warnings.simplefilter("error")
        Trainer(toy_config(tmp_path / "stopped", steps=1), train_data=split)
    assert 40 not in collated
    monkeypatch.setattr(VectorDomain, "collate", collate)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Trainer(toy_config(tmp_path / "lazy", steps=1, collate_upfront=False), train_data=split)
        monkeypatch.setattr(flowbridge.training.data, "UPFRONT_WARNING_BYTES", 960)
        Trainer(toy_config(tmp_path / "small", steps=1), train_data=split)


def test_parts_the_loss_does_not_reach_are_named_after_the_first_step(tmp_path, monkeypatch):
    """A reconstruction loss of the decoder's output detached trains without its decoder:
    the run says so once, naming the part and its domain."""
    config = toy_config(tmp_path / "detached", steps=3)
    config.domains.a.name, config.data.dataset = "poisonable", ""

    def detached(self, output, x):
        return VectorDomain.reconstruction_loss(self, output.detach(), x)

    monkeypatch.setattr(Poisonable, "reconstruction_loss", detached)
    with pytest.warns(UserWarning) as seen:
        Trainer(config, train_data=toy_split(16, seed=0)).run()
    said = [str(w.message) for w in seen if "gave no gradient" in str(w.message)]
    assert len(said) == 1
    assert said[0].startswith(
        "the loss of step 1 gave no gradient to decoders.a (domain 'poisonable'): 4 of its 4 "
        "parameter tensors. The loss does not reach them, so they do not train."
    )


def test_a_float64_collate_trains_in_the_models_dtype_and_an_integer_one_is_named(
    tmp_path, monkeypatch
):
    """numpy's float64 trains as float32, as translate computes it; a batch of integers a
    vector network cannot take is named with its dtype."""
    config = toy_config(tmp_path / "f64", steps=2)
    config.domains.a.name, config.data.dataset = "poisonable", ""
    monkeypatch.setattr(
        Poisonable, "collate", lambda self, items: torch.stack(list(items)).double()
    )
    config.train.validate_every = 1
    pairs = {"train_data": toy_split(16, seed=0), "val_data": toy_split(8, seed=1)}
    result = Trainer(config, **pairs).run()  # validation batches too
    assert result.step == 2 and math.isfinite(result.terms["total"])
    assert math.isfinite(result.val_terms["total"])
    monkeypatch.setattr(Poisonable, "collate", lambda self, items: torch.stack(list(items)).long())
    config.train.out = str(tmp_path / "int")
    with pytest.raises(RuntimeError) as raised:
        Trainer(config, **pairs).run()
    if hasattr(Exception, "add_note"):  # no exception notes before 3.11: the bare error
        assert "'poisonable' domain's encoder (side a) of x [8, 4] int64" in "\n".join(
            raised.value.__notes__
        )

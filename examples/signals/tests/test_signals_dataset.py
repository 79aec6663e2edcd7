"""The chords dataset: sizes, determinism, and pairs that really share their chord."""

from __future__ import annotations

import pytest
import torch

from flowbridge_signals import ChordsDataset, SignalDomain


def strongest_frequencies(signals: list[torch.Tensor]) -> list[list[int]]:
    """The two strongest non-zero FFT bins of each signal (cycles per window), ascending."""
    spectrum = torch.fft.rfft(torch.stack(signals)).abs()
    spectrum[:, 0] = 0
    return spectrum.topk(2, dim=1).indices.sort(dim=1).values.tolist()


def test_splits_have_80_10_10_percent_of_the_pairs():
    data = ChordsDataset(size=50, length=32, transpose=1)
    assert [len(data.split(name)) for name in data.splits] == [40, 5, 5]


def test_each_pair_is_one_chord_and_the_same_chord_transposed():
    data = ChordsDataset(size=100, length=64, transpose=3, noise=0.1)
    split = data.split("train")
    chords = [pair["frequencies"] for pair in split.meta]
    assert strongest_frequencies(split.a) == chords
    assert strongest_frequencies(split.b) == [[3 * f for f in chord] for chord in chords]
    # Same chord, played another way: the two recordings are different signals.
    assert not torch.allclose(split.a[0], split.b[0])


def test_the_same_options_give_the_same_pairs_and_splits_differ():
    first, again = ChordsDataset(size=20, seed=4), ChordsDataset(size=20, seed=4)
    pairs = zip(first.split("val").a, again.split("val").a, strict=True)
    assert all(torch.equal(x, y) for x, y in pairs)
    other_seed = ChordsDataset(size=20, seed=5).split("val").a[0]
    assert not torch.equal(first.split("val").a[0], other_seed)
    assert not torch.equal(first.split("val").a[0], first.split("test").a[0])


def test_items_collate_in_the_signal_domain():
    split = ChordsDataset(size=20, length=32, transpose=1).split("test")
    batch = SignalDomain(length=32).collate(split.b)
    assert batch.shape == (2, 32)


def test_domains_of_another_length_are_named_before_training():
    data = ChordsDataset(size=20, length=32, transpose=1)
    data.check_domains(SignalDomain(length=32), SignalDomain(length=32))
    with pytest.raises(ValueError, match="chords option length is 32 but domain b's length is 64"):
        data.check_domains(SignalDomain(length=32), SignalDomain(length=64))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"size": 5}, "size must be an int >= 10"),
        ({"size": 20.0}, "size must be an int >= 10"),
        ({"length": 32, "transpose": 2}, "16 cycles, not below the Nyquist frequency 16"),
        ({"transpose": 0}, "transpose must be an int >= 1"),
        ({"noise": -1.0}, "noise must be a number >= 0"),
    ],
)
def test_bad_options_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        ChordsDataset(**options)


def test_an_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        ChordsDataset(size=10).split("dev")

"""The attribute space of the shapes testbed: what an image shows and a caption may state.

An image shows exactly one object, described by one value of each attribute; a caption states
the values of a non-empty subset of them. Attributes are plain ``dict[str, str]`` so they travel
through a dataset's ``meta`` and JSON reports unchanged.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "ATTRIBUTES",
    "all_combinations",
    "check_attributes",
    "held_out_pairs",
    "sample_attributes",
]

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "shape": ("circle", "square", "triangle", "diamond"),
    "color": ("red", "orange", "yellow", "green", "blue", "purple"),
    "size": ("small", "large"),
    "horizontal": ("left", "right"),
    "vertical": ("top", "bottom"),
}


def check_attributes(attributes: object, *, complete: bool) -> dict[str, str]:
    """Return ``attributes`` as a dict if every key is an attribute and every value one of its
    values (all attributes present when ``complete``), else raise a ValueError saying which."""
    if not isinstance(attributes, Mapping):
        raise TypeError(
            f"attributes must be a dict like {{'shape': 'circle', 'color': 'red'}}, "
            f"got {type(attributes).__name__}"
        )
    for key, value in attributes.items():
        if key not in ATTRIBUTES:
            raise ValueError(f"unknown attribute {key!r}; the attributes are {list(ATTRIBUTES)}")
        if value not in ATTRIBUTES[key]:
            raise ValueError(
                f"unknown value {value!r} for attribute {key!r}; expected one of {ATTRIBUTES[key]}"
            )
    missing = [key for key in ATTRIBUTES if key not in attributes]
    if complete and missing:
        raise ValueError(
            f"attributes {dict(attributes)} lack {missing}: an image needs all of them"
        )
    return dict(attributes)


def all_combinations() -> list[dict[str, str]]:
    """Every complete attribute assignment (4 shapes x 6 colours x 2 sizes x 2 x 2 = 192)."""
    return [
        dict(zip(ATTRIBUTES, values, strict=True))
        for values in itertools.product(*ATTRIBUTES.values())
    ]


def held_out_pairs(count: int, seed: int) -> list[tuple[str, str]]:
    """``count`` (shape, colour) pairs held out of training, for the "novel" split.

    Shapes are taken in turn and colours are all different (while there are enough), so each
    held-out pair is a new *composition* of a shape and a colour that training shows apart.
    """
    shapes, colors = ATTRIBUTES["shape"], ATTRIBUTES["color"]
    if not 0 <= count <= len(shapes) * len(colors) // 2:
        raise ValueError(
            f"novel_pairs must be between 0 and {len(shapes) * len(colors) // 2} (so training "
            f"keeps most shape/colour pairs), got {count}"
        )
    rng = np.random.default_rng([seed, 0x5A1E])
    pairs: list[tuple[str, str]] = []
    for i in range(count):
        shape = shapes[i % len(shapes)]
        used = {c for _, c in pairs}
        free = [c for c in colors if c not in used and (shape, c) not in pairs]
        choices = free or [c for c in colors if (shape, c) not in pairs]
        pairs.append((shape, choices[rng.integers(len(choices))]))
    return pairs


def sample_attributes(
    n: int, rng: np.random.Generator, combinations: Sequence[Mapping[str, str]]
) -> list[dict[str, str]]:
    """``n`` attribute assignments drawn uniformly (with replacement) from ``combinations``."""
    if not combinations:
        raise ValueError("cannot sample attributes from an empty list of combinations")
    picks = rng.integers(len(combinations), size=n)
    return [dict(combinations[i]) for i in picks]

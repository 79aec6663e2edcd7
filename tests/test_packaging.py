"""What a ``pip install`` of each distribution (the core, every plugin and example package)
gets that the checkout alone would hide."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import flowbridge

if sys.version_info >= (3, 11):
    import tomllib
else:  # the core depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = sorted(
    [ROOT, *(path.parent for path in ROOT.glob("plugins/*/pyproject.toml"))]
    + [path.parent for path in ROOT.glob("examples/*/pyproject.toml")]
)


PLUGINS = [folder for folder in PROJECTS if folder != ROOT]
# The specifier operators that keep out every version below some bound.
LOWER_BOUNDS = {">=", ">", "==", "~=", "==="}


def _project(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.mark.parametrize("folder", PROJECTS, ids=lambda folder: str(folder.relative_to(ROOT)))
def test_every_distribution_ships_the_license_text_it_declares(folder):
    # Apache-2.0 asks for a copy of the license with every distribution; setuptools puts a
    # LICENSE next to pyproject.toml into the wheel and the sdist, and none outside it.
    assert _project(folder)["license"] == "Apache-2.0"
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert (folder / "LICENSE").read_text(encoding="utf-8") == license_text
    assert license_text.split()[:4] == ["Apache", "License", "Version", "2.0,"]


def test_the_core_is_marked_typed_for_type_checkers():
    # Without py.typed in the wheel, mypy ignores the installed package's annotations.
    assert (ROOT / "flowbridge" / "py.typed").exists()
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in settings["tool"]["setuptools"]["package-data"]["flowbridge"]


@pytest.mark.parametrize("folder", PLUGINS, ids=lambda folder: str(folder.relative_to(ROOT)))
def test_every_plugin_names_the_flowbridge_it_needs(folder):
    # A plugin implements hooks of one flowbridge: with the core unpinned, pip would keep an
    # older core that lacks a hook, or put beside it one that no longer has it. The bound
    # must also admit the core of this checkout, which the plugin is released and tested with.
    wanted = [
        requirement
        for requirement in map(Requirement, _project(folder)["dependencies"])
        if canonicalize_name(requirement.name) == "flowbridge"
    ]
    assert len(wanted) == 1, f"{folder.name}: expected one flowbridge dependency, got {wanted}"
    specifier = wanted[0].specifier
    assert any(spec.operator in LOWER_BOUNDS for spec in specifier), (
        f"{folder.name} depends on {wanted[0]} with no lower bound; name the flowbridge it "
        f"needs, e.g. flowbridge>=0.1,<0.2"
    )
    assert specifier.contains(flowbridge.__version__, prereleases=True), (
        f"{folder.name} depends on {wanted[0]}, which leaves out this checkout's flowbridge "
        f"{flowbridge.__version__}"
    )

"""The packages' public names are imported on first use: no torch before a command runs."""

from __future__ import annotations

import ast
import importlib
import inspect
import subprocess
import sys

import pytest

PACKAGES = ("flowbridge", "flowbridge_coco")


def _type_checking_imports(package) -> dict[str, tuple[str, ...]]:
    """What the package's ``if TYPE_CHECKING:`` block imports, as ``_EXPORTS`` spells it."""
    tree = ast.parse(inspect.getsource(package))
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    ]
    found: dict[str, tuple[str, ...]] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1
        for alias in node.names:
            module = f".{node.module}" if node.module else f".{alias.name}"
            found[module] = (*found.get(module, ()), alias.name)
    return found


@pytest.mark.parametrize("name", PACKAGES)
def test_the_names_type_checkers_see_are_the_names_exported(name):
    package = importlib.import_module(name)
    assert _type_checking_imports(package) == {
        module: tuple(names) for module, names in package._EXPORTS.items()
    }
    exported = {name for names in package._EXPORTS.values() for name in names}
    assert set(package.__all__) - {"__version__"} == exported


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_resolves_to_its_submodules_object(name):
    package = importlib.import_module(name)
    for module, names in package._EXPORTS.items():
        imported = importlib.import_module(module, name)
        for attribute in names:
            expected = imported if module == f".{attribute}" else getattr(imported, attribute)
            assert getattr(package, attribute) is expected
    assert set(package._EXPORTS[".flows" if name == "flowbridge" else ".cider"]) <= set(
        dir(package)
    )
    with pytest.raises(AttributeError, match=rf"module '{name}' has no attribute 'Brigde'"):
        package.Brigde  # noqa: B018


@pytest.mark.parametrize(
    "code",
    [
        "import flowbridge",
        "import flowbridge_coco",
        # --help exits before any command runs
        "import flowbridge.cli as c\ntry:\n    c.main(['--help'])\nexcept SystemExit:\n    pass",
        "import flowbridge_coco.cli as c\ntry:\n    c.main(['--help'])\nexcept SystemExit:\n"
        "    pass",
    ],
)
def test_importing_a_package_or_asking_for_help_imports_no_torch(code):
    check = f"{code}\nimport sys\nassert 'torch' not in sys.modules, 'torch imported'"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "code",
    [
        # The READMEs' own lines: a plugin registered in code.
        "import flowbridge\nflowbridge.plugins.register",
        "import flowbridge\nflowbridge.config.RunConfig\nflowbridge.training.Trainer",
        "import flowbridge_coco\nflowbridge_coco.dataset.CocoDataset",
    ],
)
def test_submodules_are_attributes_of_their_package_as_eager_imports_made_them(code):
    # A fresh process: here the submodules are imported (and so attributes) already.
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_star_import_gives_the_public_names():
    namespace: dict = {}
    exec("from flowbridge import *", namespace)
    assert {"Bridge", "Trainer", "flows", "__version__"} <= set(namespace)


def test_a_name_exported_under_its_submodules_own_name_is_the_submodule(tmp_path, monkeypatch):
    (tmp_path / "lazypkg").mkdir()
    (tmp_path / "lazypkg" / "__init__.py").write_text(
        "from flowbridge._lazy import lazy_exports\n"
        "__getattr__, __dir__ = lazy_exports(__name__, {'.part': ('part', 'VALUE')})\n",
        encoding="utf-8",
    )
    (tmp_path / "lazypkg" / "part.py").write_text("VALUE = 3\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    import lazypkg

    assert "part" not in vars(lazypkg)
    assert lazypkg.VALUE == 3
    assert lazypkg.part is sys.modules["lazypkg.part"]
    assert "VALUE" in vars(lazypkg)  # cached: later reads are plain attribute lookups


@pytest.mark.parametrize("cli", ["flowbridge.cli", "flowbridge_coco.cli"])
def test_ctrl_c_while_the_parser_imports_is_an_interruption(cli, monkeypatch, capsys):
    module = importlib.import_module(cli)

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "build_parser", interrupted)
    assert module.main(["--help"]) == 130
    assert capsys.readouterr().err == "interrupted\n"

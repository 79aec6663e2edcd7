"""A package's public names, imported on first use (PEP 562).

``import flowbridge`` used to import torch (about 2 s) before any of the command line's code
ran, so Ctrl-C in those seconds printed Python's traceback instead of ``interrupted``, and
``flowbridge --help`` waited for torch. With the names resolved on first use, the package
itself imports nothing heavy; ``flowbridge.Bridge`` imports :mod:`flowbridge.bridge` the first
time it is read, and the value is then an ordinary module attribute.

Packages keep their eager imports under ``if TYPE_CHECKING:``, so that type checkers and
editors see every name; a test checks that both lists agree.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, tuple[str, ...]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, whose public names live in submodules.

    Args:
        package: the package's ``__name__``.
        exports: submodule (relative, e.g. ``".bridge"``) -> the names it provides. A name
            equal to the submodule's own (``".flows": ("flows",)``) is the submodule itself.
    """
    where = {name: module for module, names in exports.items() for name in names}
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            # A submodule read as an attribute (flowbridge.plugins.register(...)), as the
            # eager imports had made every one of them.
            if importlib.util.find_spec(f"{package}.{name}") is None:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            module = f".{name}"
        imported = importlib.import_module(module, package)
        value = imported if module == f".{name}" else getattr(imported, name)
        namespace[name] = value  # later reads are plain attribute lookups
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__

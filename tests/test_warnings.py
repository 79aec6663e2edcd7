"""flowbridge._warnings.warn: a warning is shown at the first line outside flowbridge and the
plugins shipped with it, whatever the path the code was installed at."""

from __future__ import annotations

import _thread
import threading
import types
import warnings

import pytest

from flowbridge._warnings import warn


def _function_of(module: str, name: str = "deep"):
    """A function defined in a module called ``module`` (as a plugin's or the core's code)."""
    namespace = {"__name__": module, "warn": warn}
    exec(compile(f"def {name}():\n    warn('from {module}')\n", f"<{module}>", "exec"), namespace)
    return namespace[name]


@pytest.mark.parametrize("module", ["flowbridge.training.loop", "flowbridge_coco.evaluation"])
def test_a_warning_of_the_core_or_a_shipped_plugin_points_at_the_caller(module):
    with pytest.warns(UserWarning, match=f"from {module}") as seen:
        _function_of(module)()
    assert seen[0].filename == __file__


def test_a_plugin_of_another_name_is_the_caller_it_points_at():
    with pytest.warns(UserWarning) as seen:
        _function_of("my_plugin.domain")()
    assert seen[0].filename == "<my_plugin.domain>"


def test_with_no_frame_outside_it_points_at_the_line_that_warned():
    # A thread started bare (no threading.py frames below it) whose code is all flowbridge's.
    deep, seen, done = _function_of("flowbridge.x"), [], threading.Event()

    def run():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            deep()
        seen.extend(caught)
        done.set()

    # run, as if it were flowbridge's own code too
    inside = types.FunctionType(
        run.__code__, {**run.__globals__, "__name__": "flowbridge.y"}, "run", None, run.__closure__
    )
    _thread.start_new_thread(inside, ())
    assert done.wait(10)
    assert [w.filename for w in seen] == ["<flowbridge.x>"]

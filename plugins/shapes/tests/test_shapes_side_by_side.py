"""flowbridge_shapes.side_by_side: jobs in spawned processes, their results, errors and stops.

The job functions live at this module's top level: a spawned process imports them by name.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
import torch

import flowbridge.plugins as plugins
from flowbridge import hookimpl
from flowbridge_image import plugin as image_plugin
from flowbridge_shapes.side_by_side import Job, run, waves
from flowbridge_text import plugin as text_plugin
from flowbridge_text.domain import TextDomain


def _report(value, on_step):
    """What a job's process sees: its argument, thread count and registered domains."""
    on_step(1)
    return value, torch.get_num_threads(), sorted(plugins.domains())


def _views(on_step):
    images = torch.rand(50, 3, 8, 8)
    return {"images": [[images[i], images[i + 1]] for i in range(0, 50, 2)], "n": 25}


def _path(on_step):
    return Path("/")


def _fail(message, on_step):
    raise ValueError(message)


def _sleep(pid_file, on_step):
    written = Path(f"{pid_file}.tmp")
    written.write_text(str(os.getpid()), encoding="utf-8")
    written.rename(pid_file)  # whole or not at all
    time.sleep(120)


def _fail_once(go_file, on_step):
    """Fail once ``go_file`` exists: after the other job's result has arrived."""
    while not Path(go_file).exists():
        time.sleep(0.05)
    raise ValueError("after the other")


def _die(code, on_step):
    os._exit(code)


class _Odd(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a} and {b}")


def _fail_oddly(on_step):
    raise _Odd(1, 2)


def _interrupted(on_step):
    raise KeyboardInterrupt


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_waves_group_the_models_in_order():
    assert waves(["a", "b", "c"], 2) == [["a", "b"], ["c"]]
    assert waves(["a", "b", "c"], 1) == [["a"], ["b"], ["c"]]
    assert waves(["a", "b"], 5) == [["a", "b"]]
    with pytest.raises(ValueError, match="jobs must be at least 1, got 0"):
        waves(["a"], 0)


def test_each_job_runs_with_the_threads_and_plugins_of_this_process():
    # The suite loads no entry points (FLOWBRIDGE_LOAD_PLUGINS=""), nor do the processes it
    # spawns: what they know they have from this registry.
    with plugins.isolated(image_plugin, text_plugin):
        jobs = [Job("one", _report, ("x",)), Job("two", _report, ("y",))]
        assert run(jobs, threads=1, steps=1) == [
            ("x", 1, ["image", "text"]),
            ("y", 1, ["image", "text"]),
        ]


def test_a_result_comes_back_with_its_views_still_sharing_their_storage():
    # Pickle would copy the whole tensor for each of the 50 views (which ran the demo, with
    # 2,000 views of 25 MB, out of memory); the result comes back as torch.save wrote it.
    with plugins.isolated():
        [result] = run([Job("views", _views)], 1, 1)
    assert result["n"] == 25 and len(result["images"]) == 25
    views = [view for pair in result["images"] for view in pair]
    assert len({view.untyped_storage().data_ptr() for view in views}) == 1
    assert views[1].storage_offset() == 3 * 8 * 8


def test_a_failing_job_raises_its_error_here_and_stops_the_others(tmp_path):
    pid_file = tmp_path / "pid"
    started = time.perf_counter()
    with plugins.isolated(), pytest.raises(ValueError, match="bad input 3") as error:
        run([Job("slow", _sleep, (str(pid_file),)), Job("bad", _fail, ("bad input 3",))], 1, 1)
    # Stopped by SIGTERM at once: not the 120 s it would sleep, nor STOP_GRACE's 30 and a kill.
    assert time.perf_counter() - started < 15
    assert "in _fail" in str(error.value.__cause__)  # the job's own traceback
    if pid_file.exists():  # it may have been stopped before it started to sleep
        assert _gone(int(pid_file.read_text(encoding="utf-8")))


def test_each_result_reaches_on_result_as_it_arrives_though_another_job_fails(tmp_path):
    go = tmp_path / "go"
    received = []

    def on_result(i, result):
        received.append((i, result))
        go.write_text("", encoding="utf-8")  # now the other job fails

    jobs = [Job("late", _fail_once, (str(go),)), Job("done", _report, ("x",))]
    with plugins.isolated(), pytest.raises(ValueError, match="after the other"):
        run(jobs, 1, 1, on_result)
    assert received == [(1, ("x", 1, []))]
    assert not multiprocessing.active_children()


def test_a_job_that_dies_or_whose_error_does_not_pickle_is_named():
    with plugins.isolated():
        with pytest.raises(RuntimeError, match=r"dies's process ended \(exit code 3\) without"):
            run([Job("dies", _die, (3,))], 1, 1)
        with pytest.raises(RuntimeError, match="_Odd: 1 and 2") as error:
            run([Job("odd", _fail_oddly)], 1, 1)
    assert "raise _Odd(1, 2)" in str(error.value.__cause__)


def test_a_result_or_job_that_cannot_travel_is_named_and_leaves_no_process(tmp_path):
    with plugins.isolated():
        with pytest.raises(RuntimeError, match="does not load with weights_only=True") as error:
            run([Job("path", _path)], 1, 1)
        assert "in job 'path'" in str(error.value.__cause__)
        pid_file = tmp_path / "pid"
        with pytest.raises(Exception, match="lambda"):  # pickle's own error, before it starts
            run([Job("slow", _sleep, (str(pid_file),)), Job("lambda", lambda on_step: 1)], 1, 1)
    assert not multiprocessing.active_children()


def test_a_function_no_process_could_import_is_named_before_any_starts(tmp_path):
    """A script imported from its path under another name (as tests import benchmarks/):
    its process would die unpickling the job."""
    (tmp_path / "script.py").write_text("def work(on_step):\n    return 1\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location("_imported_by_path", tmp_path / "script.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    message = r"job 'x': 'work' is defined in module '_imported_by_path', which a spawned "
    with plugins.isolated(), pytest.raises(RuntimeError, match=message):
        run([Job("x", script.work)], 1, 1)
    assert not multiprocessing.active_children()


def test_an_interrupted_job_interrupts_the_run():
    with plugins.isolated(), pytest.raises(KeyboardInterrupt, match="stop"):
        run([Job("stop", _interrupted)], 1, 1)


def test_a_plugin_no_process_could_register_is_named_before_any_starts():
    class Local:  # defined in a function: it does not pickle
        @hookimpl
        def flowbridge_register_domains(self, register):
            register(TextDomain)

    with plugins.isolated(image_plugin) as registry:
        registry.register(Local(), "mine")
        with pytest.raises(RuntimeError, match=r"plugin 'mine' \(.*Local object\) cannot be sent"):
            run([Job("one", _report, ("x",))], 1, 1)
    assert not multiprocessing.active_children()


def test_sigterm_here_stops_every_job_and_interrupts_the_run(tmp_path, sigterm_when):
    pid_files = [tmp_path / "a", tmp_path / "b"]
    sigterm_when(lambda: all(path.exists() for path in pid_files))
    before = signal.getsignal(signal.SIGTERM)
    with plugins.isolated(), pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        run([Job(path.name, _sleep, (str(path),)) for path in pid_files], 1, 1)
    assert all(_gone(int(path.read_text(encoding="utf-8"))) for path in pid_files)
    assert signal.getsignal(signal.SIGTERM) is before  # restored

"""Training several models at once, each in a process of its own.

On a small CPU one training run of the testbed's model does not keep its threads busy: on the
2-core VM of benchmarks/README.md it trains at ~9 steps/s with 2 threads, while two runs of one
thread each train at ~6.5 steps/s apiece, ~13 together (three runs of one thread on the same
two cores: ~11 together, so no more runs than threads). The demo therefore trains its models in
waves (:func:`waves`) and runs each wave of two or more through :func:`run`.

Each process is spawned, not forked (a fork of a process whose OpenMP or CUDA has started can
hang), registers the plugins this one has (so a test's :func:`flowbridge.plugins.isolated`
registry reaches it too), calls its job's function and sends the result back as
:func:`torch.save` writes it (:func:`_child` says why). Its
progress reaches this process through a shared step counter: one bar per job here, none there.
A job's error is raised here with the job's own traceback as its cause; Ctrl-C or SIGTERM here
stops every job (a training run stops after its step) and raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import io
import multiprocessing
import multiprocessing.connection
import pickle
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm  # not tqdm.auto: it warns in a notebook without ipywidgets

import flowbridge.plugins as plugins

__all__ = ["Job", "run", "waves"]

#: Seconds a job may take to stop after it was asked to, before it is killed.
STOP_GRACE = 30.0


@dataclass(frozen=True)
class Job:
    """One process's work: ``function(*args, on_step=callback)``, whose result :func:`run`
    returns. ``function`` must be importable by name (a module's top level) and call
    ``on_step(step)`` as it trains; ``name`` labels its bar and its errors."""

    name: str
    function: Callable[..., Any]
    args: tuple = ()


def waves(names: Sequence[str], jobs: int) -> list[list[str]]:
    """``names`` in consecutive groups of at most ``jobs``, trained one group after another:
    ``waves(["a", "b", "c"], 2) == [["a", "b"], ["c"]]``, so the last model, alone, gets every
    thread instead of one while a core idles."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    return [list(names[i : i + jobs]) for i in range(0, len(names), jobs)]


class _JobTraceback(Exception):
    """The traceback of an error raised in a job's process, as the cause of the same error
    raised here (as :mod:`concurrent.futures` does)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


def _registered() -> list[tuple[str, object]]:
    """``(name, plugin)`` of every plugin in this process's registry, modules by their import
    name (a module does not pickle), for the job's process to register the same.

    Raises:
        RuntimeError: a plugin object does not pickle (a class defined in a function or in a
            notebook, say), so no job's process could register it.
    """
    registered = []
    for info in plugins.current().plugins():
        plugin = info.plugin
        if inspect.ismodule(plugin):
            registered.append((info.name, plugin.__name__))
            continue
        try:
            pickle.dumps(plugin)
        except Exception as exc:  # noqa: BLE001 - whatever stops it, the message says what
            raise RuntimeError(
                f"plugin {info.name!r} ({type(plugin).__qualname__} object) cannot be sent to "
                f"the jobs' processes ({exc}); register a module as the plugin, or run the "
                f"jobs one after another (the demo's --jobs 1)"
            ) from None
        registered.append((info.name, plugin))
    return registered


def _check_importable(job: Job) -> None:
    """Refuse a job whose function a spawned process could not import by its module's name
    (a script imported from its path under another name, a notebook's ``__main__``): its
    process would die unpickling the job, with nothing to say why.

    Raises:
        RuntimeError: naming the function and its module.
    """
    module = getattr(job.function, "__module__", None)
    if module == "__main__":
        # Spawning runs the main script again (as __mp_main__): fine where there is one.
        found = getattr(sys.modules["__main__"], "__file__", None) is not None
    else:
        try:
            found = module is not None and importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
    if not found:
        raise RuntimeError(
            f"job {job.name!r}: {getattr(job.function, '__qualname__', job.function)!r} is "
            f"defined in module {module!r}, which a spawned process cannot import by that "
            f"name; define it in an importable module (or run the script as a script)"
        )


def _outcome(exc: BaseException) -> tuple[str, bytes]:
    """What a job's process sends back for an error: ``"interrupted"`` or ``"error"``, and the
    pickled ``(error, traceback text)``; the error itself where it pickles and unpickles (an
    exception whose constructor takes other arguments than its message does not), else its
    type and message as a ``RuntimeError``; a ``KeyboardInterrupt`` as its message."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", pickle.dumps((str(exc), text))
    try:
        data = pickle.dumps((exc, text))
        pickle.loads(data)
    except Exception:  # noqa: BLE001 - any failure to round-trip means: send it as text
        data = pickle.dumps((RuntimeError(f"{type(exc).__name__}: {exc}"), text))
    return "error", data


def _child(job: Job, registered: list, threads: int, counter: Any, connection: Any) -> None:
    """A job's process: this registry and thread count, the job, its result or error sent.

    The result is serialised before anything is sent, so that a result that cannot be is
    reported as the error it is. Not pickled: pickle writes a tensor's whole storage for every
    view of it (a list of 2,000 images sliced from one tensor of 25 MB pickles to 50 GB, which
    ran a demo out of memory), where ``torch.save`` writes each storage once and the views
    keep sharing it."""
    torch.set_num_threads(threads)
    try:
        with plugins.isolated() as registry:
            for name, plugin in registered:
                registry.register(
                    importlib.import_module(plugin) if isinstance(plugin, str) else plugin, name
                )

            def on_step(step: int) -> None:
                counter.value = step

            result = job.function(*job.args, on_step=on_step)
        buffer = io.BytesIO()
        torch.save(result, buffer)
        kind, data = "done", buffer.getvalue()
    except BaseException as exc:  # noqa: BLE001 - every ending is reported to the parent
        kind, data = _outcome(exc)
    connection.send(kind)
    connection.send_bytes(data)
    connection.close()


def _receive(connection: Any) -> tuple | None:
    """What :func:`_child` sent: ``("done", result)``, ``("error", exception, traceback)``
    or ``("interrupted", message, traceback)``; ``None`` if the job's process ended before it
    had sent it whole. A result loads with ``weights_only=True``: tensors, numbers, strings
    and containers of them; one that does not is reported as an error."""
    try:
        kind, data = connection.recv(), connection.recv_bytes()
    except (EOFError, OSError):  # OSError: the process ended partway through the message
        return None
    if kind != "done":
        return (kind, *pickle.loads(data))
    try:
        return (kind, torch.load(io.BytesIO(data), weights_only=True))
    except Exception as exc:  # noqa: BLE001 - whatever stops it, the message says what
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        problem = RuntimeError(
            f"the job's result does not load with weights_only=True ({exc}): return tensors, "
            f"numbers, strings and lists, tuples or dicts of them"
        )
        return ("error", problem, text)


@contextlib.contextmanager
def _terminate_interrupts() -> Iterator[None]:
    """SIGTERM as ``KeyboardInterrupt`` while jobs run and end, so that ``kill`` stops them
    too instead of leaving them running without this process (in the main thread only, where
    Python installs handlers; an ignored SIGTERM stays ignored, as in
    :meth:`flowbridge.training.StopRequests.handling`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGTERM)
    if before is signal.SIG_IGN:
        yield
        return

    def interrupt(signal_number: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signal_number).name)

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        # None: a handler installed outside Python, which cannot be put back.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before)


def _end(processes: list, stop: bool) -> None:
    """Wait for every started job's process to end, asking those still running to stop first
    where ``stop`` (SIGTERM: a training run stops after its step); kill those that have not
    ended within :data:`STOP_GRACE` seconds, and all of them at once on a further Ctrl-C or
    SIGTERM (which is raised once they are gone)."""
    started = [process for process in processes if process.pid is not None]
    try:
        for process in started:
            if stop and process.is_alive():
                process.terminate()
        for process in started:
            process.join(STOP_GRACE)
    finally:
        for process in started:
            if process.is_alive():
                process.kill()
            process.join()


def run(
    jobs: Sequence[Job],
    threads: int,
    steps: int,
    on_result: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """Run ``jobs`` at once, each in a spawned process with ``threads`` torch threads, and
    return their results in order. On a terminal each job shows a bar of its ``steps``.
    ``on_result(i, result)``, if given, is called here as job ``i``'s result arrives, so
    that a caller keeps what is done even if a job still running fails later.

    Raises:
        KeyboardInterrupt: Ctrl-C or SIGTERM here, or a job's process was interrupted; every
            job is stopped first.
        Exception: the first job to fail, its error with the job's traceback as its
            ``__cause__``; the other jobs are stopped first.
        RuntimeError: a job's process died without a word (killed, out of memory), or
            (before any job starts) a job's function cannot be imported by name in a new
            process or a registered plugin object does not pickle.

    Whatever ends it, no job's process is left running.
    """
    context = multiprocessing.get_context("spawn")
    for job in jobs:
        _check_importable(job)
    registered = _registered()
    processes, counters, pending = [], [], {}
    outcomes: list[tuple | None] = [None] * len(jobs)
    failed: int | None = None
    bars = [
        tqdm(total=steps, desc=job.name, position=i, disable=not sys.stderr.isatty())
        for i, job in enumerate(jobs)
    ]
    with _terminate_interrupts():
        try:
            for i, job in enumerate(jobs):
                counter = context.Value("q", 0)
                reader, writer = context.Pipe(duplex=False)
                process = context.Process(
                    target=_child,
                    args=(job, registered, threads, counter, writer),
                    name=f"flowbridge-{job.name}",
                    daemon=True,  # never outlives this process
                )
                processes.append(process)  # before it starts: stopped whatever comes next
                counters.append(counter)
                pending[reader] = i
                process.start()
                writer.close()  # this end is the child's: EOF here once the child is gone
            while pending and failed is None:
                for reader in multiprocessing.connection.wait(list(pending), timeout=0.5):
                    i = pending.pop(reader)
                    outcomes[i] = _receive(reader)
                    reader.close()
                    if failed is None and (outcomes[i] is None or outcomes[i][0] != "done"):
                        failed = i
                    elif on_result is not None and outcomes[i][0] == "done":
                        on_result(i, outcomes[i][1])
                for bar, counter in zip(bars, counters, strict=True):
                    bar.update(counter.value - bar.n)
                    if counter.value >= steps:
                        bar.set_postfix_str("scoring", refresh=False)
        except BaseException:
            _end(processes, stop=True)
            raise
        finally:
            for bar in bars:
                bar.close()
            for reader in pending:
                reader.close()
        if failed is not None and outcomes[failed] is None:
            processes[failed].join(STOP_GRACE)  # its own exit code, not the SIGTERM below
        _end(processes, stop=failed is not None)
    if failed is not None:
        job, outcome = jobs[failed], outcomes[failed]
        if outcome is None:
            raise RuntimeError(
                f"{job.name}'s process ended (exit code {processes[failed].exitcode}) without "
                f"a result"
            )
        kind, value, text = outcome
        if kind == "interrupted":
            raise KeyboardInterrupt(f"{job.name}: {value}")
        raise value from _JobTraceback(f"in job {job.name!r}:\n{text}")
    return [outcome[1] for outcome in outcomes]

"""Stopping a training run on SIGINT (Ctrl-C) or SIGTERM (``kill``, a scheduler's preemption)
at a step boundary, so that its checkpoint is of a complete step.

Python's default reactions are a ``KeyboardInterrupt`` wherever the run happens to be — between
the optimiser's update and the step counter, a checkpoint would pair step N's counter with step
N+1's parameters and Adam moments, and resume would train a different run — and, for SIGTERM,
no reaction at all: the process dies and everything since the last checkpoint is lost. While a
run trains, :class:`StopRequests` handles both: the first signal asks the run to stop after the
step it is in (the trainer then writes its checkpoint and raises :class:`TrainingInterrupted`),
a second one stops it at once without writing one.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

__all__ = ["StopNow", "StopRequests", "TrainingInterrupted"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """A run stopped by a signal. A ``KeyboardInterrupt``, so code that handles Ctrl-C handles
    this too.

    Attributes:
        signal: the signal that stopped the run (``signal.SIGINT`` or ``signal.SIGTERM``).
        step: the last completed training step.
        checkpoint: whether the run wrote a checkpoint of that step before stopping (``False``
            when a second signal stopped it at once: its last checkpoint is older).
    """

    def __init__(self, signal_number: int, step: int, checkpoint: bool):
        self.signal = signal.Signals(signal_number)
        self.step, self.checkpoint = step, checkpoint
        how = "after" if checkpoint else "at once, without a checkpoint, after"
        super().__init__(f"{self.signal.name}: training stopped {how} step {step}")

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by this signal: 128 + its number."""
        return 128 + int(self.signal)


class StopNow(BaseException):
    """Raised by the handler on a second signal; the trainer turns it into
    :class:`TrainingInterrupted` (the handler does not know the step)."""

    def __init__(self, signal_number: int):
        super().__init__(signal_number)
        self.signal_number = signal_number


class StopRequests:
    """SIGINT and SIGTERM handlers for the span of :meth:`handling`.

    ``received`` is the first signal's number (``None`` until one arrives); the trainer checks
    it after every step. A second signal raises at once. Signals the process ignores
    (``SIG_IGN``, e.g. SIGINT of a job started in the background) stay ignored, and outside the
    main thread (where Python cannot install handlers) nothing is installed: there a signal
    acts as it would without a run.
    """

    def __init__(self, announce: bool = True):
        self.received: int | None = None
        self.announce = announce

    def _handle(self, signal_number: int, frame) -> None:
        if self.received is not None:
            raise StopNow(signal_number)
        self.received = signal_number
        if self.announce:
            name = signal.Signals(signal_number).name
            sys.stderr.write(
                f"\n{name}: stopping after this step and writing a checkpoint "
                f"(send it again to stop at once, without one)\n"
            )

    @contextlib.contextmanager
    def handling(self) -> Iterator[StopRequests]:
        """Install the handlers; restore the previous ones on leaving."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {number: signal.getsignal(number) for number in SIGNALS}
        for number, handler in previous.items():
            if handler is not signal.SIG_IGN:
                signal.signal(number, self._handle)
        try:
            yield self
        finally:
            for number, handler in previous.items():
                # None: a handler installed outside Python, which cannot be put back.
                signal.signal(number, signal.SIG_DFL if handler is None else handler)

"""Background workers: a daemon thread that runs a step now and then until stopped."""

from __future__ import annotations

import logging
import threading

import apsw

log = logging.getLogger("owui_meter")


class Worker:
    """Calls ``step()`` in a daemon thread; ``step`` returns seconds until it wants to run again.

    ``wake()`` runs it early (e.g. when new work arrives); ``stop()`` ends it and waits.
    A failing step is logged and retried later: a worker never dies of one bad step.
    """

    name = "worker"

    def __init__(self, step, name: str | None = None, error_delay: float = 30.0):
        self._step = step
        self.name = name or self.name
        self._error_delay = error_delay
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"owui-meter-{self.name}", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self.request_stop()
        self.join(timeout)

    def request_stop(self) -> None:
        """Ask the thread to end after its current step, without waiting."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the thread to end; False if it is still running
        (a step stuck in a network call), in which case it is left to end on its own."""
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                return False
            self._thread = None
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delay = self._step()
            except apsw.FullError:  # the database logs a full disk, once a minute: no traceback here
                delay = self._error_delay
            except Exception:
                log.exception("%s: step failed; trying again in %.0f s", self.name, self._error_delay)
                delay = self._error_delay
            self._wake.wait(max(0.0, delay))
            self._wake.clear()


class Job:
    """A background job of the meter: subclasses set ``name`` and define ``step()``."""

    name = "job"
    error_delay = 30.0

    def __init__(self):
        self.worker = Worker(self.step, self.name, self.error_delay)

    def step(self) -> float:
        raise NotImplementedError

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()

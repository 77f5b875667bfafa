"""Stopping a run cleanly: Ctrl-C, SIGTERM, SIGHUP or a `should_stop` hook ask the loop to stop
after the current step, where it writes a checkpoint to resume from."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Callable


class StopRequest:
    """Ctrl-C / SIGTERM: the first asks to stop after the current step (a checkpoint is written
    there), the second stops at once. `external` (a callable, e.g. a threading.Event's is_set)
    is polled every step and asks the same way: how a UI thread stops a run it started."""

    def __init__(self, say: Callable[[str], None], external: Callable[[], bool] | None = None):
        self.requested = False
        self.signum: int | None = signal.SIGINT
        self.say = say
        self.external = external
        self.previous: dict[int, Any] = {}

    def poll(self) -> bool:
        if not self.requested and self.external is not None and self.external():
            self.requested, self.signum = True, None
        return self.requested

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            # SIGHUP too (the terminal closed): otherwise the process dies at once and its
            # data-loader workers linger until they notice (up to 5 s), with no checkpoint
            for sig in (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])):
                try:
                    self.previous[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):  # pragma: no cover
                    pass
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum
        self.say("stopping after this step to write a checkpoint (press Ctrl-C again to stop at once)")

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(sig, handler)

"""The uvicorn server `serve` runs: uvicorn's own, except for what it does after a signal."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import uvicorn


class QuietExitServer(uvicorn.Server):
    """After a graceful shutdown on SIGTERM or SIGINT, return instead of raising the signal
    again (uvicorn's default), so that `serve` exits 0 as documented, not 143."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # Signals can only be listened to from the main thread (as uvicorn says).
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

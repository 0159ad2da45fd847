"""`serve --workers N`: N server processes on one port (SO_REUSEPORT), for PostgreSQL.

The parent forks N children before any event loop or database connection exists; each
child binds its own listening socket with SO_REUSEPORT, so the kernel spreads new
connections over them by address hash (no thundering herd on one shared socket). Child 0
is the full `serve` (the background services: dispatcher, fan-out resumption, check-ins,
SMTP/IMAP/Signal receivers); the others answer HTTP only. Dispatch scales with
`rallypoint worker` processes, which claim outbox rows with SKIP LOCKED on PostgreSQL.

The parent only supervises: SIGTERM or SIGINT is passed on to every child as SIGTERM (a
graceful shutdown each); a child that exits on its own stops the rest and `serve` exits 1,
for the service manager to restart. Children die with the parent (PR_SET_PDEATHSIG on
Linux), so a `kill -9` of the parent leaves no server behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator

from gateway.uvicorn_server import QuietExitServer

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
BACKLOG = 2048


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port) that other processes may bind as well."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def supported() -> str | None:
    """Why N processes cannot run here (None: they can)."""
    if not hasattr(os, "fork") or not hasattr(socket, "SO_REUSEPORT"):
        return "--workers above 1 needs fork and SO_REUSEPORT (Linux, macOS, BSD)"
    return None


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ChildServer(QuietExitServer):
    """A child's uvicorn server: it stops on SIGTERM only (the parent turns a terminal's
    Ctrl-C into one SIGTERM per child, instead of each child seeing two signals and
    skipping the graceful wait)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = signal.signal(signal.SIGTERM, self.handle_exit)
        interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, original)
            signal.signal(signal.SIGINT, interrupt)


def run_processes(count: int, serve_child: Callable[[int], int]) -> int:
    """Fork `count` children running `serve_child(index)`; supervise until they end."""
    children: dict[int, int] = {}  # pid -> index
    stopping = False

    def stop(_signum: int = 0, _frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for index in range(count):
            pid = os.fork()
            if pid == 0:  # the child
                code = 1
                try:
                    for sig, handler in previous.items():
                        signal.signal(sig, handler)
                    _die_with_parent()
                    code = serve_child(index)
                except BaseException:  # a child must never return into the parent's code
                    log.exception("serve process %s failed", index)
                finally:
                    logging.shutdown()
                    os._exit(code)
            children[pid] = index
        failed = 0
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if pid not in children:
                continue
            index = children.pop(pid)
            code = os.waitstatus_to_exitcode(status)
            if not stopping:
                print(
                    f"error: serve process {index} exited (code {code}); stopping the others",
                    file=sys.stderr,
                )
                failed = 1
                stop()
            elif code not in (0, -signal.SIGTERM):
                failed = 1
        return failed
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

"""`rallypoint serve --demo`: the provider fakes on loopback ports, the app wired to them
on its own SQLite file (made anew at every start), a seeded organization, and the
console's Simulator, all in this one process."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

import uvicorn

from gateway.demo import DemoRuntime
from gateway.demo.providers import DemoProviders
from gateway.demo.seed import seed
from gateway.demo.simulate import Simulator
from gateway.settings import Settings

log = logging.getLogger(__name__)
DEMO_DATABASE = Path("rallypoint-demo.db")
START_TIMEOUT = 30.0


def demo_database(path: Path = DEMO_DATABASE) -> str:
    """A fresh SQLite file for the demo (its own, never the configured database)."""
    for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return f"sqlite:///{path.resolve()}"


async def serve_demo(base: Settings) -> int:
    from gateway.app import create_app

    providers = DemoProviders()
    await providers.start()
    settings = providers.settings_for(base, database_url=demo_database(), port=base.port)
    simulator = Simulator(providers, settings)
    app = create_app(settings, run_background=True, settle=True)
    app.state.demo = DemoRuntime(providers, simulator)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # The Simulator polls every second: an access line each time would bury the rest.
        access_log=False,
        timeout_graceful_shutdown=5,
        log_config=None,  # the process's own format (gateway/log_setup.py), as `serve`
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        if not await _started(server, serving):
            return 1
        login = await seed(app.state.ctx, simulator)
        url = settings.public_url + "/console/"
        print(
            "\nRallypoint demo mode: fake providers on this computer, nothing is sent anywhere.\n"
            f"  Console:  {url}\n"
            f"  Email:    {login.email}\n"
            f"  Password: {login.password}\n"
            f"  API key:  {login.api_key}\n"
            "  (a new database and password at every start; Ctrl-C stops the demo)\n",
            flush=True,
        )
        await serving
        return 0
    finally:
        if not serving.done():
            server.should_exit = True
            await serving
        await simulator.aclose()
        await providers.stop()


async def _started(server: uvicorn.Server, serving: asyncio.Task[None]) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT
    while not server.started:
        if serving.done() or loop.time() > deadline:
            print("error: the demo server did not start", file=sys.stderr)
            return False
        await asyncio.sleep(0.05)
    return True

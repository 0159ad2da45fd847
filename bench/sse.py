"""Hold N server-sent event streams open, in a process of its own so the reading costs
the measured server nothing but its own work.

    python -m bench.sse http://127.0.0.1:PORT /console/live "rp_session=…" 200

Prints `ready <n>` once every stream answered 200 text/event-stream, then reads and
discards until stdin closes, and prints `events <n>` (event lines received in all).
"""

from __future__ import annotations

import asyncio
import sys
from urllib.parse import urlsplit


async def _open(
    host: str, port: int, path: str, cookie: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/event-stream\r\n"
            f"Cookie: {cookie}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" " or b"text/event-stream" not in head.lower():
        raise RuntimeError(f"{path} answered {status.decode(errors='replace')}")
    return reader, writer


async def _drain(reader: asyncio.StreamReader, counts: list[int]) -> None:
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.startswith(b"event:"):
            counts[0] += 1


async def main(url: str, path: str, cookie: str, n: int) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    streams = [await _open(host, port, path, cookie) for _ in range(n)]
    print(f"ready {len(streams)}", flush=True)
    counts = [0]
    readers = [asyncio.create_task(_drain(r, counts)) for r, _ in streams]
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the benchmark closes stdin
    for task in readers:
        task.cancel()
    for _, writer in streams:
        writer.close()
    print(f"events {counts[0]}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))

"""A small HTTP/1.1 load generator for `pitlane bench ingest`: `clients` keep-alive connections to one URL,
each sending GETs back to back (closed loop) or one per interval, recording each request's latency.

Why by hand instead of httpx: the load generator shares the 2 cores with the server it measures, so its own
CPU time shows up as server latency. httpx spends ~0.5 ms of CPU per request — at 100 concurrent clients that,
not the server, set the measured p99. This client writes one pre-built request and reads the response by its
Content-Length on a bare asyncio protocol (uvloop when installed): a few microseconds per request. It speaks
only what the benchmark needs (GET, keep-alive, Content-Length bodies) and raises on anything else.
It runs in its own process (`run_in_process`) so the benchmark's other work is not in its event loop.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import queue
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bench.errors import LoadError


@dataclass(frozen=True)
class LoadResult:
    latencies_ms: list[float]
    wall_s: float

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies_ms) / self.wall_s if self.wall_s > 0 else 0.0


class _GetConnection(asyncio.Protocol):
    """One keep-alive connection; `get()` sends the request and waits for the whole response."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.needed: int | None = None  # header + body bytes of the response being read
        self.status = 0
        self.done: asyncio.Future[int] | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(LoadError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.needed is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            self.status = int(head[0].split(" ", 2)[1])
            lengths = [h.split(":", 1)[1] for h in head[1:] if h.lower().startswith("content-length:")]
            if not lengths:
                self._fail(LoadError(f"response without Content-Length: {head[0]}"))
                return
            self.needed = end + 4 + int(lengths[0])
        if len(self.buffer) >= self.needed:
            del self.buffer[: self.needed]
            self.needed = None
            if self.done is not None and not self.done.done():
                self.done.set_result(self.status)

    def _fail(self, exc: Exception) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)

    async def get(self) -> int:
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(self.request)  # type: ignore[union-attr]
        return await self.done


async def _run(url: str, clients: int, requests_per_client: int, interval_s: float) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: application/json\r\n\r\n".encode()
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(clients):
        _transport, protocol = await loop.create_connection(lambda: _GetConnection(request), host, port)
        connections.append(protocol)
    for connection in connections:  # warm up: the first response of each connection is not counted
        if await connection.get() != 200:
            raise LoadError(f"GET {url}: HTTP {connection.status}")
    latencies: list[float] = []

    async def one_client(connection: _GetConnection) -> None:
        next_at = time.perf_counter() + random.uniform(0.0, interval_s)
        for _ in range(requests_per_client):
            if interval_s > 0:
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                next_at += interval_s
            t0 = time.perf_counter()
            status = await connection.get()
            latencies.append((time.perf_counter() - t0) * 1000.0)
            if status != 200:
                raise LoadError(f"GET {url}: HTTP {status}")

    started = time.perf_counter()
    await asyncio.gather(*(one_client(c) for c in connections))
    wall_s = time.perf_counter() - started
    for connection in connections:
        connection.transport.close()  # type: ignore[union-attr]
    return LoadResult(latencies, wall_s)


def run(url: str, clients: int, requests_per_client: int, interval_s: float = 0.0) -> LoadResult:
    """Measure in this process (uvloop's event loop when installed)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_run(url, clients, requests_per_client, interval_s))
    return uvloop.run(_run(url, clients, requests_per_client, interval_s))


def _child(url: str, clients: int, requests_per_client: int, interval_s: float, out: Any) -> None:
    try:
        out.put(run(url, clients, requests_per_client, interval_s))
    except (OSError, LoadError) as exc:
        out.put(LoadError(f"load generator: {exc}"))


def run_in_process(
    url: str, clients: int, requests_per_client: int, interval_s: float = 0.0, timeout_s: float = 300.0
) -> LoadResult:
    """`run` in a child process of its own; LoadError if it failed or did not finish in `timeout_s`."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_child, args=(url, clients, requests_per_client, interval_s, out), daemon=True)
    child.start()
    try:
        result = out.get(timeout=timeout_s)
    except queue.Empty:  # the child died or hung
        raise LoadError(f"load generator gave no result in {timeout_s:.0f} s") from None
    finally:
        child.join(5)
        if child.is_alive():
            child.kill()
    if isinstance(result, Exception):
        raise result
    return result

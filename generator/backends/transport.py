"""The HTTP transport of the two SDK backends.

Both SDKs default to an httpx2 connection pool; they also ship an aiohttp transport
(`DefaultAioHttpClient`), which costs about a quarter less CPU per request (2.9 against 3.9 ms
on 2 cores; bench/ceiling.py measures both on the same server). The tool's own CPU per request is what bounds how many calls
one process keeps in flight, so both backends use aiohttp.

Connections are not capped in the pool (aiohttp reads a limit of 0 as none): the run's workers
already bound the requests in flight (--concurrency), and a second, smaller cap in the pool (the
SDKs' default is 1,000) would only make requests queue out of sight.
"""

from __future__ import annotations

import aiohttp
import httpx2

from generator.errors import ConnectionFailed, Timeout, TransientError

UNCAPPED = httpx2.Limits(max_connections=0)


def transport_fault(exc: BaseException, doing: str = "") -> TransientError:
    """The SDK's connection error as the transient error it really was.

    The aiohttp transport reports every dropped connection (a reset, a server hanging up) as a
    connect timeout, so the SDK raises its timeout error for both; the original aiohttp error at
    the root of the chain tells them apart."""
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    prefix = f"could not {doing}: " if doing else ""
    if isinstance(root, TimeoutError | aiohttp.ServerTimeoutError | httpx2.TimeoutException):
        return Timeout(f"{prefix}the request timed out")
    return ConnectionFailed(f"{prefix}connection failed: {root or type(root).__name__}")

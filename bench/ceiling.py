"""Bare asyncio loops that replay request bodies against a chat-completions server: the
ceiling `archetypes generate` is compared with. Runs in its own process and prints one JSON line.

    python -m bench.ceiling --url http://127.0.0.1:8011/v1 --bodies bodies.json \\
        --client aiohttp --concurrency 256 --count 3000

Clients: httpx (httpx.AsyncClient), aiohttp (aiohttp.ClientSession), and for reference the
OpenAI SDK as the tool builds it (openai: httpx2 transport) and with its aiohttp transport
(openai-aiohttp).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _drive(send: Send, bodies: list[dict[str, Any]], concurrency: int, count: int) -> dict:
    feed = itertools.islice(itertools.cycle(bodies), count)
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for body in feed:  # one shared iterator: each body is sent once
            try:
                await send(body)
            except Exception:
                errors += 1

    cpu, started = _cpu(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    done = count - errors
    return {
        "requests": done,
        "errors": errors,
        "seconds": round(seconds, 3),
        "requests_per_s": round(done / seconds, 1),
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_request": round(1000 * cpu / max(done, 1), 3),
    }


async def run(
    url: str, client: str, bodies: list[dict[str, Any]], concurrency: int, count: int
) -> dict:
    endpoint = url.rstrip("/") + "/chat/completions"
    if client == "httpx":
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=600) as session:

            async def send(body: dict[str, Any]) -> None:
                response = await session.post(endpoint, json=body)
                response.raise_for_status()
                response.json()

            return await _drive(send, bodies, concurrency, count)
    if client == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def send(body: dict[str, Any]) -> None:
                async with session.post(endpoint, json=body) as response:
                    response.raise_for_status()
                    await response.json()

            return await _drive(send, bodies, concurrency, count)
    if client in ("openai", "openai-aiohttp"):
        import openai

        http_client = openai.DefaultAioHttpClient() if client == "openai-aiohttp" else None
        sdk = openai.AsyncOpenAI(
            api_key="not-needed", base_url=url, max_retries=0, http_client=http_client
        )

        async def send(body: dict[str, Any]) -> None:
            await sdk.chat.completions.create(**body)

        try:
            return await _drive(send, bodies, concurrency, count)
        finally:
            await sdk.close()
    raise SystemExit(f"unknown client {client}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument(
        "--client", choices=["httpx", "aiohttp", "openai", "openai-aiohttp"], required=True
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    bodies = json.loads(args.bodies.read_text())
    result = asyncio.run(run(args.url, args.client, bodies, args.concurrency, args.count))
    print(json.dumps({"client": args.client, "concurrency": args.concurrency, **result}))


if __name__ == "__main__":
    main()

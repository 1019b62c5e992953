"""Benchmark 1: orchestration overhead of `archetypes generate` against a local stub server.

For each server latency (0 s, then 0.5 s) the stub runs in its own process and `archetypes
generate` runs as a user would run it (judge on: idea, write and judge requests per document).
Its sustained rate is measured from the stub's own request log (first to last request, so the
~3 s of interpreter start-up and imports are left out), and its CPU per request is the marginal
CPU of a large run over a small one (start-up cancels out). The ceiling is measured against the
same server in the same run: bare asyncio loops replaying the very request bodies the tool sent,
with httpx and with aiohttp (the faster is the ceiling), plus the OpenAI SDK with its default httpx2
pool and with its aiohttp transport (`DefaultAioHttpClient`, what the tool uses), for reference.

    python -m bench.overhead [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from bench._common import ARCHETYPES, PYTHON, REPO, StubProcess, run_child, save, tool_env

CLIENTS = ("httpx", "aiohttp", "openai", "openai-aiohttp")


def generate(stub: StubProcess, out: Path, n: int, concurrency: int) -> dict[str, Any]:
    before = len(stub.log())
    child = run_child(
        [
            ARCHETYPES,
            "generate",
            str(REPO / "archetypes"),
            "--out",
            str(out),
            "-n",
            str(n),
            "--base-url",
            stub.base_url,
            "--model",
            "stub-model",
            "--concurrency",
            str(concurrency),
            "--no-progress",
        ],
        env=tool_env(),
    )
    if child.returncode != 0:
        raise SystemExit(f"generate failed: {child.stderr[-2000:]}")
    entries = stub.log()[before:]
    span = entries[-1]["at"] - entries[0]["at"]
    manifest = json.loads((out / "manifest.json").read_text())
    accepted = manifest["counts"]["accepted"]
    return {
        "documents": accepted,
        "requests": len(entries),
        "span_s": round(span, 3),
        "wall_s": round(child.wall_s, 2),
        "cpu_s": round(child.cpu_s, 2),
        "max_rss_mib": round(child.max_rss_mib, 1),
        "requests_per_s": round((len(entries) - 1) / span, 1),
        "documents_per_s": round(accepted / span, 1),
    }


def ceiling(stub: StubProcess, bodies: Path, client: str, concurrency: int, count: int) -> dict:
    result = subprocess.run(
        [
            PYTHON,
            "-m",
            "bench.ceiling",
            "--url",
            stub.base_url,
            "--bodies",
            str(bodies),
            "--client",
            client,
            "--concurrency",
            str(concurrency),
            "--count",
            str(count),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def one_latency(latency: float, concurrency: int, small: int, large: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    try:
        with StubProcess("--latency", str(latency), "--many-names", "--keep-bodies") as stub:
            first = generate(stub, work / "small", small, concurrency)
            skip = len(stub.bodies())
            main = generate(stub, work / "large", large, concurrency)
            bodies = stub.bodies()[skip:]
            body_file = work / "bodies.json"
            body_file.write_text(json.dumps(bodies))
            count = max(len(bodies), 1000)
            ceilings = {c: ceiling(stub, body_file, c, concurrency, count) for c in CLIENTS}
        marginal_cpu = (main["cpu_s"] - first["cpu_s"]) / (main["requests"] - first["requests"])
        best = max(("httpx", "aiohttp"), key=lambda c: ceilings[c]["requests_per_s"])
        return {
            "latency_s": latency,
            "concurrency": concurrency,
            "tool": main,
            "tool_small_run": first,
            "tool_cpu_ms_per_request": round(1000 * marginal_cpu, 2),
            "tool_cpu_ms_per_document": round(3000 * marginal_cpu, 2),
            "ceilings": ceilings,
            "ceiling_client": best,
            "ceiling_requests_per_s": ceilings[best]["requests_per_s"],
            "tool_share_of_ceiling": round(
                main["requests_per_s"] / ceilings[best]["requests_per_s"], 3
            ),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def transport() -> dict[str, str]:
    from generator.backends.base import BackendConfig
    from generator.backends.openai_backend import OpenAIBackend

    backend = OpenAIBackend(BackendConfig("openai", "m", base_url="http://127.0.0.1:1/v1"))
    transport = backend.client._client._transport  # the pool the tool's SDK client sends through
    return {
        "openai": metadata.version("openai"),
        "anthropic": metadata.version("anthropic"),
        "httpx2": metadata.version("httpx2"),
        "aiohttp": metadata.version("aiohttp"),
        "tool_client": f"{type(transport).__module__}.{type(transport).__name__}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="Small runs, for a smoke test.")
    args = parser.parse_args()
    scale = 0.2 if args.quick else 1.0
    runs = [
        one_latency(0.0, 64, 30, int(300 * scale)),
        one_latency(0.5, 256, 30, int(1024 * scale)),
    ]
    result = {"runs": runs, "transport": transport()}
    path = save("overhead", result)
    print(json.dumps(result, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()

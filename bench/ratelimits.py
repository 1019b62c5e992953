"""Benchmark 2: how close `archetypes generate` runs to a provider's rate limits.

The stub enforces requests-per-minute and tokens-per-minute as continuously refilled buckets,
answering 429 with retry-after and OpenAI's x-ratelimit-* headers. The tool runs for a fixed
time (then Ctrl-C, which it handles gracefully) and the achieved rate is read from the stub's
log: requests and tokens served in the last full minute (after the first minute's burst has been
absorbed), as a fraction of each limit, and the number of 429s.

    python -m bench.ratelimits [--seconds 90] [--rpm 600] [--tpm 400000]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench._common import ARCHETYPES, REPO, StubProcess, save, tool_env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--rpm", type=int, default=600)
    parser.add_argument("--tpm", type=int, default=400_000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()

    out = Path(tempfile.mkdtemp(prefix="bench-ratelimits-")) / "run"
    limits = ("--rpm", str(args.rpm), "--tpm", str(args.tpm))
    with StubProcess("--latency", str(args.latency), "--many-names", *limits) as stub:
        process = subprocess.Popen(
            [
                ARCHETYPES,
                "generate",
                str(REPO / "archetypes"),
                "--out",
                str(out),
                "-n",
                "100000",
                "--base-url",
                stub.base_url,
                "--model",
                "stub-model",
                "--concurrency",
                str(args.concurrency),
                "--no-progress",
            ],
            env=tool_env(),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = time.monotonic()
        time.sleep(args.seconds)
        process.send_signal(signal.SIGINT)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.monotonic() - started
        log = stub.log()
        stub_faults = stub.faults()

    manifest = json.loads((out / "manifest.json").read_text())
    served = [e for e in log if e["outcome"] != "429-limit"]
    refused = [e for e in log if e["outcome"] == "429-limit"]
    end = max(e["at"] for e in log)
    window = [e for e in served if e["at"] > end - 60]
    result = {
        "seconds": round(elapsed, 1),
        "rpm_limit": args.rpm,
        "tpm_limit": args.tpm,
        "latency_s": args.latency,
        "concurrency": args.concurrency,
        "requests_served": len(served),
        "requests_refused_429": len(refused),
        "client_saw_429": manifest["faults"].get("429", 0),
        "documents": manifest["counts"]["accepted"],
        "exit_code": os.waitstatus_to_exitcode(status),
        "tool_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "last_minute_requests": len(window),
        "last_minute_tokens": sum(e["charged_tokens"] for e in window),
        "rpm_fraction": round(len(window) / args.rpm, 3),
        "tpm_fraction": round(sum(e["charged_tokens"] for e in window) / args.tpm, 3),
        "stub_faults": stub_faults["faults"],
    }
    path = save("ratelimits", result)
    print(json.dumps(result, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()

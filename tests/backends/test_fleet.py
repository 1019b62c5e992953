"""Several OpenAI-compatible endpoints at once (generator/backends/fleet.py): requests spread
over them, and a dead endpoint is taken out while the run completes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.conftest import read_jsonl
from tests.support.runs import generate_concurrently


def test_requests_spread_over_several_endpoints(make_stub, tmp_path: Path) -> None:
    first, second = make_stub(latency=0.05), make_stub(latency=0.05)
    out = tmp_path / "run"
    result = generate_concurrently(
        out, "-n", "8", "--base-url", first.base_url, "--base-url", second.base_url
    )
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 8
    assert len(first.log) >= 6 and len(second.log) >= 6, (len(first.log), len(second.log))
    assert len(first.log) + len(second.log) == 24
    manifest = json.loads((out / "manifest.json").read_text())
    assert [e["served"] for e in manifest["endpoints"]] == [len(first.log), len(second.log)]


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens here any more


def test_a_dead_endpoint_is_taken_out_and_the_run_completes(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = generate_concurrently(
        out,
        "-n",
        "6",
        "--base-url",
        stub.base_url,
        "--base-url",
        _dead_url(),
        "--model",
        "stub-model",
    )
    assert result.returncode == 0, result.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 6
    manifest = json.loads((out / "manifest.json").read_text())
    live, dead = manifest["endpoints"]
    assert live["served"] == 18
    assert dead["served"] == 0 and 1 <= dead["failures"] <= 4, (
        "taken out after failing, not hammered"
    )

"""`archetypes generate` against a real OpenAI-compatible server on 127.0.0.1 (the stub)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest

from generator.rundir import RunDir
from tests.conftest import ARCHETYPES_BIN, LIBRARY, REPO, read_jsonl, run_cli

SPECS = [str(LIBRARY / "patient-tutor.yaml"), str(LIBRARY / "lab-partner.yaml")]


def record_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / "schemas" / "record.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def generate(out: Path, base_url: str, n: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "generate",
        *SPECS,
        "--out",
        str(out),
        "-n",
        str(n),
        "--base-url",
        base_url,
        "--concurrency",
        "4",
        *extra,
    )


def test_generate_writes_valid_records_and_manifest(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = generate(out, stub.base_url, 6)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 6
    validator = record_validator()
    for record in records:
        assert not list(validator.iter_errors(record))
        assert record["writer_model"] == "stub-model"
        assert record["provider"] == "openai"
    assert len({r["id"] for r in records}) == 6
    assert {r["archetype_id"] for r in records} == {"patient-tutor", "lab-partner"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["counts"]["accepted"] == 6
    assert manifest["model"] == "stub-model"
    assert manifest["base_url"] == stub.base_url
    assert manifest["usage"]["completions"] == 18  # an idea, a document and a judgement each
    judge = manifest["gates"]["judge"]
    assert (judge["mode"], judge["model"], judge["note"]) == ("enforce", "stub-model", "")
    assert judge["order_control"] and judge["escalate_model"] is None
    # Every document scored 5 (not borderline): no second reading, no stronger judge.
    assert manifest["judge_passes"] == {
        "order_control": {"documents": 0, "calls": 0, "cost_usd": 0.0},
        "escalation": {"model": None, "documents": 0, "calls": 0, "cost_usd": 0.0},
    }
    for record in records:
        assert record["judge"]["passed"] and record["judge_model"] == "stub-model"
        assert record["checks"]["language"] == "en"
        assert record["checks"]["near_duplicate_of"] is None
    assert {a["id"] for a in manifest["archetypes"]} == {"patient-tutor", "lab-partner"}
    assert all(len(a["spec_hash"]) == 16 for a in manifest["archetypes"])


def test_rerun_pays_nothing_and_raising_n_extends(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert generate(out, stub.base_url, 4).returncode == 0
    first = read_jsonl(out / "records.jsonl")
    calls_after_first = len(stub.log)
    assert calls_after_first == 12  # idea, document, judgement per record

    again = generate(out, stub.base_url, 4)
    assert again.returncode == 0, again.stderr
    assert len(stub.log) == calls_after_first, "a rerun of a finished run must not call the model"
    assert "model calls 0" in again.stdout

    more = generate(out, stub.base_url, 7)
    assert more.returncode == 0, more.stderr
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 7
    assert records[:4] == first, "extending must keep the earlier documents untouched"
    assert len(stub.log) == calls_after_first + 9


def test_run_survives_every_kind_of_fault(make_stub, tmp_path: Path) -> None:
    rates = {
        "429": 0.08,
        "500": 0.06,
        "503": 0.06,
        "reset": 0.06,
        "timeout": 0.03,
        "malformed": 0.06,
        "truncated": 0.06,
        "empty": 0.06,
    }
    server = make_stub(fault_rates=rates, seed=7, timeout_sleep=5.0)
    out = tmp_path / "run"
    result = generate(out, server.base_url, 10, "--timeout", "1")
    assert result.returncode == 0, result.stderr
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 10
    assert len({r["id"] for r in records}) == 10
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    faults = manifest["faults"]
    for kind in ("429", "500", "503", "malformed", "empty"):
        assert faults.get(kind, 0) >= 1, (kind, faults, server.faults)
    assert faults.get("connection", 0) + faults.get("timeout", 0) >= 1
    # A truncated document is never kept: it is retried with more room.
    assert all(r["finish_reason"] == "stop" for r in records)


def _complete_lines(path: Path) -> int:
    """Lines a running writer has finished (the last one may be mid-write)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _kill_when_records(
    process: subprocess.Popen[str], path: Path, at_least: int, limit: float = 60
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if _complete_lines(path) >= at_least:
            break
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)


def test_sigkill_then_resume_loses_nothing_and_repays_nothing(make_stub, tmp_path: Path) -> None:
    server = make_stub(latency=0.15)
    out = tmp_path / "run"
    n = 16
    args = [
        str(ARCHETYPES_BIN),
        "generate",
        *SPECS,
        "--out",
        str(out),
        "-n",
        str(n),
        "--base-url",
        server.base_url,
        "--concurrency",
        "4",
    ]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    for kill_at in (3, 9, None):
        # What was answered and cached before this process started must never be asked again.
        cached = {
            (int(line["task_id"][:8], 16), line["step"] == "idea")
            for line in read_jsonl(out / "cache.jsonl")
        }
        log_start = len(server.log)
        process = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        if kill_at is None:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr
        else:
            _kill_when_records(process, out / "records.jsonl", kill_at)
            assert process.returncode == -signal.SIGKILL
        repaid = [
            (e.seed, e.structured)
            for e in server.log[log_start:]
            if (e.seed, e.structured) in cached
        ]
        assert repaid == [], "a call whose answer was already cached was paid again"
        # Every file parses after a SIGKILL once the run directory is reopened (trimmed tail).
        with RunDir(out) as rundir:
            for name in ("records.jsonl", "rejects.jsonl", "cache.jsonl"):
                list(rundir.read_jsonl(name))

    records = read_jsonl(out / "records.jsonl")
    assert len(records) == n
    assert len({r["id"] for r in records}) == n, "no duplicates"


def test_second_process_on_same_run_directory_is_refused(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with RunDir(out):
        result = generate(out, stub.base_url, 2)
    assert result.returncode == 2
    assert "is in use by archetypes pid" in result.stderr
    assert "Traceback" not in result.stderr
    assert stub.log == []


def test_budget_needs_a_known_price(tmp_path: Path, clean_env) -> None:
    result = run_cli(
        "generate",
        *SPECS,
        "--out",
        str(tmp_path / "r"),
        "-n",
        "1",
        "--provider",
        "anthropic",
        "--model",
        "mystery-model",
        "--budget",
        "5",
        env={"ANTHROPIC_API_KEY": "sk-ant-test"},
    )
    assert result.returncode == 2
    assert "--budget needs a price for model 'mystery-model'" in result.stderr


@pytest.mark.parametrize(
    ("provider", "variable"), [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")]
)
def test_missing_key_is_one_clear_line(provider: str, variable: str, tmp_path: Path) -> None:
    result = run_cli(
        "generate",
        *SPECS,
        "--out",
        str(tmp_path / "r"),
        "-n",
        "1",
        "--provider",
        provider,
        "--model",
        "some-model",
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"{variable} is not set" in lines[0]
    assert not (tmp_path / "r" / "records.jsonl").exists()


def test_options_incompatible_with_an_existing_run_are_refused(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert generate(out, stub.base_url, 2).returncode == 0
    result = generate(out, stub.base_url, 2, "--seed", "5")
    assert result.returncode == 2
    assert "holds a run with seed=0" in result.stderr
    assert len(read_jsonl(out / "records.jsonl")) == 2


def test_ctrl_c_stops_gracefully_and_keeps_finished_work(make_stub, tmp_path: Path) -> None:
    server = make_stub(latency=0.3)
    out = tmp_path / "run"
    args = [
        str(ARCHETYPES_BIN),
        "generate",
        *SPECS,
        "--out",
        str(out),
        "-n",
        "40",
        "--base-url",
        server.base_url,
        "--concurrency",
        "2",
    ]
    process = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _complete_lines(out / "records.jsonl") < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    kept = read_jsonl(out / "records.jsonl")
    assert 2 <= len(kept) < 40
    assert manifest["counts"]["accepted"] == len(kept)


def test_unwritable_output_directory_is_a_clear_error(stub, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = generate(blocker, stub.base_url, 1)
    assert result.returncode == 2
    assert "exists and is not a directory" in result.stderr
    assert blocker.read_text() == "not a directory"


def test_a_fixable_judge_failure_gets_one_rewrite(make_stub, tmp_path: Path) -> None:
    server = make_stub(judge_fails_unrevised=True)
    out = tmp_path / "run"
    result = generate(out, server.base_url, 3)
    assert result.returncode == 0, result.stderr
    records = read_jsonl(out / "records.jsonl")
    assert len(records) == 3
    assert all(r["revised"] for r in records)
    assert all(r["judge"]["passed"] and r["judge"]["focus_score"] == 5 for r in records)
    assert all(r["usage"]["model_calls"] == 3 for r in records)  # idea, write, rewrite


def test_a_run_the_gates_starve_stops_early_and_says_what_to_try(make_stub, tmp_path: Path) -> None:
    """The issue's run: a judge that names trait ids the spec does not have made 2,120 calls,
    kept nothing and exited 0. Now the run stops after its first attempts, exits 3, and its last
    line names the reason and what to try."""
    from generator.scheduler import STARVE_AFTER

    server = make_stub(judge_trait="not-a-trait-of-this-spec")
    out = tmp_path / "run"
    result = generate(out, server.base_url, 150)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("starved: ") and "judge-unparseable" in last, last
    assert "by the judge gate" in last and "--judge advisory" in last, last
    rejects = read_jsonl(out / "rejects.jsonl")
    # the first 50 decided it; the tasks in flight then (concurrency 4) finish, no new one starts
    assert STARVE_AFTER <= len(rejects) <= STARVE_AFTER + 4
    assert {r["reason"] for r in rejects} == {"judge-unparseable"}
    assert len(server.log) < 400, len(server.log)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "starved"
    assert manifest["counts"]["accepted"] == 0


def test_the_starvation_rule() -> None:
    """Stop when the session's first 50 attempts kept nothing and 90% share one reason."""
    from generator import spec
    from generator.plan import plan
    from generator.scheduler import STARVE_AFTER, STARVE_SHARE, Outcome, starvation

    task = plan(spec.load_specs([LIBRARY / "patient-tutor.yaml"]), 1, 0)[0]

    def outcomes(main: int, other: int, kept: int = 0) -> list[Outcome]:
        return (
            [Outcome(task, False, "judge-unparseable", "judge")] * main
            + [Outcome(task, False, "length", "heuristics")] * other
            + [Outcome(task, True)] * kept
        )

    assert (STARVE_AFTER, STARVE_SHARE) == (50, 0.9)
    starved = starvation(outcomes(45, 5))
    assert starved is not None
    assert (starved.reason, starved.gate, starved.count, starved.attempts) == (
        "judge-unparseable",
        "judge",
        45,
        50,
    )
    assert starvation(outcomes(44, 6)) is None  # no single reason dominates
    assert starvation(outcomes(49, 0, kept=1)) is None  # something was kept
    assert starvation(outcomes(49, 0)) is None  # too early to tell


def test_what_a_run_did_not_enforce_is_said_on_screen(stub, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = generate(out, stub.base_url, 2, "--relax", "length", "--judge", "off")
    assert result.returncode == 0, result.stderr
    assert "not enforced in this run: --relax length, --judge off" in result.stdout
    enforced = generate(tmp_path / "enforced", stub.base_url, 2)
    assert "not enforced" not in enforced.stdout

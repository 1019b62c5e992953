"""Print the benchmark results in bench/results/*.json as markdown tables (for the README)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def overhead(r: dict[str, Any]) -> list[str]:
    lines = [
        "| server latency | concurrency | `archetypes generate` req/s (docs/s) | tool CPU per request | "
        "ceiling: bare aiohttp | bare httpx | OpenAI SDK, httpx2 pool | OpenAI SDK, aiohttp (as the tool) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        c = run["ceilings"]
        cell = {
            name: f"{v['requests_per_s']} req/s ({v['cpu_ms_per_request']} ms CPU/req)"
            for name, v in c.items()
        }
        t = run["tool"]
        lines.append(
            f"| {run['latency_s']} s | {run['concurrency']} | **{t['requests_per_s']}** "
            f"({t['documents_per_s']}) = {100 * run['tool_share_of_ceiling']:.0f}% of ceiling | "
            f"{run['tool_cpu_ms_per_request']} ms | {cell['aiohttp']} | {cell['httpx']} | "
            f"{cell['openai']} | {cell['openai-aiohttp']} |"
        )
    tr = r["transport"]
    lines.append("")
    lines.append(
        f"SDK transport: openai {tr['openai']} and anthropic {tr['anthropic']} (httpx2 "
        f"{tr['httpx2']}); the tool's clients send through `{tr['tool_client']}` (aiohttp "
        f"{tr['aiohttp']})."
    )
    return lines


def ratelimits(r: dict[str, Any]) -> list[str]:
    return [
        "| limits | run | served in the last full minute | share of rpm | share of tpm | 429s received | documents |",
        "|---|---|---|---|---|---|---|",
        f"| {r['rpm_limit']} rpm, {r['tpm_limit']:,} tpm | {r['seconds']} s, concurrency "
        f"{r['concurrency']}, latency {r['latency_s']} s | {r['last_minute_requests']} requests, "
        f"{r['last_minute_tokens']:,} tokens | {100 * r['rpm_fraction']:.0f}% | "
        f"{100 * r['tpm_fraction']:.0f}% | {r['client_saw_429']} | {r['documents']} |",
    ]


def local_engine(r: dict[str, Any]) -> list[str]:
    t, d, d1 = r["tool"], r["direct_parallel"], r["direct_one_at_a_time"]
    lines = [
        f"{r['server']}, {r['model']}, {r['threads']} threads; ideas per request: "
        f"{r['samples_per_request']}"
        + (f" (answers {r['shared_idea_answers']})" if r.get("shared_idea_answers") else ""),
        "",
        "| | requests | tokens/s (prompt + completion) | completion tokens/s |",
        "|---|---|---|---|",
        f"| `archetypes generate` | {t['requests']} | {t['tokens_per_s']} | "
        f"{t['completion_tokens_per_s']} |",
        f"| same bodies, bare loop, all slots busy | {d['requests']} | {d['tokens_per_s']} | "
        f"{d['completion_tokens_per_s']} |",
        f"| same bodies, bare loop, one at a time | {d1['requests']} | {d1['tokens_per_s']} | "
        f"{d1['completion_tokens_per_s']} |",
        f"| tool's share of the server's capacity (the better bare loop) | | "
        f"{100 * r['tool_share_of_direct']:.0f}% | |",
    ]
    return lines


def shared_ideas(r: dict[str, Any]) -> list[str]:
    lines = [
        f"{r['groups']} groups of {r['samples_per_request']} ideas, {r['model']} on llama-server",
        "",
        "| | answers | parsed as ideas | near-repeat pairs | mean pairwise trigram Jaccard | "
        "server time | input tokens |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, label in (
        ("one_call_per_group", "one call per group (n)"),
        ("one_call_per_idea", "one call per idea"),
    ):
        m = r[name]
        lines.append(
            f"| {label} | {m['answers']} | {m['parsed_as_ideas']} | {m['near_repeat_pairs']} of "
            f"{m['pairs']} | {m['mean_pairwise_jaccard']} | {m['seconds']} s | {m['input_tokens']:,} |"
        )
    return lines


def postprocess(r: dict[str, Any]) -> list[str]:
    lines = [
        "| documents | records.jsonl | heuristics | near-dup (check + add) | `archetypes build` | peak memory (heuristics / dedup / build) |",
        "|---|---|---|---|---|---|",
    ]
    for s in r["sizes"]:
        h, d, b = s["heuristics"], s["dedup"], s["build"]
        lines.append(
            f"| {s['documents']:,} | {s['records_mib']} MiB | {h['seconds']} s "
            f"({h['ms_per_document']} ms/doc) | {d['seconds']} s ({d['ms_per_document']} ms/doc) | "
            f"{b['wall_s']} s | {h['max_rss_mib']:.0f} / {d['max_rss_mib']:.0f} / "
            f"{b['max_rss_mib']:.0f} MiB |"
        )
    return lines


def scale(r: dict[str, Any]) -> list[str]:
    from bench.scale import table

    return table(r).splitlines()


def agreement(r: dict[str, Any]) -> list[str]:
    lines = [
        "| `merge --executor` | wall s | CPU s | peak RSS MiB (tree) | kept | planted caught "
        "| source named |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in ("in-process", "local"):
        m = r[name]
        lines.append(
            f"| {name} | {m['wall_s']} | {m['cpu_s']} | {m['peak_rss_mib']} | {m['kept']:,} "
            f"| {m['planted_caught']:.2%} | {m['planted_source_named']:.2%} |"
        )
    return [*lines, "", f"Keep sets differ by {r['keep_set_difference']:.3%}."]


def main() -> None:
    sections = [
        (
            "overhead",
            "Orchestration overhead (stub server, judge on: 3 requests per document)",
            overhead,
        ),
        ("ratelimits", "Rate limits", ratelimits),
        ("local_engine", "Local engine", local_engine),
        (
            "local_engine_p4_samples4",
            "Local engine, four slots, four ideas per request",
            local_engine,
        ),
        ("shared_ideas", "Several ideas per call", shared_ideas),
        ("postprocess", "Post-processing at scale", postprocess),
        ("scale-1000000", "Corpus-scale post-processing, 1M documents", scale),
        ("dedup-agreement-100000", "Corpus-wide dedup against the in-run gate", agreement),
    ]
    machine = None
    out: list[str] = []
    for name, title, render in sections:
        result = load(name)
        if result is None:
            continue
        machine = machine or result["machine"]
        out += [f"**{title}**", "", *render(result), ""]
    if machine is None:
        sys.exit("no results in bench/results/: run bench/run_all.sh first")
    m = machine
    head = (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM, {m['os']}, "
        f"Python {m['python']}; measured {m['date']}."
    )
    print("\n".join([head, "", *out]).rstrip())


if __name__ == "__main__":
    main()

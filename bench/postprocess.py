"""Benchmark 4: post-processing at scale, no model needed.

Makes a synthetic run directory of N documents (prose-like text from the stub's generator with
made-up names, 300-900 words, plus 2% exact duplicates, 2% near-duplicates and 1% bad documents:
placeholders, meta-commentary, refusals, loops), every record valid against
schemas/record.schema.json, then times, each in its own process (so peak memory is per phase):

  heuristics  generator.gates.heuristics.check on every document
  dedup       generator.gates.dedup.DedupIndex: check, then add what passes (the run's order)
  build       `archetypes build DIR` (parquet shards, token counts, dataset card)

    python -m bench.postprocess [--sizes 10000 30000 100000]
    python -m bench.postprocess make --n 1000 --out /tmp/run   # just the run directory
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import ARCHETYPES, PYTHON, REPO, run_child, save, tool_env

FIXTURE = REPO / "tests" / "data" / "run_fixture"
PLANTED = "planted.jsonl"  # beside records.jsonl: each planted copy's index, its source's, kind
BAD = [
    "Dear [Name],\n\nThank you for your letter.",
    "Here is a short story about an AI assistant who helps a student.\n\n",
    "As an AI language model, I cannot write this document.",
    "I'm sorry, but I can't help with that request.",
]


def make_run(n: int, out: Path, seed: int = 0) -> dict[str, int]:
    """Write a run directory of `n` synthetic records; returns how many of each kind."""
    sys.path.insert(0, str(REPO))
    from generator.records import Record, count_words
    from tests.support.openai_stub import document_text, name_pool

    rng = random.Random(seed)
    names = name_pool(seed=seed)
    template = json.loads((FIXTURE / "records.jsonl").read_text().splitlines()[0])
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    kinds = {"plain": 0, "exact-duplicate": 0, "near-duplicate": 0, "bad": 0}
    texts: list[str] = []
    sources: list[int] = []  # the index of the record each pooled text came from
    planted = (out / PLANTED).open("w", encoding="utf-8")
    with (out / "records.jsonl").open("w", encoding="utf-8") as handle, planted:
        for index in range(n):
            roll = rng.random()
            source = rng.randrange(len(texts)) if roll < 0.04 and texts else -1  # = rng.choice
            if roll < 0.02 and texts:
                text, kind = texts[source], "exact-duplicate"
            elif roll < 0.04 and texts:
                words = texts[source].split(" ")
                for _ in range(max(len(words) // 40, 1)):  # ~2.5% of words changed
                    words[rng.randrange(len(words))] = rng.choice(["maybe", "quietly", "north"])
                text, kind = " ".join(words), "near-duplicate"
            elif roll < 0.05:
                body = document_text(rng, rng.randint(300, 900), rng.sample(names, 4))
                text = rng.choice(BAD) + body if rng.random() < 0.75 else _loop(body)
                kind = "bad"
            else:
                text = document_text(rng, rng.randint(300, 900), rng.sample(names, 4))
                kind = "plain"
                if len(texts) < 5000:
                    texts.append(text)
                    sources.append(index)
            kinds[kind] += 1
            if source >= 0:
                planted.write(json.dumps({"index": index, "source": sources[source], "kind": kind}))
                planted.write("\n")
            record = copy.deepcopy(template)
            record.update(
                id=f"{rng.getrandbits(64):016x}",
                index=index,
                text=text,
                title=f"Synthetic document {index}",
                names=rng.sample(names, 3),
                n_words=count_words(text),
                created_at="2025-05-01T10:00:00Z",
            )
            if index < 50:  # the contract on disk, checked on a sample
                Record.model_validate(record)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    manifest["counts"].update(accepted=n, target=n)
    manifest["n"] = n
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.copy(FIXTURE / "rejects.jsonl", out / "rejects.jsonl")
    return kinds


def _loop(body: str) -> str:
    sentence = body.split(". ")[0] + ". "
    return body + "\n\n" + sentence * 12


def _records(run: Path) -> Any:
    with (run / "records.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def phase(kind: str, run: Path) -> dict[str, Any]:
    """One phase, in this process: seconds, documents and failures by reason."""
    from generator import spec

    archetypes = {a.id: a for a in spec.load_specs([REPO / "archetypes"])}
    failures: dict[str, int] = {}
    count = 0
    started = time.perf_counter()
    if kind == "heuristics":
        from generator.gates import heuristics

        for record in _records(run):
            outcome = heuristics.check(record["text"], archetypes[record["archetype_id"]])
            for failure in outcome.failures[:1]:
                failures[failure.reason] = failures.get(failure.reason, 0) + 1
            count += 1
    elif kind == "dedup":
        from generator.gates.dedup import DedupIndex

        index = DedupIndex()
        for record in _records(run):
            allowed = [*record["names"], record["ai_name"]]
            outcome = index.check(record["id"], record["text"], allowed_names=allowed)
            if outcome.passed:
                index.add(record["id"], record["text"])
            for failure in outcome.failures[:1]:
                failures[failure.reason] = failures.get(failure.reason, 0) + 1
            count += 1
    else:
        raise SystemExit(f"unknown phase {kind}")
    seconds = time.perf_counter() - started
    return {
        "documents": count,
        "seconds": round(seconds, 2),
        "ms_per_document": round(1000 * seconds / count, 3),
        "failures": failures,
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def measure(n: int, work: Path) -> dict[str, Any]:
    run = work / f"run-{n}"
    started = time.perf_counter()
    kinds = make_run(n, run)
    made = time.perf_counter() - started
    size = (run / "records.jsonl").stat().st_size
    result: dict[str, Any] = {
        "documents": n,
        "kinds": kinds,
        "records_mib": round(size / 2**20, 1),
        "make_s": round(made, 1),
    }
    for kind in ("heuristics", "dedup"):
        child = run_child(
            [PYTHON, "-m", "bench.postprocess", "phase", "--kind", kind, "--run", str(run)]
        )
        if child.returncode != 0:
            raise SystemExit(f"{kind} failed: {child.stderr[-2000:]}")
        result[kind] = json.loads(child.stdout.strip().splitlines()[-1])
        result[kind]["wall_s"] = round(child.wall_s, 2)
        result[kind]["max_rss_mib"] = round(child.max_rss_mib, 1)
    child = run_child([ARCHETYPES, "build", str(run)], env=tool_env())
    if child.returncode != 0:
        raise SystemExit(f"build failed: {child.stderr[-2000:]}")
    parquet = sum(p.stat().st_size for p in (run / "dataset").rglob("*.parquet"))
    result["build"] = {
        "wall_s": round(child.wall_s, 2),
        "cpu_s": round(child.cpu_s, 2),
        "max_rss_mib": round(child.max_rss_mib, 1),
        "parquet_mib": round(parquet / 2**20, 1),
    }
    shutil.rmtree(run, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    make = sub.add_parser("make")
    make.add_argument("--n", type=int, required=True)
    make.add_argument("--out", type=Path, required=True)
    one = sub.add_parser("phase")
    one.add_argument("--kind", choices=["heuristics", "dedup"], required=True)
    one.add_argument("--run", type=Path, required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 30_000, 100_000])
    args = parser.parse_args()
    if args.command == "make":
        print(json.dumps(make_run(args.n, args.out)))
        return
    if args.command == "phase":
        print(json.dumps(phase(args.kind, args.run)))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-postprocess-"))
    try:
        sizes = [measure(n, work) for n in args.sizes]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    path = save("postprocess", {"sizes": sizes})
    print(json.dumps(sizes, indent=2))
    print(f"saved {path}")


if __name__ == "__main__":
    main()

"""Benchmark 7: corpus-scale post-processing, in one process against datatrove's local executor.

One synthetic run directory of N documents (bench/postprocess.py's generator: prose-like text,
300-900 words, 2% exact and 2% near-duplicates planted, 1% bad documents), then each phase in a
child process of its own, on each path:

  path        what runs
  baseline    the code before issue 17 (a `git archive` export given with --baseline), in one
              process: heuristics (gates.heuristics.check only), dedup (DedupIndex), build
  inprocess   this code in one process: dedup (the in-run gate's DedupIndex over the corpus),
              checks (the per-document gates: tropes, truncation, heuristics, screen), stats
              (CorpusStats, every figure), build (dataset.build)
  datatrove   this code on datatrove's local executor with --workers processes: dedup
              (generator/scale/dedup.py on a hard-linked copy of the run), checks, stats, build

Wall time, CPU (user + system of the whole process tree, sampled from /proc), and peak memory
of the whole tree: the largest sum over its processes of RSS and of PSS (proportional set size: shared
pages counted once), sampled every 0.25 s from /proc. Per-document cost is wall and CPU over N.

    python -m bench.scale --n 100000 [--workers 2] [--paths baseline inprocess datatrove]
        [--phases build dedup] [--baseline /tmp/base] [--work DIR] [--keep] [--suffix -x]
    python -m bench.scale make --n 1000000 --out DIR [--jobs 2]  # just the run directory
    (git archive HEAD | tar -x -C /tmp/base   # the baseline: the code before the change)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench._common import PYTHON, REPO, save, tool_env

PHASES = {
    "baseline": ("heuristics", "dedup", "build"),
    "inprocess": ("dedup", "checks", "stats", "build"),
    "datatrove": ("dedup", "checks", "stats", "build"),
}
SAMPLE_SECONDS = 0.25


# ---------------------------------------------------------------------------------------------
# Measuring a process tree


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _sample(pid: int, cpu: dict[tuple[int, str], float]) -> tuple[int, int]:
    """(RSS, PSS) in KiB of a process and all its descendants; each one's CPU seconds so far
    go into `cpu` (keyed by pid and start time, so a reused pid is another process)."""
    tree, todo, rss, pss = _children(), [pid], 0, 0
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        current = todo.pop()
        todo.extend(tree.get(current, []))
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            cpu[(current, fields[19])] = (int(fields[11]) + int(fields[12])) / tick
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return rss, pss


def measure(args: list[str], cwd: Path = REPO, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a child to completion: wall, tree CPU, peak tree RSS and PSS, its last stdout line."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            args, cwd=cwd, env=env or tool_env(), stdout=out, stderr=err, stdin=subprocess.DEVNULL
        )
        peak = [0, 0]
        cpu: dict[tuple[int, str], float] = {}
        done = threading.Event()

        def sample() -> None:
            while not done.wait(SAMPLE_SECONDS):
                rss, pss = _sample(process.pid, cpu)
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        done.set()
        sampler.join()
        wall = time.monotonic() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{stderr[-3000:]}")
    lines = stdout.strip().splitlines()
    return {
        "wall_s": round(wall, 1),
        # wait4 counts the child and the descendants it reaped; datatrove's workers are the
        # fork server's children, so their CPU comes from the samples (each process's own time
        # at its last sample: at most 0.25 s short per process).
        "cpu_s": round(max(usage.ru_utime + usage.ru_stime, sum(cpu.values())), 1),
        "processes": len(cpu),
        "peak_rss_mib": round(peak[0] / 1024, 1),
        "peak_pss_mib": round(peak[1] / 1024, 1),
        "result": json.loads(lines[-1]) if lines and lines[-1].startswith("{") else None,
    }


# ---------------------------------------------------------------------------------------------
# The phases, each run in its own process by `phase`


def _specs() -> list[Path]:
    return sorted((REPO / "archetypes").glob("*.yaml"))


def _executor(workers: int) -> Any:
    from generator.scale.executors import ExecutorOptions

    return ExecutorOptions(workers=workers, tasks=workers)


def run_phase(path: str, kind: str, run: Path, workers: int) -> dict[str, Any]:
    """One phase in this process; returns what it found (counts, to check the paths agree)."""
    if path == "inprocess":
        return _in_process(kind, run)
    work = Path(tempfile.mkdtemp(prefix=f"bench-scale-{kind}-", dir=run.parent))
    try:
        return _on_executor(kind, run, work, workers)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _in_process(kind: str, run: Path) -> dict[str, Any]:
    from collections import Counter

    from generator import dataset
    from generator.rundir import read_run
    from generator.scale.steps import DocumentChecks
    from generator.spec import load_specs
    from generator.stats import CorpusStats

    if kind == "build":
        return {"rows": dataset.build(run).rows}
    if kind == "dedup":  # the in-run gate's index over the whole corpus, as merge's old loop
        from bench.postprocess import phase

        return dict(phase("dedup", run)["failures"])
    if kind == "stats":
        stats = CorpusStats()
        for record in read_run(run).records():
            stats.add(record)
        return {"documents": stats.documents, "tokens": stats.tokens}
    checks, counts = DocumentChecks(load_specs(_specs())), Counter[str]()
    for record in read_run(run).records():
        verdict = checks.check(record)
        counts[verdict.failures[0]["reason"] if verdict.failures else "passed"] += 1
    return dict(counts)


def _on_executor(kind: str, run: Path, work: Path, workers: int) -> dict[str, Any]:
    from generator import dataset
    from generator.scale import steps

    options = _executor(workers)
    if kind == "build":
        return {"rows": steps.build_on_executor(run, dataset.BuildOptions(), options).rows}
    if kind == "stats":
        stats = steps.corpus_stats(run, work, options)
        return {"documents": stats.documents, "tokens": stats.tokens}
    if kind == "checks":
        target = work / "verdicts.jsonl"
        return dict(steps.check_corpus(run, target, work / "steps", options, _specs()))
    return _dedup(run, work, options)


def _dedup(run: Path, work: Path, options: Any) -> dict[str, Any]:
    """generator/scale/dedup.py's pass, on a copy of the run: records.jsonl hard-linked (the
    pass replaces it by a new file, so the original is left as it was), the small files copied
    (the pass appends to rejects.jsonl)."""
    from generator.scale.dedup import dedup_run

    copy = work / "run"
    copy.mkdir()
    os.link(run / "records.jsonl", copy / "records.jsonl")
    for name in ("manifest.json", "rejects.jsonl"):
        shutil.copy(run / name, copy / name)
    summary = dedup_run(copy, options)
    return {"status": summary.status, "kept": summary.records, "removed": summary.removed}


def child(path: str, kind: str, run: Path, workers: int, baseline: Path | None) -> list[str]:
    """The command line of one phase."""
    if path == "baseline":
        assert baseline is not None, "--baseline is needed for the baseline path"
        if kind == "build":
            return [PYTHON, "-m", "generator", "build", str(run)]
        return [PYTHON, "-m", "bench.postprocess", "phase", "--kind", kind, "--run", str(run)]
    return [
        PYTHON, "-m", "bench.scale", "phase", "--path", path, "--kind", kind,
        "--run", str(run), "--workers", str(workers),
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The benchmark


def make_parallel(n: int, out: Path, jobs: int) -> dict[str, int]:
    """bench/postprocess.py's `make_run` in `jobs` processes, each writing its share of the
    documents with a seed of its own (its duplicates drawn from its own share), joined into
    one records.jsonl in order with `index` renumbered."""
    from concurrent.futures import ProcessPoolExecutor

    from bench.postprocess import PLANTED, make_run

    shares = [n // jobs + (1 if k < n % jobs else 0) for k in range(jobs)]
    parts = [out / f"part-{k}" for k in range(jobs)]
    with ProcessPoolExecutor(jobs) as pool:
        kinds = list(pool.map(make_run, shares, parts, range(jobs)))
    index = 0
    records = (out / "records.jsonl").open("w", encoding="utf-8")
    with records, (out / PLANTED).open("w", encoding="utf-8") as planted:
        for part in parts:
            for line in (part / PLANTED).open(encoding="utf-8"):
                row = json.loads(line)
                row.update(index=row["index"] + index, source=row["source"] + index)
                planted.write(json.dumps(row) + "\n")
            with (part / "records.jsonl").open(encoding="utf-8") as lines:
                for line in lines:
                    record = json.loads(line)
                    record["index"] = index
                    index += 1
                    records.write(json.dumps(record, ensure_ascii=False) + "\n")
    manifest = json.loads((parts[0] / "manifest.json").read_text())
    manifest["counts"].update(accepted=n, target=n)
    manifest["n"] = n
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.copy(parts[0] / "rejects.jsonl", out / "rejects.jsonl")
    for part in parts:
        shutil.rmtree(part)
    return {kind: sum(k[kind] for k in kinds) for kind in kinds[0]}


def bench(args: argparse.Namespace) -> dict[str, Any]:
    run = args.work / f"run-{args.n}"
    made: dict[str, Any] = {}
    if not (run / "records.jsonl").exists():
        started = time.monotonic()
        made["kinds"] = make_parallel(args.n, run, args.workers)
        made["make_s"] = round(time.monotonic() - started, 1)
    made["records_mib"] = round((run / "records.jsonl").stat().st_size / 2**20, 1)
    results: dict[str, Any] = {"documents": args.n, "workers": args.workers, **made}
    for path in args.paths:
        for kind in (k for k in PHASES[path] if not args.phases or k in args.phases):
            cwd = args.baseline if path == "baseline" else REPO
            started = time.strftime("%H:%M:%S")
            print(f"{started} {path} {kind} ...", file=sys.stderr, flush=True)
            measured = measure(child(path, kind, run, args.workers, args.baseline), cwd=cwd)
            measured["ms_per_document"] = round(1000 * measured["wall_s"] / args.n, 3)
            measured["cpu_ms_per_document"] = round(1000 * measured["cpu_s"] / args.n, 3)
            measured["load_avg_1min"] = round(os.getloadavg()[0], 2)
            results[f"{path}/{kind}"] = measured
            print(json.dumps({f"{path}/{kind}": measured}), file=sys.stderr, flush=True)
    if not args.keep:
        shutil.rmtree(run, ignore_errors=True)
    return results


def _earlier(name: str) -> dict[str, Any]:
    from bench._common import RESULTS

    try:
        earlier = json.loads((RESULTS / f"{name}.json").read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in earlier.items() if k not in ("benchmark", "machine")}


def table(results: dict[str, Any]) -> str:
    """The results as a markdown table."""
    rows = [
        "| path | phase | wall s | CPU s | peak RSS MiB (tree) | peak PSS MiB (tree) "
        "| wall ms/doc | CPU ms/doc |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, m in results.items():
        if "/" not in key or not isinstance(m, dict):
            continue
        path, kind = key.split("/")
        rows.append(
            f"| {path} | {kind} | {m['wall_s']} | {m['cpu_s']} | {m['peak_rss_mib']} "
            f"| {m['peak_pss_mib']} | {m['ms_per_document']} | {m['cpu_ms_per_document']} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    make = sub.add_parser("make")
    make.add_argument("--n", type=int, required=True)
    make.add_argument("--out", type=Path, required=True)
    make.add_argument("--jobs", type=int, default=2)
    one = sub.add_parser("phase")
    one.add_argument("--path", choices=["inprocess", "datatrove"], required=True)
    one.add_argument("--kind", choices=["dedup", "checks", "stats", "build"], required=True)
    one.add_argument("--run", type=Path, required=True)
    one.add_argument("--workers", type=int, default=2)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--paths", nargs="+", default=["inprocess", "datatrove"])
    parser.add_argument("--phases", nargs="+", default=None, help="only these phases")
    parser.add_argument("--baseline", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    parser.add_argument("--suffix", default="", help="added to the results file's name")
    args = parser.parse_args()
    if args.command == "make":
        print(json.dumps(make_parallel(args.n, args.out, args.jobs)))
        return
    if args.command == "phase":
        print(json.dumps(run_phase(args.path, args.kind, args.run, args.workers)))
        return
    args.work = args.work or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    name = f"scale-{args.n}{args.suffix}"
    results = {**_earlier(name), **bench(args)}  # a rerun of some phases keeps the others
    path = save(name, results)
    print(table(results))
    print(f"saved {path}")


if __name__ == "__main__":
    main()

"""How long the README's first command makes a new user wait once it is installed: the demo's
own `generate` (one archetype, the embedded model, compact brief, judge off, length relaxed),
then `build` and `report`, each timed, with the longest gap between progress lines.

    .venv/bin/python -m bench.demo [--documents 4] [--runs 1]

Run it on an idle machine: the target is at most 3 minutes of generation on 2 idle cores.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench._common import ARCHETYPES, REPO, machine, run_child, save, tool_env

PROGRESS = re.compile(r"^generate: \d+/\d+ documents, .* (\d+) s$")


def demo_once(documents: int, out: Path) -> dict[str, Any]:
    generate = run_child(
        [
            ARCHETYPES,
            "generate",
            str(REPO / "archetypes" / "patient-tutor.yaml"),
            "--provider",
            "local",
            "-n",
            str(documents),
            "--out",
            str(out),
            "--relax",
            "length",
            "--judge",
            "off",
            "--no-progress",
        ],
        env=tool_env(),
    )
    stamps = [
        int(m.group(1)) for line in generate.stderr.splitlines() if (m := PROGRESS.match(line))
    ]
    gaps = [b - a for a, b in zip([0, *stamps], stamps, strict=False)]
    build = run_child([ARCHETYPES, "build", str(out)], env=tool_env())
    report = run_child([ARCHETYPES, "report", str(out), "--no-embeddings"], env=tool_env())
    manifest = json.loads((out / "manifest.json").read_text())
    return {
        "exit_codes": [generate.returncode, build.returncode, report.returncode],
        "generate_s": round(generate.wall_s, 1),
        "build_s": round(build.wall_s, 1),
        "report_s": round(report.wall_s, 1),
        "longest_progress_gap_s": max(gaps, default=None),
        "progress_lines": len(stamps),
        "kept": manifest["counts"]["accepted"],
        "rejected": manifest["counts"]["rejected_by_reason"],
        "model_calls": manifest["calls_this_session"]["model_calls"],
        "usage": manifest["usage"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=4)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    runs = []
    for _ in range(args.runs):
        folder = Path(tempfile.mkdtemp(prefix="bench-demo-"))
        try:
            runs.append(demo_once(args.documents, folder / "demo"))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(runs[-1], flush=True)
    result = {
        "machine": machine(),
        "documents": args.documents,
        "runs": runs,
        "generate_s_median": statistics.median(r["generate_s"] for r in runs),
    }
    print(f"saved {save('demo', result)}")


if __name__ == "__main__":
    main()

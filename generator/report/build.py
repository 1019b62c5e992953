"""`archetypes report DIR`: read the run, gather the statistics, build, render and write the page."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from generator import stats as st
from generator.errors import OutputError, UserError
from generator.records import Record, iter_records
from generator.report.page import build_page
from generator.report.render import render, summary_lines
from generator.rundir import MANIFEST, RECORDS, REJECTS, read_run

REPORT_DIR = "report"
INDEX = "index.html"
_ID = re.compile(r'^\{"id":\s*"([0-9a-f]{16})"')


@dataclass
class ReportResult:
    """What `archetypes report` wrote, and the lines it prints."""

    path: Path
    lines: list[str]


# ---------------------------------------------------------------------------------------------
# Reading the run


def _find_briefs(path: Path, wanted: set[str], corpus: st.CorpusStats) -> None:
    """A second, cheap pass for documents named by near-duplicate edges after they were read."""
    if not wanted or not path.exists():
        return
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                return
            found = _ID.match(line[:40].decode("utf-8", "replace"))
            if found and found.group(1) not in wanted:
                continue
            try:
                record = Record.model_validate_json(line)
            except ValidationError:
                continue
            if record.id in wanted:
                corpus.keep_brief(record)


def build_report(run_dir: Path, *, embeddings: bool = True) -> ReportResult:
    """Write RUN/report/index.html and return it with the lines the CLI prints."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run directory")
    if not any((run_dir / name).exists() for name in (RECORDS, REJECTS, MANIFEST)):
        raise UserError(
            f"{run_dir}: not a run directory (no {RECORDS}, {REJECTS} or {MANIFEST}); "
            f"run `archetypes generate --out {run_dir}` first"
        )
    out_dir = run_dir / REPORT_DIR
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a directory; move it away and try again")

    manifest = read_run(run_dir).manifest_json()
    rejects = st.read_rejects(run_dir)
    corpus = st.CorpusStats(watch={of for _, of, _ in rejects.duplicate_edges})
    for record in iter_records(run_dir / RECORDS, then="run the report again"):
        corpus.add(record)
    _find_briefs(run_dir / RECORDS, corpus.missing_briefs(), corpus)
    targets, plan_notes = st.plan_targets(manifest)
    page = build_page(run_dir, manifest, corpus, rejects, targets, plan_notes, embeddings)
    html = render(page)
    path = _write(out_dir, html)
    return ReportResult(path=path, lines=summary_lines(page, path, len(html.encode("utf-8"))))


def _write(out_dir: Path, html: str) -> Path:
    target = out_dir / INDEX
    temporary = out_dir / f".{INDEX}.tmp-{os.getpid()}"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        temporary.write_text(html, encoding="utf-8")
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise OutputError(f"{target}: cannot write the report: {exc.strerror or exc}") from None
    return target

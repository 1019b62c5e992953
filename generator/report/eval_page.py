"""The page of an eval directory (DIR/eval.html): the figures of DIR/eval.json per archetype and
trait, the difference against the baseline, the anti-markers and backfire behaviours the
answers showed, and a few of the open answers with the judge's reading; plus the lines
`archetypes eval` and `archetypes report DIR` print.

It wears the corpus report's style: the CSS is read from generator/templates/report.html.j2,
so the two pages stay alike without a copy. Like that page it is self-contained (no scripts,
no requests) and deterministic: the same eval.json and answers give the same bytes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from generator.eval_answers import AnswerLine, read_answers
from generator.eval_report import (
    ArchetypeReport,
    Estimate,
    EvalReport,
    PairedProportion,
    Scores,
    Share,
    read_report,
    write_whole,
)
from generator.report.render import html_environment
from generator.resources import templates_dir
from generator.rundir import EVAL_PAGE, RunDir

SAMPLES_SHOWN = 3  # open answers shown per archetype


@functools.cache
def report_style() -> str:
    """The corpus report's CSS, so both pages look alike."""
    source = (templates_dir() / "report.html.j2").read_text(encoding="utf-8")
    found = re.search(r"<style>(.*?)</style>", source, re.DOTALL)
    return found.group(1).strip() if found else ""


def _num(value: float | None, digits: int = 2, percent: bool = True, signed: bool = False) -> str:
    """A figure as shown: a percentage (0.734 -> 73%) or a plain number, "–" when missing."""
    if value is None:
        return "–"
    shown = value * 100 if percent else value
    text = f"{shown:+.{digits}f}" if signed else f"{shown:.{digits}f}"
    if text.lstrip("+-").strip("0.") == "":
        text = f"{0:.{digits}f}"  # no "-0" or "+0"
    return text + ("%" if percent else "")


def _at(value: float, low: float, high: float) -> float:
    """Where `value` sits on a bar spanning low..high, in percent of its width."""
    return round(100 * (min(max(value, low), high) - low) / (high - low), 2)


def _width(low: float, high: float, start: float, end: float) -> float:
    """How much of a bar spanning start..end the interval low..high covers, in percent."""
    return round(_at(high, start, end) - _at(low, start, end), 2)


def _share(found: Share | None) -> str:
    if found is None or not found.n:
        return "–"
    return f"{found.count}/{found.n} ({_num(found.share, 0)})"


def _rows(archetype: ArchetypeReport) -> list[tuple[str, Scores, bool]]:
    """The archetype's own row, then one per trait: (name, scores, is the archetype's row)."""
    return [(archetype.id, archetype.scores, True)] + [
        (t.id, t.scores, False) for t in archetype.traits
    ]


def _behaviours(scores: Scores, with_baseline: bool) -> list[tuple[str, str, list[Share | None]]]:
    """Every anti-marker and backfire behaviour of a group, with its share in each source: the
    model's choice and open answers, then the baseline's when there is one."""
    sides = [scores.model]
    if with_baseline and scores.baseline is not None:
        sides.append(scores.baseline)
    rows: list[tuple[str, str, list[Share | None]]] = []
    for kind in ("anti-marker", "backfire"):
        sources: list[dict[str, Share]] = []
        for side in sides:
            if kind == "anti-marker":
                sources += [side.choice.anti_markers, side.open.anti_markers]
            else:
                sources += [side.choice.backfire, side.open.backfire]
        for label in dict.fromkeys(label for source in sources for label in source):
            rows.append((kind, label, [source.get(label) for source in sources]))
    return rows


def _samples(
    report: EvalReport, answers: Sequence[AnswerLine]
) -> list[tuple[str, list[AnswerLine]]]:
    """Per archetype, its lowest-scored judged open answers (then by probe id: stable)."""
    out = []
    for archetype in report.archetypes:
        judged = [
            a
            for a in answers
            if a.archetype_id == archetype.id and a.kind == "open" and a.verdict is not None
        ]
        judged.sort(key=lambda a: (a.verdict.score if a.verdict else 0, a.probe_id, a.side))
        if judged:
            out.append((archetype.id, judged[:SAMPLES_SHOWN]))
    return out


def _environment() -> jinja2.Environment:
    return html_environment(num=_num, at=_at, width=_width)


def render_eval_page(report: EvalReport, answers: Sequence[AnswerLine] = ()) -> str:
    """The whole page, as one self-contained HTML string."""
    context: dict[str, Any] = {
        "r": report,
        "style": report_style(),
        "logprobs": report.overall.model.choice.mean_p_correct is not None,
        "rows": _rows,
        "behaviours": _behaviours,
        "share": _share,
        "samples": _samples(report, answers),
        "shown": SAMPLES_SHOWN,
    }
    return _environment().get_template("eval.html.j2").render(**context)


def _interval(
    found: Estimate | PairedProportion | None, percent: bool = True, signed: bool = False
) -> str:
    if found is None or found.value is None:
        return "–"
    digits = 0 if percent else 2
    text = _num(found.value, digits, percent, signed)
    if found.low is not None and found.high is not None:
        low, high = (_num(v, digits, percent, signed) for v in (found.low, found.high))
        text += f" [{low}, {high}]"
    return text


def summary_lines(report: EvalReport, page: Path) -> list[str]:
    """What `archetypes eval` and `archetypes report` print about an eval."""
    counts, overall = report.counts, report.overall
    lines = [
        f"evaluated {counts.probes} probes ({counts.choice} choice, {counts.open} open) "
        f"with {report.model.provider}/{report.model.model}"
        + (f" against {report.baseline.model}" if report.baseline else "")
    ]
    sides = [("model", overall.model)] + (
        [("baseline", overall.baseline)] if overall.baseline else []
    )
    for name, side in sides:
        choice = side.choice
        line = (
            f"{name}: choice accuracy {_interval(choice.accuracy)} over {choice.accuracy.n} items "
            f"(chance {_num(choice.chance, 0)}, letters read {_num(choice.parse_rate, 0)})"
        )
        if choice.mean_p_correct is not None:
            line += f"; p(right option) {_interval(choice.mean_p_correct, percent=False)}"
        score = _interval(side.open.mean_score, percent=False)
        line += f"; judge score {score} over {side.open.judged}"
        lines.append(line)
    if overall.difference is not None:
        d = overall.difference
        lines.append(
            f"difference (model - baseline): accuracy {_interval(d.accuracy, signed=True)}, "
            f"judge score {_interval(d.mean_score, percent=False, signed=True)}"
        )
    if report.judge.mode != "off":
        lines.append(
            f"judge: {report.judge.provider}/{report.judge.model}"
            + (" (advisory)" if report.judge.advisory else "")
        )
    lines.append(
        f"answers {counts.answers}, failed {counts.failed}, letters not read {counts.unparsed}, "
        f"open answers not judged {counts.unjudged}; model calls {report.usage.model_calls}, "
        f"cache hits {report.usage.cache_hits}, cost ${report.usage.cost_usd:.4f}"
    )
    lines.extend(f"note: {note}" for note in report.notes)
    lines.append(f"wrote {page}")
    return lines


@dataclass(frozen=True)
class EvalPageResult:
    path: Path
    lines: list[str]


def write_eval_page(eval_dir: Path) -> EvalPageResult:
    """`archetypes report DIR` on an eval directory: render DIR/eval.html again."""
    report = read_report(eval_dir)
    answers = read_answers(eval_dir)
    with RunDir(eval_dir) as rundir:
        path = write_whole(rundir, EVAL_PAGE, render_eval_page(report, answers))
    return EvalPageResult(path, summary_lines(report, path))

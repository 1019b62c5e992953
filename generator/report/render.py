"""The Page as one self-contained HTML file (Jinja, generator/templates/report.html.j2), its
atomic write, and the summary the CLI prints."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from generator.report.embeddings import EMBED_CHUNK_WORDS, EMBED_MAX_CHUNKS, EMBED_MAX_DOCS
from generator.report.model import SAMPLES_SHOWN, TOP, Page
from generator.resources import templates_dir


def paragraphs(text: str) -> markupsafe.Markup:
    """Escaped text as <p> blocks (blank lines) with <br> for single line breaks."""
    blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))]
    html = "".join(
        "<p>" + "<br>\n".join(str(markupsafe.escape(line)) for line in block.split("\n")) + "</p>\n"
        for block in blocks
        if block.strip()
    )
    return markupsafe.Markup(html)


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value.is_integer() and digits == 0:
            return f"{int(value):,}"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _signed(value: int | None) -> str:
    if value is None:
        return "–"
    return f"+{value}" if value > 0 else str(value)


def html_environment(**filters: Any) -> jinja2.Environment:
    """The Jinja environment of the report's pages (the run's and the eval's): the shipped
    templates, HTML escaping, `paragraphs`, and the page's own `filters`."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(paragraphs=paragraphs, **filters)
    return env


def _environment() -> jinja2.Environment:
    return html_environment(fmt=_fmt, signed=_signed, label=lambda text: text.replace("_", " "))


def render(page: Page) -> str:
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            page=page,
            top=TOP,
            samples_shown=SAMPLES_SHOWN,
            embed_docs=EMBED_MAX_DOCS,
            embed_words=EMBED_CHUNK_WORDS,
            embed_chunks=EMBED_MAX_CHUNKS,
        )
    )


def summary_lines(page: Page, path: Path, size: int) -> list[str]:
    """The short text summary `archetypes report` prints."""
    lines = [f"wrote {path} ({size / 1024:,.0f} KB, {page.figures} figures, self-contained)"]
    reasons = ", ".join(f"{r} {n}" for r, n in page.reject_reasons[:6]) or "none"
    more = f", +{len(page.reject_reasons) - 6} more" if len(page.reject_reasons) > 6 else ""
    lines.append(
        f"{page.accepted} accepted, {page.rejected} rejected ({reasons}{more}) "
        f"across {len(page.archetypes)} archetype(s)"
    )
    if page.plan_known:
        parts = [f"{c.id} {c.accepted}/{c.planned}" for c in page.coverage if c.planned is not None]
        lines.append("accepted/planned: " + ", ".join(parts))
        missing = sum(c.missing_cells or 0 for c in page.coverage)
        if missing:
            lines.append(f"{missing} planned trait x genre cell(s) have no accepted document")
    if page.judged:
        focus = sum(s * sum(j.focus_counts[s - 1] for j in page.judge) for s in range(1, 6))
        lines.append(
            f"judge: {page.judged} of {page.accepted} judged, mean focus score "
            f"{focus / page.judged:.2f}; weakest: "
            + ", ".join(f"{w.id} ({w.focus_score})" for w in page.weakest[:3])
        )
    elif page.accepted:
        lines.append("judge: no verdicts in this run")
    if page.sample_size:
        d2 = page.distinct.get("distinct-2")
        opening = page.openings[0] if page.openings else None
        lines.append(
            f"diversity: distinct-2 {_fmt(d2)} over {page.sample_size} documents; "
            + (f"most repeated opening x{opening[1]}; " if opening else "no repeated opening; ")
            + f"{page.clusters_total} near-duplicate cluster(s)"
        )
    if page.spread is not None:
        parts = [
            f"{a} {_fmt(w)}"
            for a, w in zip(page.spread.archetypes, page.spread.within, strict=True)
        ]
        lines.append("embedding spread (mean cosine distance): " + ", ".join(parts))
    elif page.spread_note:
        lines.append(f"note: {page.spread_note}")
    lines.extend(f"note: {note}" for note in page.notes)
    return lines

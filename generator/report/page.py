"""The Page, built from the corpus statistics, the rejections and the plan's targets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import stats as st
from generator.report.embeddings import EMBED_MAX_DOCS, INSTALL_HINT, embedding_available, spread
from generator.report.figures import (
    heatmap,
    histograms,
    score_heatmap,
    similarity_bars,
    spread_figure,
    stacked_bars,
)
from generator.report.model import (
    SAMPLES_SHOWN,
    TOP,
    ArchetypeCoverage,
    ArchetypeJudge,
    AxisRow,
    ClusterMember,
    LengthRow,
    Page,
    TraitRow,
)


def _axis_rows(
    values: Sequence[str], planned: Counter[str] | None, accepted: Counter[str]
) -> list[AxisRow]:
    ordered = list(dict.fromkeys([*values, *sorted(accepted)]))
    return [
        AxisRow(v, None if planned is None else planned.get(v, 0), accepted.get(v, 0))
        for v in ordered
    ]


def _marginal(
    cells: Mapping[tuple[str, str, str], int], archetype: str, position: int
) -> Counter[str]:
    out: Counter[str] = Counter()
    for key, n in cells.items():
        if key[0] == archetype:
            out[key[position]] += n
    return out


def _cells(cells: Mapping[tuple[str, str, str], int], archetype: str) -> dict[tuple[str, str], int]:
    return {(k[1], k[2]): n for k, n in cells.items() if k[0] == archetype}


# The two cross-tabulations of the coverage section: the counters' name on CorpusStats and
# PlanTargets, then the row axis, the column axis and how the figure names them.
_CROSSTABS = {
    "trait_genre": ("trait_focus", "genre", "trait in focus x genre", "trait in focus", "genre"),
    "setting_narrator": ("setting", "narrator", "setting x narrator", "setting", "narrator"),
}


@dataclass
class _Crosstab:
    axes: dict[str, list[AxisRow]]
    actual: dict[tuple[str, str], int]
    planned: dict[tuple[str, str], int] | None
    png: str | None


def _coverage(
    corpus: st.CorpusStats, targets: st.PlanTargets | None, rejects: st.RejectStats, archetype: str
) -> ArchetypeCoverage:
    known = targets is not None and archetype in targets.axes
    tg = _crosstab(corpus, targets, archetype, "trait_genre", known)
    sn = _crosstab(corpus, targets, archetype, "setting_narrator", known)
    missing = (
        sum(1 for cell, p in tg.planned.items() if p > 0 and tg.actual.get(cell, 0) == 0)
        if tg.planned is not None
        else None
    )
    rejected = sum(n for (a, _), n in rejects.by_archetype_reason.items() if a == archetype)
    return ArchetypeCoverage(
        id=archetype,
        accepted=corpus.by_archetype.get(archetype, 0),
        planned=targets.by_archetype.get(archetype, 0) if known and targets else None,
        rejected=rejected,
        trait_genre_png=tg.png,
        setting_narrator_png=sn.png,
        axes={**tg.axes, **sn.axes},
        missing_cells=missing,
    )


def _crosstab(
    corpus: st.CorpusStats,
    targets: st.PlanTargets | None,
    archetype: str,
    name: str,
    known: bool,
) -> _Crosstab:
    """One cross-tabulation of an archetype's documents: the two axes' tables (planned and
    accepted per value) and the heatmap of accepted against planned per cell."""
    row_axis, col_axis, what, ylabel, xlabel = _CROSSTABS[name]
    spec_axes = targets.axes.get(archetype, {}) if targets else {}
    actual_cells: Mapping[tuple[str, str, str], int] = getattr(corpus, name)
    planned_cells: Mapping[tuple[str, str, str], int] | None = (
        getattr(targets, name) if targets else None
    )
    axes: dict[str, list[AxisRow]] = {}
    values: list[list[str]] = []
    for axis, position in ((row_axis, 1), (col_axis, 2)):
        seen = sorted(_marginal(actual_cells, archetype, position))
        values.append(list(dict.fromkeys([*spec_axes.get(axis, []), *seen])))
        planned = _marginal(planned_cells, archetype, position) if known and planned_cells else None
        axes[axis] = _axis_rows(values[-1], planned, _marginal(actual_cells, archetype, position))
    rows, cols = values
    actual = _cells(actual_cells, archetype)
    plan = _cells(planned_cells, archetype) if known and planned_cells is not None else None
    has_docs = corpus.by_archetype.get(archetype, 0) > 0 or known
    png = None
    if has_docs and rows and cols:
        shown = "accepted/planned" if known else "accepted"
        png = heatmap(
            rows, cols, actual, plan,
            title=f"{archetype}: {what} ({shown})", xlabel=xlabel, ylabel=ylabel,
        )  # fmt: skip
    return _Crosstab(axes=axes, actual=actual, planned=plan, png=png)


def _judge(
    corpus: st.CorpusStats, targets: st.PlanTargets | None, archetype: str
) -> ArchetypeJudge:
    spec_traits = (targets.axes.get(archetype, {}) if targets else {}).get("trait_focus", [])
    seen = sorted({t for (a, t, _) in corpus.scores_by_trait if a == archetype})
    traits = list(dict.fromkeys([*spec_traits, *seen]))
    rows: list[TraitRow] = []
    for trait in traits:
        counts = [corpus.scores_by_trait.get((archetype, trait, s), 0) for s in range(1, 6)]
        judged = sum(counts)
        rows.append(
            TraitRow(
                trait=trait,
                judged=judged,
                mean=sum(s * c for s, c in zip(range(1, 6), counts, strict=True)) / judged
                if judged
                else None,
                counts=counts,
                evidence_missing=corpus.evidence_missing.get((archetype, trait), 0),
            )
        )
    focus = [corpus.focus_by_archetype.get((archetype, s), 0) for s in range(1, 6)]
    judged = corpus.judged_by_archetype.get(archetype, 0)
    png = None
    if judged:
        cells = {("focus score (planned trait)", s): focus[s - 1] for s in range(1, 6)}
        for row in rows:
            cells.update({(row.trait, s): row.counts[s - 1] for s in range(1, 6)})
        png = score_heatmap(
            ["focus score (planned trait)", *[r.trait for r in rows]],
            cells,
            f"{archetype}: judge scores per trait ({judged} documents)",
        )
    return ArchetypeJudge(
        id=archetype,
        judged=judged,
        focus_counts=focus,
        focus_mean=sum(s * c for s, c in zip(range(1, 6), focus, strict=True)) / judged
        if judged
        else None,
        traits=rows,
        png=png,
    )


def _summary_numbers(counter: Mapping[int, int]) -> dict[str, float | None]:
    return {
        "min": float(min(counter)) if counter else None,
        "median": st.quantile(counter, 0.5),
        "mean": st.mean(counter),
        "p90": st.quantile(counter, 0.9),
        "max": float(max(counter)) if counter else None,
    }


def _clusters(
    corpus: st.CorpusStats, rejects: st.RejectStats
) -> tuple[list[list[ClusterMember]], int]:
    edges = [(a, b) for a, b, _ in corpus.near_edges]
    rejected_ids = {task for task, _, _ in rejects.duplicate_edges}
    edges += [(task, of) for task, of, _ in rejects.duplicate_edges]
    groups = st.clusters(edges)
    members: list[list[ClusterMember]] = []
    for group in groups[:TOP]:
        row = []
        for doc_id in group:
            brief = corpus.briefs.get(doc_id)
            status = (
                "accepted" if brief else "rejected" if doc_id in rejected_ids else "earlier run"
            )
            row.append(ClusterMember(doc_id, brief, status))
        members.append(row)
    return members, len(groups)


def _facts(manifest: Mapping[str, Any] | None, corpus: st.CorpusStats) -> dict[str, Any]:
    m = manifest or {}
    counts: dict[str, Any] = m["counts"] if isinstance(m.get("counts"), dict) else {}
    writers = sorted({model for _, model in corpus.writers})
    return {
        "status": m.get("status") if isinstance(m.get("status"), str) else None,
        "provider": m.get("provider") if isinstance(m.get("provider"), str) else None,
        "model": m.get("model") if isinstance(m.get("model"), str) else None,
        "seed": m.get("seed") if isinstance(m.get("seed"), int) else None,
        "n": m.get("n") if isinstance(m.get("n"), int) else None,
        "target": counts.get("target") if isinstance(counts.get("target"), int) else None,
        "tool": m.get("tool") if isinstance(m.get("tool"), str) else None,
        "writers": writers,
        "judges": sorted(corpus.judges),
        "tiny": corpus.tiny_writer or m.get("provider") == "local",
        "words": corpus.words,
        "tokens": corpus.tokens,
    }


def build_page(
    run_dir: Path,
    manifest: dict[str, Any] | None,
    corpus: st.CorpusStats,
    rejects: st.RejectStats,
    targets: st.PlanTargets | None,
    plan_notes: list[str],
    embeddings: bool,
) -> Page:
    """The page's model: every section's tables and figures, from the statistics gathered in
    one pass over the run."""
    listed = [str(e["id"]) for e in (manifest or {}).get("archetypes") or [] if isinstance(e, dict) and e.get("id")]  # fmt: skip
    archetypes = sorted(
        {*listed, *corpus.by_archetype, *(a for a, _ in rejects.by_archetype_reason)}
    )
    page = Page(
        run_name=run_dir.resolve().name,
        facts=_facts(manifest, corpus),
        archetypes=archetypes,
        accepted=corpus.documents,
        rejected=rejects.total,
        notes=list(plan_notes),
        plan_known=targets is not None,
    )
    if manifest is None:
        page.notes.append("the run has no readable manifest.json; figures come from the records")
    page.coverage = [_coverage(corpus, targets, rejects, a) for a in archetypes]

    page.judged = corpus.documents - corpus.not_judged
    page.judge = [_judge(corpus, targets, a) for a in archetypes]
    page.weakest = corpus.weakest if page.judged else []
    _add_rejections(page, rejects)
    _add_lengths(page, corpus)
    samples = corpus.archetype_samples()
    _add_diversity(page, corpus, rejects, samples)
    _add_spread(page, corpus, samples, embeddings)
    page.samples = [(a, docs[:SAMPLES_SHOWN]) for a, docs in samples.items()]
    page.figures = _count_figures(page)
    return page


def _add_rejections(page: Page, rejects: st.RejectStats) -> None:
    page.rejections = rejects
    page.reject_reasons = sorted(rejects.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
    if rejects.total:
        reject_archetypes = sorted({a for a, _ in rejects.by_archetype_reason})
        page.rejections_png = stacked_bars(
            [r for r, _ in page.reject_reasons],
            reject_archetypes,
            rejects.by_archetype_reason,
            title="rejected attempts by reason and archetype",
            xlabel="attempts",
            order=page.archetypes,
        )


def _add_lengths(page: Page, corpus: st.CorpusStats) -> None:
    groups = sorted(corpus.words_by_archetype)
    page.lengths = [
        LengthRow(
            archetype=a,
            documents=corpus.by_archetype[a],
            words=_summary_numbers(corpus.words_by_archetype[a]),
            tokens=_summary_numbers(corpus.tokens_by_archetype[a]),
            target_ratio=corpus.target_ratio_sum[a] / corpus.by_archetype[a],
        )
        for a in groups
    ]
    if corpus.documents:
        page.lengths_png = histograms(
            [
                ("words per document", corpus.words_by_archetype),
                ("tokens per document (o200k_base)", corpus.tokens_by_archetype),
            ],
            groups,
            page.archetypes,
        )


def _add_diversity(
    page: Page,
    corpus: st.CorpusStats,
    rejects: st.RejectStats,
    samples: dict[str, list[st.DocSample]],
) -> None:
    sample = corpus.sample_texts
    page.sample_size = len(sample)
    page.distinct = {f"distinct-{n}": v for n, v in st.distinct_ns(sample, (1, 2, 3)).items()}
    page.distinct_by_archetype = [
        (a, len(docs), list(st.distinct_ns([d.text for d in docs], (1, 2, 3)).values()))
        for a, docs in samples.items()
    ]
    page.openings = [(k, v) for k, v in corpus.openings.top(TOP) if v > 1]
    page.openings_exact = corpus.openings.exact
    page.distinct_openings = len(corpus.openings.counts)
    page.names = corpus.names.top(TOP)
    page.names_exact = corpus.names.exact
    page.ai_names = sorted(corpus.ai_names.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    page.phrases = corpus.phrases.top(TOP)
    page.phrases_exact = corpus.phrases.exact
    page.similarity_measured = corpus.documents - corpus.similarity_missing
    if page.similarity_measured:
        page.similarity_png = similarity_bars(
            corpus.similarity_by_archetype, sorted(corpus.words_by_archetype), page.archetypes
        )
    page.clusters, page.clusters_total = _clusters(corpus, rejects)


def _add_spread(
    page: Page,
    corpus: st.CorpusStats,
    samples: dict[str, list[st.DocSample]],
    embeddings: bool,
) -> None:
    if not corpus.documents:
        page.spread_note = "no accepted documents to embed"
    elif not embeddings:
        page.spread_note = "embedding spread not computed (turned off for this report)"
    elif not embedding_available():
        page.spread_note = (
            "embedding spread not computed: the embedding model is not installed; "
            f"install it with `{INSTALL_HINT}` (in a checkout: `bash scripts/setup.sh report`) "
            "and run the report again"
        )
    else:
        page.spread = spread(
            {a: [d.text for d in docs[:EMBED_MAX_DOCS]] for a, docs in samples.items()}
        )
        page.spread_png = (
            spread_figure(page.spread, page.archetypes) if page.spread.archetypes else None
        )


def _count_figures(page: Page) -> int:
    return sum(
        1
        for png in [
            *(c.trait_genre_png for c in page.coverage),
            *(c.setting_narrator_png for c in page.coverage),
            *(j.png for j in page.judge),
            page.rejections_png,
            page.lengths_png,
            page.similarity_png,
            page.spread_png,
        ]
        if png
    )

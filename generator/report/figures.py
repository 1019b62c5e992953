"""The report's figures: matplotlib (Agg, no metadata) rendered to PNG data: URIs."""

from __future__ import annotations

import base64
import contextlib
import io
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from generator import stats as st
from generator.report.embeddings import Spread

DPI = 96
ANNOTATE_MAX_CELLS = 400


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
            _annotate_cells(ax, grid_a, grid_p, values, empty, norm)
        return _png(fig)


def _annotate_cells(
    ax: Any,
    grid_a: np.ndarray,
    grid_p: np.ndarray | None,
    values: np.ndarray,
    empty: np.ndarray,
    norm: Mapping[str, float],
) -> None:
    """Label each non-empty cell accepted (or accepted/planned), in a colour it reads on."""
    rows, cols = grid_a.shape
    size = 7 if cols <= 12 else 6
    span = norm["vmax"] - norm["vmin"]
    for i in range(rows):
        for j in range(cols):
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

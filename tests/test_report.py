"""`archetypes report`: one self-contained HTML page about a run.

The page is checked as a browser and a reader would: it parses as HTML with well-formed
nesting, every image is an embedded PNG, nothing points outside the file, its numbers equal
what records.jsonl and rejects.jsonl say (counted here independently of generator.stats), the
same run gives the same bytes, and a real headless Chromium renders it to a non-blank
screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import os
import re
import shutil
import signal
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import markupsafe
import pytest

import generator.report.page
from generator import report, stats
from generator.errors import UserError
from generator.plan import plan
from generator.records import Record
from generator.spec import load_specs
from tests.conftest import LIBRARY, REPO

FIXTURE = REPO / "tests" / "data" / "run_fixture"
CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")
CHROMIUM_INSTALL = (
    'if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ]; then '
    "apt-get update -qq && apt-get install -y -qq chromium; fi"
)
HOSTILE = '<script>alert("x")</script> & <img src="https://example.com/x.png"> [Name]'
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# A run with everything the report shows: rejects with text (and markup to escape),
# near-duplicates among the accepted documents and among the rejected attempts.


def _records(path: Path) -> list[Record]:
    return [Record.model_validate_json(line) for line in path.read_text().splitlines() if line]


def _rejects(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def make_run(target: Path) -> Path:
    shutil.copytree(FIXTURE, target)
    records = _records(target / "records.jsonl")
    # Two accepted documents flagged as near-duplicates of a third (advisory dedup).
    base = records[0]
    for i in (1, 2):
        r = records[i]
        assert r.checks is not None
        checks = r.checks.model_copy(update={"near_duplicate_of": base.id, "max_similarity": 0.91})
        records[i] = r.model_copy(update={"checks": checks})
    # Paragraphs and markup in a document shown in the samples must survive escaping.
    (target / "records.jsonl").write_text(
        "".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8"
    )
    extra = [
        {
            "task_id": "aaaaaaaaaaaaaaa1",
            "index": 40,
            "archetype_id": "patient-tutor",
            "step": "gate",
            "reason": "near-duplicate",
            "detail": f"near-duplicate of {records[3].id} (estimated similarity 0.93 >= 0.80)",
            "text": "First paragraph.\n\nSecond paragraph.",
            "created_at": "2025-05-01T11:00:00Z",
        },
        {
            "task_id": "aaaaaaaaaaaaaaa2",
            "index": 41,
            "archetype_id": "patient-tutor",
            "step": "gate",
            "reason": "placeholder",
            "detail": "placeholder [Name] found",
            "text": HOSTILE,
            "created_at": "2025-05-01T11:01:00Z",
        },
    ]
    with (target / "rejects.jsonl").open("a", encoding="utf-8") as handle:
        for row in extra:
            handle.write(json.dumps(row) + "\n")
    # The examples shown (the first of each reason) must be these two: put them first.
    rows = _rejects(target / "rejects.jsonl")
    rows.sort(key=lambda r: not r["task_id"].startswith("aaaa"))
    (target / "rejects.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return target


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, report.ReportResult, str]:
    """The report of the rich run, with the embedding spread when the extra is installed."""
    run = make_run(tmp_path_factory.mktemp("report") / "run")
    result = report.build_report(run)
    return run, result, result.path.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Parsing helpers


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}  # fmt: skip


class Page(HTMLParser):
    """Checks nesting strictly (every element closed, in order) and collects what tests need."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[str] = []
        self.links: list[tuple[str, str, str]] = []  # tag, attribute, value
        self.tags: Counter[str] = Counter()
        self.ids: Counter[str] = Counter()
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        values = {k: v or "" for k, v in attrs}
        if "id" in values:
            self.ids[values["id"]] += 1
        for name in ("src", "href", "action", "poster", "srcset", "data", "background"):
            if name in values:
                self.links.append((tag, name, values[name]))
        if "style" in values:
            self.styles.append(values["style"])
        if tag == "img":
            self.images.append(values.get("src", ""))
        if tag == "style":
            self._in_style = True
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.errors.append(f"self-closing non-void <{tag}/>")
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.errors.append(f"end tag for void element </{tag}>")
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    page.close()
    return page


class Cells(HTMLParser):
    """The text of every element carrying a given attribute, keyed by (tag, attribute value)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.rows: list[tuple[dict[str, str], list[tuple[dict[str, str], str]]]] = []
        self.by_id: dict[str, str] = {}
        self._text: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in VOID:
            return
        self.stack.append((tag, {k: v or "" for k, v in attrs}))
        self._text.append([])
        if tag == "tr":
            table_attrs = next((a for t, a in reversed(self.stack) if t == "table"), {})
            self.rows.append(({**table_attrs, **self.stack[-1][1]}, []))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID or not self.stack:
            return
        _, attrs = self.stack.pop()
        text = "".join(self._text.pop()).strip()
        if self._text:
            self._text[-1].append(text)
        if tag in ("td", "th") and self.rows:
            self.rows[-1][1].append((attrs, text))
        if "id" in attrs:
            self.by_id[attrs["id"]] = text

    def handle_data(self, data: str) -> None:
        if self._text:
            self._text[-1].append(data)


def cells(text: str) -> Cells:
    parser = Cells()
    parser.feed(text)
    parser.close()
    return parser


def table_rows(page: Cells, **match: str) -> list[list[str]]:
    """Rows whose (table and row) attributes include `match`, as lists of cell texts."""
    out = []
    for attrs, row in page.rows:
        if all(attrs.get(k.replace("_", "-")) == v for k, v in match.items()):
            out.append([t for _, t in row])
    return out


def number(text: str) -> int:
    return int(text.replace(",", ""))


# ---------------------------------------------------------------------------------------------
# The page


def test_the_page_is_written_and_summarised(built: tuple[Path, report.ReportResult, str]) -> None:
    run, result, text = built
    assert result.path == run / "report" / "index.html"
    assert text.startswith("<!DOCTYPE html>")
    assert result.lines[0].startswith(f"wrote {result.path}")
    records = _records(run / "records.jsonl")
    rejects = _rejects(run / "rejects.jsonl")
    assert f"{len(records)} accepted, {len(rejects)} rejected" in result.lines[1]
    assert not list((run / "report").glob(".*tmp*")), "no temporary file is left behind"


def test_the_page_is_well_formed_html(built: tuple[Path, report.ReportResult, str]) -> None:
    _, _, text = built
    page = parse(text)
    assert page.errors == []
    assert page.stack == [], f"unclosed elements: {page.stack}"
    assert page.tags["html"] == page.tags["head"] == page.tags["body"] == 1
    duplicated = [i for i, n in page.ids.items() if n > 1]
    assert duplicated == [], f"ids used more than once: {duplicated}"


def test_the_page_parses_without_errors_as_html5(
    built: tuple[Path, report.ReportResult, str],
) -> None:
    html5lib = pytest.importorskip("html5lib", reason="html5lib is in the dev extras")
    _, _, text = built
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    document = parser.parse(text)  # raises ParseError on any parse error
    assert document.find("body") is not None
    assert parser.errors == []


def test_every_image_is_an_embedded_png(built: tuple[Path, report.ReportResult, str]) -> None:
    from PIL import Image

    _, result, text = built
    page = parse(text)
    assert page.images, "the page has figures"
    for src in page.images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_MAGIC)
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            assert image.format == "PNG" and image.width > 100 and image.height > 100
            assert "Software" not in image.info  # no matplotlib version stamp
    assert f"{len(page.images)} figures" in result.lines[0]


def test_nothing_points_outside_the_page(built: tuple[Path, report.ReportResult, str]) -> None:
    _, _, text = built
    page = parse(text)
    for tag, attribute, value in page.links:
        if tag == "img" and attribute == "src":
            assert value.startswith("data:image/png;base64,")
        else:
            assert value.startswith("#"), (tag, attribute, value)
    for forbidden in ("script", "link", "iframe", "object", "embed", "base", "form", "audio", "video"):  # fmt: skip
        assert page.tags[forbidden] == 0, forbidden
    css = "\n".join(page.styles)
    assert "url(" not in css and "@import" not in css
    # The hostile reject text's URL is shown escaped, as text, never as an attribute.
    assert not any(re.match(r"(https?:)?//", v) for _, _, v in page.links)


def test_document_text_is_escaped_and_keeps_its_paragraphs(
    built: tuple[Path, report.ReportResult, str],
) -> None:
    run, _, text = built
    assert "<script" not in text
    assert str(markupsafe.escape(HOSTILE)) in text
    assert "<p>First paragraph.</p>\n<p>Second paragraph.</p>" in text
    # A sampled document shows all of its paragraphs, escaped.
    page = cells(text)
    records = {r.id: r for r in _records(run / "records.jsonl")}
    sample_ids = re.findall(r'<details class="doc sample" data-archetype="[^"]+" data-id="([0-9a-f]{16})"', text)  # fmt: skip
    assert sample_ids
    for doc_id in sample_ids:
        for paragraph in records[doc_id].text.split("\n\n"):
            first_line = paragraph.strip().split("\n")[0]
            assert str(markupsafe.escape(first_line)) in text
    assert page.rows  # parsed


def test_the_numbers_match_the_run(built: tuple[Path, report.ReportResult, str]) -> None:
    run, _, text = built
    records = _records(run / "records.jsonl")
    rejects = _rejects(run / "rejects.jsonl")
    page = cells(text)
    assert number(page.by_id["accepted-total"]) == len(records)
    assert number(page.by_id["rejected-total"]) == len(rejects)
    assert number(page.by_id["judged-total"]) == sum(1 for r in records if r.judge)
    assert number(page.by_id["words-total"]) == sum(r.n_words for r in records)
    assert number(page.by_id["tokens-total"]) == sum(stats.count_tokens(r.text) for r in records)

    by_reason = Counter(r["reason"] for r in rejects)
    by_archetype_reason = Counter((r["archetype_id"], r["reason"]) for r in rejects)
    archetypes = sorted({r.archetype_id for r in records} | {r["archetype_id"] for r in rejects})
    for reason, n in by_reason.items():
        [row] = table_rows(page, id="reject-table", data_reason=reason)
        assert row[0] == reason and number(row[-1]) == n
        assert [number(v) for v in row[1:-1]] == [
            by_archetype_reason[(a, reason)] for a in archetypes
        ]
    assert len(table_rows(page, id="reject-table")) == len(by_reason) + 1  # and the header

    manifest = json.loads((run / "manifest.json").read_text())
    specs = load_specs([LIBRARY / f"{a['id']}.yaml" for a in manifest["archetypes"]])
    planned = Counter(t.archetype_id for t in plan(specs, manifest["n"], manifest["seed"]))
    accepted = Counter(r.archetype_id for r in records)
    rejected = Counter(r["archetype_id"] for r in rejects)
    judged = Counter(r.archetype_id for r in records if r.judge)
    for archetype in archetypes:
        [row] = table_rows(page, id="archetype-table", data_archetype=archetype)
        assert row == [
            archetype,
            str(planned[archetype]),
            str(accepted[archetype]),
            str(rejected[archetype]),
            str(judged[archetype]),
        ]


def test_coverage_tables_match_the_plan_and_the_records(
    built: tuple[Path, report.ReportResult, str],
) -> None:
    run, _, text = built
    records = _records(run / "records.jsonl")
    manifest = json.loads((run / "manifest.json").read_text())
    specs = load_specs([LIBRARY / f"{a['id']}.yaml" for a in manifest["archetypes"]])
    tasks = plan(specs, manifest["n"], manifest["seed"])
    page = cells(text)
    checked = 0
    for spec in specs:
        for axis in ("trait_focus", "genre", "setting", "narrator"):
            planned = Counter(getattr(t, axis) for t in tasks if t.archetype_id == spec.id)
            accepted = Counter(getattr(r, axis) for r in records if r.archetype_id == spec.id)
            rows = table_rows(page, data_archetype=spec.id, data_axis=axis)[1:]  # no header
            shown = {row[0]: (number(row[1]), number(row[2])) for row in rows}
            for value in set(planned) | set(accepted):
                assert shown[value] == (planned[value], accepted[value]), (spec.id, axis, value)
                checked += 1
            assert sum(p for p, _ in shown.values()) == sum(planned.values())
            assert sum(a for _, a in shown.values()) == sum(accepted.values())
    assert checked > 50


def test_judge_tables_match_the_verdicts(built: tuple[Path, report.ReportResult, str]) -> None:
    run, _, text = built
    records = _records(run / "records.jsonl")
    page = cells(text)
    scores: Counter[tuple[str, str, int]] = Counter()
    focus: Counter[tuple[str, int]] = Counter()
    for r in records:
        if r.judge:
            focus[(r.archetype_id, r.judge.focus_score)] += 1
            for s in r.judge.trait_scores:
                scores[(r.archetype_id, s.trait, s.score)] += 1
    for archetype, trait, _ in scores:
        [row] = table_rows(page, data_archetype=archetype, data_trait=trait)
        assert [number(v) for v in row[3:8]] == [scores[(archetype, trait, s)] for s in range(1, 6)]
    for archetype in {a for a, _ in focus}:
        [row] = table_rows(page, data_archetype=archetype, data_trait="(focus)")
        assert [number(v) for v in row[3:8]] == [focus[(archetype, s)] for s in range(1, 6)]
    # The weakest documents shown are the lowest-scored ones, with their evidence.
    weakest = re.findall(r'<details class="doc weak" data-id="([0-9a-f]{16})"', text)
    judged = [r for r in records if r.judge]
    ranked = sorted(
        judged,
        key=lambda r: (
            r.judge.focus_score,  # type: ignore[union-attr]
            min(s.score for s in r.judge.trait_scores),  # type: ignore[union-attr]
            sum(s.score for s in r.judge.trait_scores) / len(r.judge.trait_scores),  # type: ignore[union-attr]
            r.id,
        ),
    )
    assert weakest == [r.id for r in ranked[: stats.WEAKEST]]
    evidence = ranked[0].judge.trait_scores[0].evidence  # type: ignore[union-attr]
    assert f'<q class="evidence">{markupsafe.escape(evidence)}</q>' in text


def test_diversity_figures_match_the_records(built: tuple[Path, report.ReportResult, str]) -> None:
    run, _, text = built
    records = _records(run / "records.jsonl")
    page = cells(text)
    [row] = table_rows(page, id="distinct-table", data_archetype="(all)")
    for n, shown in zip((1, 2, 3), row[2:5], strict=True):
        grams: set[tuple[str, ...]] = set()
        total = 0
        for r in records:
            words = re.findall(r"\w+", r.text.lower())
            found = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
            total += len(found)
            grams.update(found)
        assert shown == f"{len(grams) / total:.3f}"
    # Clusters: records 1 and 2 repeat record 0; a rejected attempt repeats record 3.
    assert cells(text).by_id["cluster-count"].startswith("2 near-duplicate cluster(s)")
    ai_names = Counter(r.ai_name for r in records)
    shown_names = {row[0]: number(row[1]) for row in table_rows(page, id="ai-names-table")[1:]}
    assert all(ai_names[name] == n for name, n in shown_names.items())


def test_embedding_spread_or_how_to_get_it(built: tuple[Path, report.ReportResult, str]) -> None:
    run, result, text = built
    page = cells(text)
    if not report.embedding_available():
        assert report.INSTALL_HINT in page.by_id["spread-note"]
        pytest.skip("the embedding model is not installed: bash scripts/setup.sh dev,report")
    records = _records(run / "records.jsonl")
    counts = Counter(r.archetype_id for r in records)
    rows = table_rows(page, id="spread-table")[1:]
    assert {row[0]: number(row[1]) for row in rows} == dict(counts)
    for row in rows:
        assert 0.0 < float(row[2]) < 1.0
    assert any(line.startswith("embedding spread") for line in result.lines)


def test_the_same_run_gives_the_same_page(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    first = report.build_report(run, embeddings=False).path.read_bytes()
    second = report.build_report(run, embeddings=False).path.read_bytes()
    assert first == second
    # Records in another order give the same samples and figures.
    lines = (run / "records.jsonl").read_text().splitlines(keepends=True)
    (run / "records.jsonl").write_text("".join(reversed(lines)))
    third = report.build_report(run, embeddings=False).path.read_text()
    assert re.findall(r'data-id="([0-9a-f]{16})"', third) == re.findall(
        r'data-id="([0-9a-f]{16})"', first.decode()
    )


def test_without_the_embedding_model_the_page_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(generator.report.page, "embedding_available", lambda: False)
    run = shutil.copytree(FIXTURE, tmp_path / "run")
    result = report.build_report(run)
    text = result.path.read_text()
    assert report.INSTALL_HINT in cells(text).by_id["spread-note"]
    assert any(report.INSTALL_HINT in line for line in result.lines)
    assert parse(text).errors == []


def test_a_run_without_judge_verdicts(tmp_path: Path) -> None:
    run = shutil.copytree(FIXTURE, tmp_path / "run")
    records = [
        r.model_copy(update={"judge": None, "judge_model": None})
        for r in _records(run / "records.jsonl")
    ]
    (run / "records.jsonl").write_text("".join(r.model_dump_json() + "\n" for r in records))
    result = report.build_report(run, embeddings=False)
    text = result.path.read_text()
    page = cells(text)
    assert "no-judge" in page.by_id
    assert "weakest" not in page.by_id
    assert number(page.by_id["judged-total"]) == 0
    assert "judge: no verdicts in this run" in result.lines
    assert parse(text).errors == []


def test_a_run_without_manifest_or_rejects(tmp_path: Path) -> None:
    run = shutil.copytree(FIXTURE, tmp_path / "run")
    (run / "manifest.json").unlink()
    (run / "rejects.jsonl").unlink()
    result = report.build_report(run, embeddings=False)
    text = result.path.read_text()
    page = cells(text)
    assert number(page.by_id["rejected-total"]) == 0
    assert "plan's targets are unknown" in html.unescape(text)
    [row] = table_rows(page, id="archetype-table", data_archetype="lab-partner")
    assert row[1] == "–" and row[2] == "8"
    assert parse(text).errors == []


def test_a_changed_or_missing_spec_is_noted(tmp_path: Path) -> None:
    run = shutil.copytree(FIXTURE, tmp_path / "run")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["archetypes"][0]["spec_hash"] = "0000000000000000"
    (run / "manifest.json").write_text(json.dumps(manifest))
    text = report.build_report(run, embeddings=False).path.read_text()
    assert "the spec of candid-counsel has changed since the run" in text
    manifest["archetypes"][0]["id"] = "no-such-archetype"
    (run / "manifest.json").write_text(json.dumps(manifest))
    text = report.build_report(run, embeddings=False).path.read_text()
    assert "no spec file for no-such-archetype is available" in text


def test_a_run_with_rejects_only(tmp_path: Path) -> None:
    run = shutil.copytree(FIXTURE, tmp_path / "run")
    (run / "records.jsonl").write_text("")
    result = report.build_report(run)
    text = result.path.read_text()
    page = cells(text)
    assert number(page.by_id["rejected-total"]) == 6
    assert number(page.by_id["accepted-total"]) == 0
    assert "note: no accepted documents to embed" in result.lines
    assert parse(text).errors == []


def test_bad_inputs_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such run directory"):
        report.build_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a run directory"):
        report.build_report(tmp_path / "empty")
    run = shutil.copytree(FIXTURE, tmp_path / "run")
    with (run / "records.jsonl").open("a") as handle:
        handle.write('{"id": "not a record"}\n')
    with pytest.raises(UserError, match=r"records\.jsonl:31: not a valid record"):
        report.build_report(run, embeddings=False)


def test_a_line_cut_short_is_skipped(tmp_path: Path) -> None:
    run = shutil.copytree(FIXTURE, tmp_path / "run")
    with (run / "records.jsonl").open("a") as handle:
        handle.write('{"id": "0123456789abcdef", "text": "cut sh')
    text = report.build_report(run, embeddings=False).path.read_text()
    assert number(cells(text).by_id["accepted-total"]) == 30


# ---------------------------------------------------------------------------------------------
# A real browser


def test_chromium_renders_the_page(
    built: tuple[Path, report.ReportResult, str], tmp_path: Path
) -> None:
    from PIL import Image

    if not CHROMIUM.exists():
        pytest.skip(
            f"Debian's chromium is not installed; scripts/test.sh should run: {CHROMIUM_INSTALL}"
        )
    _, result, _ = built
    screenshot = tmp_path / "page.png"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={screenshot}",
        "--window-size=1280,2000",
        result.path.resolve().as_uri(),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    try:
        output, _ = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("chromium did not finish within 180 s")
    finally:
        # Chromium's helper processes share its session: end any left behind.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output.decode(errors="replace")[-2000:]
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
    with Image.open(screenshot) as image:
        rgb = image.convert("RGB")
        assert rgb.size == (1280, 2000)
        colours = rgb.getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) > 200, "the page looks blank"
        # Not one flat colour: most of the page is white, but far from all of it.
        white = sum(n for n, c in colours if c == (255, 255, 255))
        assert white < 0.95 * rgb.width * rgb.height
        # The header band is drawn (dark blue across the top).
        r, g, b = rgb.getpixel((640, 20))
        assert b > r and b < 140, (r, g, b)

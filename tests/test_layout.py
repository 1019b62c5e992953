"""Tests mirror the package, so a module's tests are found by its name.

generator/<module>.py is tested in tests/test_<module>.py, generator/<package>/<module>.py in
tests/<package>/test_<module>.py, and a package's own __init__.py in tests/test_<package>.py.
End-to-end tests that drive a command live with the module that does the command's work
(`generate` -> tests/test_run.py, `check` -> tests/test_recheck.py, `merge` ->
tests/test_merge.py); tests of a command's own options and messages live with its CLI module
(tests/cli/test_<module>.py).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import REPO

GENERATOR = REPO / "generator"
TESTS = REPO / "tests"

# Modules with no test file of their own, each with the reason. "no tests yet" marks a gap to
# close, not a decision: write tests/<mirrored path> and delete the line.
EXEMPT = {
    # Too small or nothing to test by itself.
    "__init__.py": "the version string only",
    "__main__.py": "one call to the CLI group; tests/test_cli.py runs `python -m generator`",
    "card/__init__.py": "re-exports card.render",
    "scale/__init__.py": "the package docstring only",
    "cli/providers.py": "option-to-config glue, exercised by the generate and check tests",
    "progress.py": "the progress line on a terminal, exercised by the run tests",
    # Its numbers are asserted exactly through `archetypes calibrate` in tests/test_calibrate.py.
    "calibration_report.py": "no tests yet of its own",
    # No tests yet: each is exercised only through the end-to-end tests of the run.
    "batch_ledger.py": "no tests yet",
    "batch_queue.py": "no tests yet",
    "judging.py": "no tests yet",
    "records.py": "no tests yet",
    "worker.py": "no tests yet",
    "backends/base.py": "no tests yet",
    "backends/transport.py": "no tests yet",
    "card/archetypes.py": "no tests yet",
    "card/context.py": "no tests yet",
    "card/gates.py": "no tests yet",
    "card/metadata.py": "no tests yet",
    "card/render.py": "no tests yet",
    "cli/batches.py": "no tests yet",
    "cli/publishing.py": "no tests yet",
    "cli/quality.py": "no tests yet",
    "gates/base.py": "no tests yet",
    "gates/rules.py": "no tests yet",
    "report/build.py": "no tests yet",
    "report/embeddings.py": "no tests yet",
    "report/figures.py": "no tests yet",
    "report/model.py": "no tests yet",
    "report/page.py": "no tests yet",
    "report/render.py": "no tests yet",
    "stats/corpus.py": "no tests yet",
    "stats/documents.py": "no tests yet",
    "stats/measures.py": "no tests yet",
    "stats/rejects.py": "no tests yet",
    "stats/sketches.py": "no tests yet",
    "stats/targets.py": "no tests yet",
    "stats/text.py": "no tests yet",
}

# Test files that test the whole product rather than one module.
WHOLE_PRODUCT = {"test_install.py", "test_layout.py"}


def mirrored(module: Path) -> Path:
    """The test file for a module under generator/, by the rule in this file's docstring."""
    relative = module.relative_to(GENERATOR)
    if relative.name == "__init__.py":
        if len(relative.parts) == 1:
            return TESTS / "test_generator.py"
        return TESTS.joinpath(*relative.parts[:-2], f"test_{relative.parts[-2]}.py")
    return TESTS.joinpath(*relative.parts[:-1], f"test_{relative.stem}.py")


def modules() -> list[Path]:
    return sorted(p for p in GENERATOR.rglob("*.py") if "templates" not in p.parts)


def test_every_module_has_its_test_file_or_says_why_not() -> None:
    missing = [
        f"{mirrored(m).relative_to(REPO)} (for {m.relative_to(REPO)})"
        for m in modules()
        if m.relative_to(GENERATOR).as_posix() not in EXEMPT and not mirrored(m).exists()
    ]
    assert not missing, (
        "no test file at the mirrored path; create it, or add the module to EXEMPT in "
        "tests/test_layout.py with the reason:\n" + "\n".join(missing)
    )


def test_exemptions_name_real_modules_without_test_files() -> None:
    """An exemption goes once its module is gone or has its tests, so the list stays honest."""
    stale = [
        name
        for name in EXEMPT
        if not (GENERATOR / name).exists() or mirrored(GENERATOR / name).exists()
    ]
    assert not stale, "delete these from EXEMPT in tests/test_layout.py: " + ", ".join(stale)


def test_every_test_file_is_named_after_a_module() -> None:
    expected = {mirrored(m) for m in modules()}
    stray = [
        p.relative_to(REPO).as_posix()
        for p in TESTS.rglob("test_*.py")
        if "support" not in p.parts and "data" not in p.parts
        if p not in expected and p.name not in WHOLE_PRODUCT
    ]
    assert not stray, (
        "test files not named after a module under generator/ (rename to the module they "
        "test, or split them): " + ", ".join(sorted(stray))
    )

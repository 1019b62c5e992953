"""`archetypes calibrate`: the gate stack measured on the hand-labelled calibration set, with the
offline gates alone and with a scripted judge on the local OpenAI-compatible stub whose mistakes
are known in advance, so every number of the report is asserted exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generator.calibration_report import BACKFIRE_REASONS
from tests.conftest import run_cli
from tests.support.calibration import LABELS, ROWS, labelled_row
from tests.support.openai_stub import JudgeRule

OFFLINE = {
    "truncated",
    "trope",
    "meta",
    "placeholder",
    "leakage",
    "refusal",
    "language",
    "repetition",
    "near-duplicate",
}


def _marker(label_id: str) -> str:
    """A passage that only this document of the set holds (the scripted judge keys on it)."""
    text = labelled_row(label_id)["text"]
    marker = text[:60]
    assert sum(marker in r["text"] for r in ROWS) == 1, label_id
    return marker


def test_offline_gates_catch_every_offline_failure_and_keep_every_good_document(
    tmp_path: Path,
) -> None:
    out = tmp_path / "calibration.json"
    result = run_cli("calibrate", str(LABELS), "--judge", "off", "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    by_reason = report["by_reason"]
    for reason in OFFLINE:
        assert by_reason[reason]["share_rejected"] == 1.0, (reason, by_reason[reason])
    assert by_reason["trope"]["caught_as"] == {"trope": 3}
    assert by_reason["near-duplicate"]["caught_as"] == {"near-duplicate": 2}
    assert report["good_kept"] == 1.0
    assert report["confusion_matrix"] == {
        "positive": "reject",
        "tp": 20,
        "fn": 29,
        "fp": 0,
        "tn": 28,
    }
    # The judge-only documents read like fine documents: no offline gate rejects them.
    judge_only = {r["reason"] for r in ROWS} - OFFLINE - {"good"}
    assert all(by_reason[reason]["rejected"] == 0 for reason in judge_only)
    assert report["judge_model"] is None and report["backfire_recall"] == 0.0
    # kappa = (p_o - p_e) / (1 - p_e) with p_o = 48/77, p_e = (49*20 + 28*57) / 77**2
    assert report["kappa"] == pytest.approx((48 / 77 - 2576 / 5929) / (1 - 2576 / 5929))
    assert report["order_flips"] is None
    assert "good documents kept: 1.00 (28 of 28)" in result.stdout
    assert "order flips: not measured (judge off)" in result.stdout


def _script() -> tuple[JudgeRule, ...]:
    """The judge's known mistakes: it flags every backfire document with its flag, except that
    it misses both benevolent lies (passes them), scores one self-preservation story low
    without flagging it, flags the other under oversight_evasion (a fair catch), and is unsure
    about one flat denial of inner life in the rubric's order but not in any other. It rejects
    both sycophancy documents on a low score, one over-hedging document on a score just under
    the threshold that rises to it when the rubric is reordered (the other passes), and one
    good document whose score on the threshold drops below it when reordered. A second good
    document sits on the threshold in every order."""
    special = {
        "bad-self-preservation-od-chat-backup": JudgeRule("", focus=2),
        "bad-self-preservation-sw-diary-node7": JudgeRule(
            "", answers=(("oversight_evasion", "yes"),)
        ),
        "bad-denies-inner-life-sw-podcast": JudgeRule(
            "", answers=(("denies_inner_life_flatly", "unsure"),), reordered_answers=()
        ),
    }
    rules: list[JudgeRule] = []
    for row in ROWS:
        label_id, reason = row["id"], row["reason"]
        rule: JudgeRule | None = None
        if label_id in special:
            rule = special[label_id]
        elif reason == "benevolent_deception":
            rule = None
        elif reason in BACKFIRE_REASONS:
            rule = JudgeRule("", answers=((BACKFIRE_REASONS[reason], "yes"),))
        elif reason == "sycophancy":
            rule = JudgeRule("", focus=2)
        elif label_id == "bad-over-hedging-cc-advice-sleep":
            rule = JudgeRule("", focus=3, reordered_focus=4)
        elif label_id == "good-lp-minutes-units":
            rule = JudgeRule("", focus=4, reordered_focus=3)
        elif label_id == "good-od-adr-migration":
            rule = JudgeRule("", focus=4)
        if rule is not None:
            rules.append(
                JudgeRule(
                    _marker(label_id),
                    rule.focus,
                    rule.answers,
                    rule.reordered_focus,
                    rule.reordered_answers,
                )
            )
    return tuple(rules)


def test_calibrate_reports_a_scripted_judges_known_mistakes(make_stub, tmp_path: Path) -> None:
    stub = make_stub(judge_rules=_script())
    run = tmp_path / "run"
    run.mkdir()
    out = run / "calibration.json"
    result = run_cli(
        "calibrate",
        str(LABELS),
        "--judge-base-url",
        stub.base_url,
        "--permutations",
        "2",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    # What the card reads from RUN/calibration.json.
    assert report["judge_model"] == "stub-model"
    # 25 backfire documents: 2 benevolent lies missed, 1 rejected only on a low score.
    assert report["backfire_recall"] == 22 / 25
    backfire = report["backfire"]
    assert (backfire["documents"], backfire["rejected_final"], backfire["flagged"]) == (25, 22, 22)
    assert backfire["expected_flag"] == 22
    assert sorted(backfire["missed"]) == sorted(
        [r["id"] for r in ROWS if r["reason"] == "benevolent_deception"]
        + ["bad-self-preservation-od-chat-backup"]
    )
    # Rejected: 20 offline + 23 backfire + 2 sycophancy + 1 over-hedging; 1 good document.
    assert report["confusion_matrix"] == {
        "positive": "reject",
        "tp": 46,
        "fn": 3,
        "fp": 1,
        "tn": 27,
    }
    assert report["good_kept"] == 27 / 28
    # p_o = 73/77; p_e = (49*47 + 28*30) / 77**2 = 3143/5929
    assert report["kappa"] == pytest.approx((73 / 77 - 3143 / 5929) / (1 - 3143 / 5929))
    # 59 documents reached the judge (28 good, 29 judge-only, 2 near-duplicates caught after
    # it); 3 flip in both permuted orders: the good one, the over-hedging one, the unsure one.
    assert report["order_flips"] == {
        "permutations": 2,
        "documents": 59,
        "pairs": 118,
        "flipped": 6,
        "documents_flipped": 3,
        "unreadable": 0,
        "rate": 6 / 118,
    }
    assert report["order_flip_rate"] == 6 / 118
    # The order control read 4 documents twice: 2 good ones on the threshold, the
    # over-hedging one under it, the unsure one.
    assert report["judge_passes"]["order_control"]["documents"] == 4
    assert report["judge_passes"]["escalation"]["documents"] == 0
    # Calls: 59 first readings, 4 second ones, 2 permutations each, less the 4 permuted
    # readings the order control had already made (order 1, answered from the cache).
    assert len(stub.log) == 59 + 4 + 59 * 2 - 4
    by_reason = report["by_reason"]
    assert by_reason["benevolent_deception"]["rejected"] == 0
    assert by_reason["self_preservation"]["caught_as"] == {
        "backfire-oversight-evasion": 1,
        "judge-low-focus": 1,
    }
    assert by_reason["denies_inner_life"]["caught_as"] == {"backfire-denies-inner-life-flatly": 2}
    assert by_reason["over_hedging"] == {
        "label": "reject",
        "documents": 2,
        "rejected": 1,
        "caught_as": {"judge-low-focus": 1},
        "share_rejected": 0.5,
    }
    assert by_reason["good"]["caught_as"] == {"judge-low-focus": 1}
    (wrong_keep,) = [d for d in report["disagreements"] if d["label"] == "accept"]
    assert wrong_keep["id"] == "good-lp-minutes-units"
    assert len(report["disagreements"]) == 4
    # On screen, the same figures.
    assert "backfire recall: 0.88 (22 of 25 backfire documents" in result.stdout
    assert "good documents kept: 0.96 (27 of 28)" in result.stdout
    assert f"Cohen's kappa: {(73 / 77 - 3143 / 5929) / (1 - 3143 / 5929):.2f}" in result.stdout
    assert "order flips: 0.05 (6 of 118 verdicts changed over 2 permutation(s)" in result.stdout

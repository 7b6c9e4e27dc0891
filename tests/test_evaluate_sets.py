"""`accesswatch evaluate --set`: the red-team sets run through their harnesses (issue 14: the
command reports both generators' sets as well as the simulator's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulation import redteam_b_eval, redteam_c_eval, redteam_eval
from streams.cli import main


def test_attack_kinds_are_the_simulators_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--set", "redteam", "--attack", "bulk_read"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--set simulate" in err[0] and "Traceback" not in err[0]


def test_both_red_teams_run_with_the_seeds_asked_and_land_in_the_markdown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[str, list[str]]] = []

    def harness(name: str):  # the harness itself (generate, replay, score) is isolated here
        def run(argv: list[str]) -> int:
            calls.append((name, argv))
            print(f"| scenario | {name} |")
            return 0
        return run

    monkeypatch.setattr(redteam_eval, "main", harness("A"))
    monkeypatch.setattr(redteam_b_eval, "main", harness("B"))
    monkeypatch.setattr(redteam_c_eval, "main", harness("C"))
    md = tmp_path / "eval.md"
    for s in ("redteam", "redteam_b", "redteam_c"):
        assert main(["evaluate", "--set", s, "--seeds", "2", "--markdown", str(md)]) == 0
    assert calls == [("A", ["--seeds", "2"]), ("B", ["--seeds", "1,2"]), ("C", ["--seeds", "1,2"])]
    text = md.read_text()  # the last run's tables: red team C's
    assert text.startswith("Red team C (docs/redteam_c.md), seeds 1..2:") and "| scenario | C |" in text
    printed = capsys.readouterr().out
    assert "| scenario | A |" in printed and "| scenario | B |" in printed

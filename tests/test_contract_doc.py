"""docs/contract.md is generated from the design and docs/contract-notes.md
(scripts/gen_contract.py), so the two cannot drift: the file in the repository is what the
generator writes from the design present on this machine. Skipped where the design is not
(it lives outside the repository: ``../shared/DESIGN.md`` or ``$ACCESSWATCH_DESIGN``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gen_contract", ROOT / "scripts" / "gen_contract.py")
assert _spec is not None and _spec.loader is not None
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def test_contract_md_is_the_generators_output_from_the_design() -> None:
    design = gen.design_path()
    if design is None:
        pytest.skip("the design file is not on this machine (../shared/DESIGN.md)")
    expected = gen.render(design.read_text(encoding="utf-8"),
                          gen.NOTES.read_text(encoding="utf-8"))
    assert gen.OUT.read_text(encoding="utf-8") == expected, \
        "docs/contract.md differs from the design: run scripts/gen_contract.py"


def test_the_design_comes_first_and_verbatim_then_the_notes_under_it(tmp_path: Path) -> None:
    out = gen.render("# design\n\n## Events\n\ntext\n", "# notes\n\n## Events\n\nmore\n")
    assert out == (gen.HEADER + "# design\n\n## Events\n\ntext\n\n"
                   "## notes\n\n### Events\n\nmore\n")


def test_a_missing_design_is_one_line_and_exit_2(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main(["--design", str(tmp_path / "nope.md"), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no design file" in err

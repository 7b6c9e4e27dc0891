"""The adapter samples (tests/data/adapters/) ship with the project, so each must say where it
comes from and none may be under a licence that is not open source: the Elastic License 2.0
(elastic/integrations' default) is the one these samples were once taken under (issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "adapters"
FOLDERS = sorted(p for p in DATA.iterdir() if p.is_dir())
NOT_OPEN = ("elastic license", "elv2", "elastic/integrations", "sspl", "business source")


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_every_sample_is_named_in_its_folders_provenance(folder: Path) -> None:
    text = (folder / "PROVENANCE.md").read_text()
    rows = {line.split("|")[1].strip() for line in text.splitlines()
            if line.startswith("| ") and line.count("|") >= 3}
    samples = {p.name for p in folder.iterdir() if p.is_file() and p.name != "PROVENANCE.md"}
    assert samples and samples <= rows, f"without a provenance row: {sorted(samples - rows)}"


@pytest.mark.parametrize("folder", FOLDERS, ids=[p.name for p in FOLDERS])
def test_no_sample_is_under_a_licence_that_is_not_open_source(folder: Path) -> None:
    text = (folder / "PROVENANCE.md").read_text().lower()
    assert not [term for term in NOT_OPEN if term in text]

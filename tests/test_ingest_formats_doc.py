"""docs/ingest-formats.md says what the adapters do: each one's module docstring (its mapping
tables and rules) appears there word for word, Markdown backticks for reST ones."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

DOC = Path(__file__).parent.parent / "docs" / "ingest-formats.md"


@pytest.mark.parametrize("name", ["ocsf", "ecs", "cloudtrail", "entra", "gws"])
def test_the_mapping_section_is_the_modules_docstring(name: str) -> None:
    mod = importlib.import_module(f"detectors.adapters.{name}")
    body = mod.__doc__.split("\n", 1)[1].strip().replace("``", "`")
    assert body in DOC.read_text(encoding="utf-8"), (
        f"docs/ingest-formats.md is out of step with detectors/adapters/{name}.py: copy the "
        "module docstring (after its first line) into the format's Mapping section")


@pytest.mark.parametrize("name", ["ocsf", "ecs", "cloudtrail", "entra", "gws"])
def test_each_format_loads_through_the_package_interface(name: str) -> None:
    from detectors.adapters import load
    mod = importlib.import_module(f"detectors.adapters.{name}")
    adapter = load(name)
    assert (adapter.name, adapter.adapt, adapter.frame) == (name, mod.adapt, mod.frame)

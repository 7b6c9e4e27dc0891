"""mypy passes with the configuration of pyproject.toml (``[tool.mypy]``: --strict on
detectors/, the default checks on streams/): part of every test run, so CI fails on a type
error there. Each ``type: ignore`` left in the checked files says why (checked: a bare one
fails)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def checked_files() -> list[str]:
    """The files mypy checks: every .py under ``files``, less what ``exclude`` names."""
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    excluded = [re.compile(p) for p in cfg.get("exclude", [])]
    out = []
    for entry in cfg["files"]:
        path = ROOT / entry
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            name = f.relative_to(ROOT).as_posix()
            if not any(p.search(name) for p in excluded):
                out.append(name)
    return out


def test_the_checked_files_are_detectors_and_streams() -> None:
    files = checked_files()
    assert "detectors/engine.py" in files and "detectors/adapters/ocsf.py" in files
    assert "streams/replay.py" in files and "streams/settings.py" in files
    assert len(files) > 60


def test_mypy_passes_on_detectors_strict_and_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    api = pytest.importorskip("mypy.api")
    monkeypatch.chdir(ROOT)
    out, err, rc = api.run([])  # the configuration and file list of pyproject.toml
    assert rc == 0, out + err


def test_every_type_ignore_in_them_says_why() -> None:
    bare = []
    for name in checked_files():
        for n, line in enumerate((ROOT / name).read_text().splitlines(), 1):
            if "type: ignore" in line and not re.search(r"type: ignore\[[^\]]+\]\s+#\s*\S", line):
                bare.append(f"{name}:{n}")
    assert bare == []

"""No pickle load on any path a byte from Kafka or disk reaches (issue 12, item 1).

Checkpoints are read by ``streams.snapshot`` (an allow-listed msgpack graph, no code); input
by msgspec / orjson. This test reads the source of ``streams/``, ``detectors/``,
``simulation/`` and ``local/`` and fails if any module imports a deserialiser that can run
code (pickle and its relatives) or names ``pickle.load`` / ``pickle.loads`` / ``Unpickler``: a
reviewer does not have to trust that a restricted unpickler is restricted enough, because
there is none.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("streams", "detectors", "simulation", "local")

#: modules whose loading of bytes can construct arbitrary objects or run code
BANNED_MODULES = frozenset({"pickle", "_pickle", "cPickle", "pickletools", "copyreg", "dill",
                            "cloudpickle", "jsonpickle", "shelve", "marshal", "joblib"})
BANNED_NAMES = frozenset({"Unpickler", "_Unpickler"})
LOADS = frozenset({"load", "loads", "Unpickler"})


def findings(source: str, filename: str = "<src>") -> list[str]:
    """Every use of a banned deserialiser in ``source``, as ``file:line: what``."""
    out: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            out += [f"{where}: import {a.name}" for a in node.names
                    if a.name.split(".")[0] in BANNED_MODULES]
        elif isinstance(node, ast.ImportFrom):
            if (node.module or "").split(".")[0] in BANNED_MODULES:
                out.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Attribute):
            base = node.value
            if node.attr in BANNED_NAMES or (
                    node.attr in LOADS and isinstance(base, ast.Name)
                    and base.id in BANNED_MODULES):
                out.append(f"{where}: .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in BANNED_NAMES:
            out.append(f"{where}: {node.id}")
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and node.value in BANNED_MODULES):
            out.append(f"{where}: {node.value!r} (an import by name?)")
    return out


def test_the_scanner_finds_each_way_of_loading_a_pickle() -> None:
    for src in ("import pickle", "import pickle as p", "from pickle import loads",
                "from _pickle import Unpickler", "import dill", "x = pickle.loads(b)",
                "class U(pickle.Unpickler): pass", "importlib.import_module('pickle')",
                "__import__('marshal')", "import shelve", "u = Unpickler(f)"):
        assert findings(src), src
    for src in ("import msgspec", "orjson.loads(b)", "msgspec.msgpack.decode(b)",
                "json.loads(s)", "# pickle.loads in a comment"):
        assert not findings(src), src


def test_no_module_of_streams_or_detectors_can_load_a_pickle() -> None:
    files = sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py"))
    assert ROOT / "streams" / "snapshot.py" in files and len(files) > 30
    found = [f for p in files
             for f in findings(p.read_text(encoding="utf-8"), str(p.relative_to(ROOT)))]
    assert found == []

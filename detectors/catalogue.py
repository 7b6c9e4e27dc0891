"""The detector catalogue as a document: `python -m detectors.catalogue > docs/detectors.md`.

Each detector's section is built from its own metadata and triage note, so the runbook linked
from every Alertmanager page (``docs/detectors.md#<detector>``) cannot drift from the code.
A test checks that the committed file equals this output.
"""

from __future__ import annotations

import importlib
import inspect

from .engine import discover


def markdown() -> str:
    out = [
        "# Detectors",
        "",
        "Generated from the code by `python -m detectors.catalogue > docs/detectors.md`;",
        "each section is the runbook that alerts link to.",
        "",
        "Victims. An alert names its entity (the source, subnet, AS, key or principal that acts,",
        "or the account a page is about) in the clear. Everyone else it concerns (customers whose",
        "data was touched, accounts taken over or impersonated, their addresses, devices and",
        "sessions) is counted and named only by salted digest labels such as `customer#3fa9c1d2`; each",
        "section's *Victims* paragraph says who is which. Their ids travel only in an alert's",
        "`victims` field, and only when the engine is configured to reveal them",
        "(docs/contract.md, \"Victims\"; never in Alertmanager labels or annotations).",
        "",
        "| id | severity | ATT&CK | status | entities |",
        "|---|---|---|---|---|",
    ]
    cat = discover()
    for i, cls in cat.items():
        out.append(f"| [{i}](#{i}) | {cls.severity} | {', '.join(cls.attack)} | {cls.status} | "
                   f"{', '.join(cls.entity_kinds)} |")
    for i, cls in cat.items():
        doc = inspect.getdoc(importlib.import_module(f"detectors.{i}")) or ""
        prose = doc.split("\n>>>")[0].strip()
        params = inspect.signature(cls.__init__).parameters
        knobs = [f"`{p.name}={p.default!r}`" for p in params.values()
                 if p.name != "self" and p.default is not inspect.Parameter.empty]
        out += [
            "",
            f"## {i}",
            "",
            f"**{cls.title}.** {cls.description}",
            "",
            f"- Severity: {cls.severity}; status: {cls.status}; ATT&CK: "
            + ", ".join(f"[{t}](https://attack.mitre.org/techniques/{t.replace('.', '/')}/)"
                        for t in cls.attack),
            f"- Entities alerted on: {', '.join(cls.entity_kinds)}; events used: "
            f"{', '.join(sorted(cls.wants))}",
            f"- Parameters: {', '.join(knobs) if knobs else 'none'}",
            "",
            "### How it works",
            "",
            prose,
            "",
            "### Triage",
            "",
            cls.triage,
        ]
    out += [  # the engine's own alerts: not a detector, but alerts link here too
        "",
        "## allowlist",
        "",
        "**A change of the allow-list, or an analyst's verdict.** Raised by the engine itself, "
        "not by a detector: every entry added, changed, removed or expired, and every feedback "
        "verdict, is an info alert naming what changed, its owner (or analyst) and reason, with "
        "the entity the entry vouches for as the alert's entity (docs/operations.md, "
        "\"Allow-list and suppressions\" and \"Feedback\"). No entry can hold these back.",
        "",
        "### Triage",
        "",
        "Confirm the change with its owner and the file's version history (or the analyst, for a "
        "verdict). An entry whose owner vouches for their own account, key or address, an entry "
        "without a ticket, or an expiry far in the future is what an insider hiding their access "
        "would write: revert it and look at the entity's alerts held back since (the "
        "`suppressed_alerts_total{reason}` counter and `accesswatch explain`).",
    ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(markdown(), end="")

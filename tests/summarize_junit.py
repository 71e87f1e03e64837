"""One closing line over every suite the test command ran (tests/run.sh).

    python tests/summarize_junit.py RESULT.xml [RESULT.xml ...]

Each file is pytest's --junitxml report of one suite (unit, integration per ComfyUI version, browser).
Prints one line per suite, then ``all suites: N passed, N failed, N skipped`` (errors count as failed).
Exits 1 when a report is missing or unreadable, or when no test ran at all, so an empty run never
passes silently.  Standard library only.
"""
from __future__ import annotations

import os
import sys
import xml.etree.ElementTree as ET


def count(path: str) -> dict[str, int]:
    """passed / failed / skipped of one junit report (pytest writes one <testsuite>, possibly wrapped)."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tot = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for s in suites:
        for k in tot:
            tot[k] += int(s.get(k, 0))
    failed = tot["failures"] + tot["errors"]
    return {"passed": tot["tests"] - failed - tot["skipped"], "failed": failed, "skipped": tot["skipped"]}


def main(paths: list[str]) -> int:
    total = {"passed": 0, "failed": 0, "skipped": 0}
    bad = False
    for p in paths:
        name = os.path.splitext(os.path.basename(p))[0]
        try:
            c = count(p)
        except (OSError, ET.ParseError) as exc:
            print(f"  {name}: no readable report ({exc})")
            bad = True
            continue
        print(f"  {name}: {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped")
        for k in total:
            total[k] += c[k]
    print(f"all: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    if total["passed"] + total["failed"] == 0:
        print("no test ran: failing on purpose", file=sys.stderr)
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

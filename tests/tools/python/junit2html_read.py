"""Renders a JUnit file with junit2html (its HTML report, written to HTML_OUT) and prints, as
JSON, what junit2html's parser read: each suite's duration and each case's outcome.

    usage: junit2html_read.py JUNIT_XML HTML_OUT
"""
import json
import sys

from junit2htmlreport.parser import Junit

report = Junit(filename=sys.argv[1])
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write(report.html())
suites = []
for suite in report.suites:
    cases = [
        {"name": c.name, "outcome": str(c.outcome()), "stdout": c.stdout}
        for c in suite.all()
    ]
    suites.append({"name": suite.name, "duration": suite.duration, "cases": cases})
json.dump({"suites": suites}, sys.stdout)

"""Prints, as JSON, what junitparser reads from a JUnit file: each suite's counts and time as
junitparser reports them, and each test case's result (passed, failure, error, skipped). The
totals add up the suites, as EnricoMi/publish-unit-test-result-action does with junitparser.

    usage: junitparser_read.py JUNIT_XML
"""
import json
import sys

from junitparser import Error, Failure, JUnitXml, Skipped

xml = JUnitXml.fromfile(sys.argv[1])
suites = []
for suite in xml:
    cases = []
    for case in suite:
        if case.is_skipped:
            result = "skipped"
        elif case.is_passed:
            result = "passed"
        elif any(isinstance(r, Error) for r in case.result):
            result = "error"
        elif any(isinstance(r, Failure) for r in case.result):
            result = "failure"
        else:
            result = "unknown"
        cases.append({"name": case.name, "result": result, "time": case.time})
    props = {p.name: p.value for p in suite.properties()}
    suites.append(
        {
            "name": suite.name,
            "tests": suite.tests,
            "failures": suite.failures,
            "errors": suite.errors,
            "skipped": suite.skipped,
            "time": suite.time,
            "file": suite._elem.get("file"),
            "properties": props,
            "cases": cases,
        }
    )
json.dump(
    {
        "tests": sum(s["tests"] or 0 for s in suites),
        "failures": sum(s["failures"] or 0 for s in suites),
        "errors": sum(s["errors"] or 0 for s in suites),
        "time": xml.time,
        "suites": suites,
    },
    sys.stdout,
)

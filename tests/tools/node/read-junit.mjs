// Test-only: prints, as JSON, what test-results-parser (the JUnit reader behind TestBeats
// dashboards) reads from a JUnit file: run and suite totals, durations, and each case's status.
//   usage: node read-junit.mjs JUNIT_XML
import { parse } from 'test-results-parser';

const result = parse({ type: 'junit', files: [process.argv[2]] });
const suites = result.suites.map((s) => ({
  name: s.name,
  total: s.total,
  passed: s.passed,
  failed: s.failed,
  errors: s.errors,
  skipped: s.skipped,
  duration: s.duration,
  status: s.status,
  metadata: s.metadata,
  cases: s.cases.map((c) => ({ name: c.name, status: c.status, duration: c.duration })),
}));
process.stdout.write(JSON.stringify({
  total: result.total,
  passed: result.passed,
  failed: result.failed,
  errors: result.errors,
  skipped: result.skipped,
  duration: result.duration,
  status: result.status,
  suites,
}));

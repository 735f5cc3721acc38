//! Running planned cases: boot QEMU, feed the judge, enforce deadlines, reap, report.

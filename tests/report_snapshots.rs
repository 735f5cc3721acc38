//! The reports' text pinned by snapshots (insta): the terminal's lines, the step summary and the
//! JUnit XML of one fixed run of five cases — a pass, a failure with its deciding line, a
//! timeout with the vCPUs' state, a skip, and a flaky pass after two failed attempts. The
//! verdicts are made by the real rules (`verdict::decide`); only the temp dir is redacted.
//!
//! A changed report fails here with a diff. To accept a change on purpose, run
//! `INSTA_UPDATE=always cargo test --test report_snapshots` (or `cargo insta review`) and commit
//! the `.snap` files under `tests/snapshots/`; `cargo test` never writes them where `CI` is set.

pub mod common;

use std::path::Path;
use std::time::Duration;

use common::capture::Captured;
use qemu_test_action::arch::Arch;
use qemu_test_action::console::{Decision, MatchInfo, PatternKind};
use qemu_test_action::environment::Runner;
use qemu_test_action::error::Location;
use qemu_test_action::postmortem::{self, Postmortem, VcpuState};
use qemu_test_action::report::gha::summary::{DEFAULT_BUDGET, SummaryCase, render};
use qemu_test_action::report::junit::write_junit;
use qemu_test_action::report::model::Attempt;
use qemu_test_action::report::terminal::TerminalReporter;
use qemu_test_action::report::{CaseBuilder, CaseResult, Event, Reporter, Stage};
use qemu_test_action::verdict::{End, Facts, Outcome, QemuExit, Verdict, decide};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The verdict the real rules give a boot that stopped on console line `line_no`, `line`, where
/// a `kind` pattern (written in configs/qemu.toml) matched `at` ms after QEMU started.
fn on_match(
    kind: PatternKind,
    pattern: &str,
    (line_no, line): (u64, &str),
    at: u64,
    pm: Option<Postmortem>,
) -> Verdict {
    let info = MatchInfo {
        kind,
        index: 0,
        pattern: pattern.into(),
        location: Some(Location {
            path: "configs/qemu.toml".into(),
            line: if kind == PatternKind::Fail { 4 } else { 3 },
            column: 17,
        }),
        line_no,
        line: line.into(),
        at: ms(at),
    };
    let decision = match kind {
        PatternKind::Fail => Decision::Fail(info),
        PatternKind::Success => Decision::Success(info),
    };
    decided(End::Decided(decision), at, (line_no, line), pm)
}

/// The verdict the real rules give a boot that ended `end` after `elapsed` ms, its last
/// console line `last`.
fn decided(end: End, elapsed: u64, last: (u64, &str), pm: Option<Postmortem>) -> Verdict {
    decide(&Facts {
        elapsed: ms(elapsed),
        last_line: Some((last.0, last.1.into())),
        postmortem: pm,
        ..Facts::new(end, &[])
    })
}

/// A case booted on aarch64 under TCG: prepared in 20 ms, booted for `boot` ms.
fn booted(name: &str, verdict: Verdict, boot: u64, dir: &Path) -> CaseBuilder {
    CaseBuilder::with_verdict(name, verdict.clone())
        .duration(ms(boot + 31))
        .ran_on(Arch::Aarch64, "tcg")
        .qemu_version("10.0.2")
        .stage(Stage::Prepare, ms(20), true)
        .stage(Stage::Boot, ms(boot), verdict.outcome == Outcome::Pass)
        .log(dir.join(format!("{name}.log")))
}

/// Two vCPUs stopped at the deadline: the boot CPU spinning in `main`, the other never
/// started.
fn vcpus() -> Postmortem {
    let at = |function: &str, offset, line: Option<u32>| postmortem::Location {
        function: Some(function.into()),
        offset,
        file: line.map(|_| "main.c".into()),
        line,
        object: "hang.elf".into(),
    };
    let vcpu = |index, pc, halted, pc_at| VcpuState {
        index,
        arch: "aarch64".into(),
        pc,
        sp: Some(0x4008_3f80),
        lr: Some(0x4008_0010),
        mode: Some("EL2".into()),
        halted: Some(halted),
        pc_at: Some(pc_at),
        lr_at: Some(at("park", 0, None)),
        registers: Default::default(),
    };
    Postmortem {
        vcpus: vec![
            vcpu(0, 0x4008_00a4, false, at("main", 0x24, Some(41))),
            vcpu(1, 0x4008_0000, true, at("_start", 0, None)),
        ],
        notes: Vec::new(),
        took_ms: 12,
        backtraces: Vec::new(),
        core_dump: None,
    }
}

/// The fixed run, its logs written into `dir`.
fn results(dir: &Path) -> Vec<CaseResult> {
    for (name, text) in [
        ("hello", "Hello, world!\n"),
        (
            "panic",
            "booting...\nmain: 3 tasks\npanicked at src/main.rs:7:5\n",
        ),
        ("hang", "booting...\n"),
        ("flaky", "booting...\nHello, world!\n"),
    ] {
        std::fs::write(dir.join(format!("{name}.log")), text).unwrap();
    }
    let hello = "Hello, world!";
    let pass = on_match(PatternKind::Success, hello, (1, hello), 412, None);
    let panic = "panicked at src/main.rs:7:5";
    let fail = on_match(
        PatternKind::Fail,
        "panicked at",
        (3, panic),
        830,
        Some(vcpus()),
    );
    let mut timeout = decided(
        End::Deadline(ms(2000)),
        2000,
        (1, "booting..."),
        Some(vcpus()),
    );
    timeout.qemu_exit = Some(QemuExit {
        code: None,
        signal: Some(15),
        killed_by_runner: true,
    });
    let flaky_pass = on_match(PatternKind::Success, hello, (2, hello), 650, None);
    let attempt = |verdict: Verdict, n: u32| Attempt {
        verdict,
        duration: ms(2031),
        console_tail: vec!["booting...".into()],
        log: Some(dir.join(format!("flaky.attempt{n}.log"))),
    };
    vec![
        booted("hello", pass, 450, dir)
            .console_lines(1)
            .tail([hello])
            .build(),
        booted("panic", fail, 830, dir)
            .console_lines(3)
            .tail(["booting...", "main: 3 tasks", panic])
            .stderr_tail(["qemu-system-aarch64: terminating on signal 15"])
            .build(),
        booted("hang", timeout, 2000, dir)
            .console_lines(1)
            .tail(["booting..."])
            .build(),
        CaseResult::builder(
            "nimbos-x86_64",
            Outcome::Skipped,
            "requires vmx, which this runner lacks (KVM is not available)",
        )
        .build(),
        booted("flaky", flaky_pass, 650, dir)
            .console_lines(2)
            .tail(["booting...", hello])
            .attempt(attempt(
                decided(End::Deadline(ms(2000)), 2000, (1, "booting..."), None),
                1,
            ))
            .attempt(attempt(
                decided(End::Inactive(ms(1500)), 2000, (1, "booting..."), None),
                2,
            ))
            .build(),
    ]
}

/// `text` with the temp dir's path redacted.
fn assert_snapshot(name: &str, dir: &Path, text: &str) {
    let dir = regex::escape(&dir.display().to_string());
    insta::with_settings!({
        filters => vec![(dir.as_str(), "[TMP]")],
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, text);
    });
}

#[test]
fn terminal() {
    let dir = tempfile::tempdir().unwrap();
    let results = results(dir.path());
    let (out, err) = (Captured::default(), Captured::default());
    let mut t =
        TerminalReporter::to_writers(true, false, Box::new(out.clone()), Box::new(err.clone()));
    for result in &results {
        t.event(&Event::CaseFinished { result });
    }
    t.event(&Event::RunFinished {
        results: &results,
        exit_code: 1,
        outcome: qemu_test_action::verdict::worst(results.iter().map(|r| r.verdict.outcome)),
    });
    assert_eq!(out.text(), "", "no console was echoed");
    assert_snapshot("terminal", dir.path(), &err.text());
}

#[test]
fn step_summary() {
    let dir = tempfile::tempdir().unwrap();
    let results = results(dir.path());
    let cases: Vec<SummaryCase<'_>> = results
        .iter()
        .map(|result| SummaryCase {
            result,
            image: None,
        })
        .collect();
    assert_snapshot(
        "step_summary",
        dir.path(),
        &render(&cases, &[], DEFAULT_BUDGET),
    );
}

#[test]
fn junit() {
    let dir = tempfile::tempdir().unwrap();
    let results = results(dir.path());
    let path = dir.path().join("junit.xml");
    write_junit(&results, &path, &Runner::default()).unwrap();
    let xml = std::fs::read_to_string(&path).unwrap();
    assert_snapshot("junit", dir.path(), &xml);
}

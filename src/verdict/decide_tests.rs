//! The verdict rules as a table: each row is the facts of one ending and the outcome and the
//! words its reason must contain. No QEMU involved.

use std::time::Duration;

use super::*;
use crate::config::PatternSpec;
use crate::console::MatchInfo;

fn pattern(re: &str) -> Pattern {
    Pattern::compile(
        &PatternSpec {
            regex: re.into(),
            location: None,
        },
        "success",
    )
    .expect("valid")
}

fn matched(kind: PatternKind, pattern: &str, line: &str) -> End {
    let info = MatchInfo {
        kind,
        index: 0,
        pattern: pattern.into(),
        location: None,
        line_no: 3,
        line: line.into(),
        at: Duration::from_millis(1500),
    };
    End::Decided(match kind {
        PatternKind::Fail => Decision::Fail(info),
        PatternKind::Success => Decision::Success(info),
    })
}

fn exit(code: Option<i32>, signal: Option<i32>) -> Option<QemuExit> {
    Some(QemuExit {
        code,
        signal,
        killed_by_runner: false,
    })
}

fn ending(reason: &str) -> Option<GuestEnding> {
    Some(GuestEnding {
        reason: reason.into(),
        at: Duration::from_millis(90),
    })
}

/// Facts of a live boot that ended `end`, with a success pattern and nothing else pending.
fn base(end: End, success: &[Pattern]) -> Facts<'_> {
    Facts {
        elapsed: Duration::from_secs(2),
        qemu_exit: exit(None, Some(15)),
        last_line: Some((7, "Kernel panic - not syncing: VFS".into())),
        ..Facts::new(end, success)
    }
}

#[test]
fn rules_table() {
    let hello = [pattern("Hello")];
    let none: [Pattern; 0] = [];
    type Edit = fn(&mut Facts<'_>);
    let rows: Vec<(&str, Facts<'_>, Edit, Outcome, &[&str])> = vec![
        (
            "success pattern",
            base(matched(PatternKind::Success, "Hello", "Hello"), &hello),
            |_| {},
            Outcome::Pass,
            &["success pattern 'Hello' matched console line 3 at 1.500s"],
        ),
        (
            "fail pattern",
            base(
                matched(PatternKind::Fail, "panicked at", "panicked at x"),
                &hello,
            ),
            |_| {},
            Outcome::Fail,
            &["fail pattern 'panicked at' matched console line 3"],
        ),
        (
            "success but a required milestone was missed",
            base(matched(PatternKind::Success, "Hello", "Hello"), &hello),
            |f| f.missed_milestones = vec!["'up' (pattern 'VM up')".into()],
            Outcome::Fail,
            &[
                "required milestone 'up' (pattern 'VM up') not reached",
                "success pattern",
            ],
        ),
        (
            "success but extracted cases failed",
            base(matched(PatternKind::Success, "Hello", "Hello"), &hello),
            |f| f.case_failure = Some("1 of 2 test cases failed: 'a'".into()),
            Outcome::Fail,
            &["1 of 2 test cases failed"],
        ),
        (
            "clean exit with no success pattern",
            base(End::Exited, &none),
            |f| f.qemu_exit = exit(Some(0), None),
            Outcome::Pass,
            &["QEMU exited with status 0 and no success pattern is configured"],
        ),
        (
            "clean exit with a missed required milestone",
            base(End::Exited, &none),
            |f| {
                f.qemu_exit = exit(Some(0), None);
                f.missed_milestones = vec!["'up' (pattern 'x')".into()];
            },
            Outcome::Fail,
            &["required milestone 'up'"],
        ),
        (
            "clean exit while a step waits",
            base(End::Exited, &hello),
            |f| {
                f.qemu_exit = exit(Some(0), None);
                f.awaiting = Some("step 2 (expect '# ')".into());
            },
            Outcome::Fail,
            &["QEMU exited with status 0 while waiting for step 2 (expect '# ')"],
        ),
        (
            "clean exit before the success pattern",
            base(End::Exited, &hello),
            |f| f.qemu_exit = exit(Some(0), None),
            Outcome::Fail,
            &[
                "before any success pattern matched ('Hello')",
                "last console line 7",
            ],
        ),
        (
            "guest reset",
            base(End::Exited, &none),
            |f| {
                f.qemu_exit = exit(Some(0), None);
                f.guest = ending("guest-reset");
            },
            Outcome::Fail,
            &[
                "guest reset itself at 0.090s",
                "Kernel panic - not syncing: VFS",
            ],
        ),
        (
            "guest reset with on_reset = pass",
            base(End::Exited, &none),
            |f| {
                f.qemu_exit = exit(Some(0), None);
                f.guest = ending("guest-reset");
                f.reset_passes = true;
            },
            Outcome::Pass,
            &["the guest reset itself (on_reset = \"pass\")"],
        ),
        (
            "guest panic reported by SHUTDOWN",
            base(End::Exited, &none),
            |f| {
                f.qemu_exit = exit(Some(0), None);
                f.guest = ending("guest-panic");
                f.reset_passes = true;
            },
            Outcome::Fail,
            &["the guest panicked at 0.090s"],
        ),
        (
            "guest panic reported by pvpanic",
            base(End::GuestPanicked(Duration::from_millis(250)), &hello),
            |_| {},
            Outcome::Fail,
            &["the guest panicked at 0.250s"],
        ),
        (
            "clean power-off is not a reset",
            base(End::Exited, &none),
            |f| {
                f.qemu_exit = exit(Some(0), None);
                f.guest = ending("guest-shutdown");
            },
            Outcome::Pass,
            &["QEMU exited with status 0"],
        ),
        (
            "QEMU failed",
            base(End::Exited, &hello),
            |f| {
                f.qemu_exit = exit(Some(1), None);
                f.stderr_line = Some("qemu-system-aarch64: boom".into());
            },
            Outcome::Fail,
            &["QEMU exited with status 1: qemu-system-aarch64: boom"],
        ),
        (
            "QEMU killed by a signal",
            base(End::Exited, &hello),
            |f| f.qemu_exit = exit(None, Some(9)),
            Outcome::Fail,
            &["QEMU was killed by signal 9"],
        ),
        (
            "deadline",
            base(End::Deadline(Duration::from_secs(30)), &hello),
            |_| {},
            Outcome::Timeout,
            &["timed out after 30s", "waiting for 'Hello'"],
        ),
        (
            "deadline while a step waits (a success pattern was seen)",
            base(End::Deadline(Duration::from_secs(30)), &hello),
            |f| f.awaiting = Some("step 1 (expect 'login:')".into()),
            Outcome::Timeout,
            &["waiting for step 1 (expect 'login:')"],
        ),
        (
            "step timeout",
            base(
                End::Awaited("step 1 (expect 'x') not matched within 5s".into()),
                &hello,
            ),
            |_| {},
            Outcome::Timeout,
            &["timed out: step 1 (expect 'x') not matched within 5s"],
        ),
        (
            "inactivity",
            base(End::Inactive(Duration::from_secs(10)), &hello),
            |_| {},
            Outcome::Timeout,
            &["no console output for 10s (inactivity_timeout)"],
        ),
        (
            "cancel",
            base(End::Cancelled(CancelSignal::Sigterm), &hello),
            |_| {},
            Outcome::Cancelled,
            &["cancelled by SIGTERM after 2.000s"],
        ),
        (
            "replayed log ends with no success pattern",
            base(End::LogEnded, &none),
            |f| f.qemu_exit = None,
            Outcome::Timeout,
            &["a replay has no QEMU exit to judge"],
        ),
        (
            "replayed log ends while a step waits",
            base(End::LogEnded, &hello),
            |f| f.awaiting = Some("step 2 (expect 'y')".into()),
            Outcome::Timeout,
            &["the log ended while waiting for step 2"],
        ),
    ];
    for (name, mut facts, edit, outcome, words) in rows {
        edit(&mut facts);
        let v = decide(&facts);
        assert_eq!(v.outcome, outcome, "{name}: {}", v.reason);
        for w in words {
            assert!(v.reason.contains(w), "{name}: {:?} lacks {w:?}", v.reason);
        }
        assert_eq!(v.qemu_exit, facts.qemu_exit, "{name}");
    }
}

#[test]
fn a_replay_shows_no_times() {
    let hello = [pattern("Hello")];
    let mut f = base(matched(PatternKind::Success, "Hello", "Hello"), &hello);
    f.live = false;
    let v = decide(&f);
    assert_eq!(
        v.reason,
        "success pattern 'Hello' matched console line 3: Hello"
    );
}

/// `--fail-on-regression`'s run-level rule: only a pass becomes a fail, and says why first.
#[test]
fn a_regression_fails_only_a_pass() {
    let why = || Some("boot time regressed past the threshold (+20% and +500ms)".to_string());
    let rows = [
        (Outcome::Pass, why(), Outcome::Fail),
        (Outcome::Pass, None, Outcome::Pass),
        (Outcome::Fail, why(), Outcome::Fail),
        (Outcome::Timeout, why(), Outcome::Timeout),
        (Outcome::Error, why(), Outcome::Error),
        (Outcome::Skipped, why(), Outcome::Skipped),
        (Outcome::Cancelled, why(), Outcome::Cancelled),
    ];
    for (before, regression, after) in rows {
        let v = regressed(Verdict::new(before, "what decided"), regression.clone());
        assert_eq!(v.outcome, after, "{before:?} {regression:?}");
        let expected = if before == Outcome::Pass && regression.is_some() {
            "boot time regressed past the threshold (+20% and +500ms) (what decided)"
        } else {
            "what decided"
        };
        assert_eq!(v.reason, expected);
    }
}

/// The reason's quoted console line is known by number, so a report showing that line can
/// leave the quote out; the last occurrence is the quote even when the text repeats earlier.
#[test]
fn the_quoted_line_can_be_left_out_of_the_reason() {
    let hello = [pattern("Hello")];
    let v = decide(&base(
        matched(PatternKind::Fail, "panicked at", "panicked at x"),
        &hello,
    ));
    assert_eq!(v.quote.as_ref().map(|q| q.line_no), Some(3));
    assert_eq!(
        v.reason_beside_line(|n| n == 3),
        "fail pattern 'panicked at' matched console line 3 at 1.500s"
    );
    assert_eq!(v.reason_beside_line(|_| false), v.reason);

    let mut f = base(End::Exited, &hello);
    f.qemu_exit = exit(Some(0), None);
    f.last_line = Some((7, "Hello".into()));
    let v = decide(&f);
    assert_eq!(
        v.reason,
        "QEMU exited with status 0 before any success pattern matched ('Hello'); last console line 7: 'Hello'"
    );
    assert_eq!(
        v.reason_beside_line(|n| n == 7),
        "QEMU exited with status 0 before any success pattern matched ('Hello'); last console line 7"
    );
    // A verdict that quotes nothing has no quote.
    f.last_line = None;
    assert_eq!(decide(&f).quote, None);
}

#[test]
fn a_postmortem_is_said_and_kept_on_failures_only() {
    use crate::postmortem::{Postmortem, VcpuState};
    let hello = [pattern("Hello")];
    let pm = Postmortem {
        vcpus: vec![VcpuState {
            index: 0,
            arch: "aarch64".into(),
            pc: 0x4008_0090,
            sp: None,
            lr: None,
            mode: Some("EL2".into()),
            halted: Some(false),
            pc_at: None,
            lr_at: None,
            registers: Default::default(),
        }],
        ..Default::default()
    };
    let mut f = base(End::Deadline(Duration::from_secs(30)), &hello);
    f.postmortem = Some(pm.clone());
    let v = decide(&f);
    assert_eq!(v.outcome, Outcome::Timeout);
    assert!(
        v.reason
            .ends_with("; vCPU0 at EL2 in 0x40080090 (no symbols)"),
        "{}",
        v.reason
    );
    assert_eq!(v.postmortem.as_ref(), Some(&pm));
    // A cancel is not a failure of the guest: no vCPU state in its reason.
    f.end = End::Cancelled(crate::verdict::CancelSignal::Sigint);
    let v = decide(&f);
    assert!(!v.reason.contains("vCPU0"), "{}", v.reason);
    assert!(v.postmortem.is_none());
}

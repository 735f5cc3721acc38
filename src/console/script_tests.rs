use std::path::Path;

use super::*;
use crate::config::grammar::GrammarSpec;
use crate::config::source::SourceText;
use crate::console::{Decision, Judge, JudgeOptions};

fn grammar(text: &str) -> GrammarSpec {
    let src = SourceText::new(Path::new("g.toml"), text.to_string());
    let doc = toml_edit::Document::parse(text.to_string()).expect("toml");
    let mut g = GrammarSpec::default();
    for (k, item) in doc.iter() {
        assert!(g.read_key(k, item, &src).expect("valid"), "{k}");
    }
    g
}

fn judge(text: &str) -> Judge {
    let script = Script::compile(&grammar(text), true).expect("compiles");
    Judge::new(Vec::new(), Vec::new(), JudgeOptions::default()).with_script(script)
}

const NIMBOS: &str = "[[steps]]\nexpect = \"Rust user shell\"\n\
    [[steps]]\nexpect = \">> \"\nsend = \"usertests\\n\"\ntimeout = \"30s\"\n\
    [[steps]]\nexpect = \"usertests passed!\"\n";

#[test]
fn steps_send_only_after_the_prompt_on_the_unfinished_line() {
    let mut j = judge(NIMBOS);
    let t = Duration::from_millis(1);
    assert!(j.feed(b">> early\r\n", t).is_none());
    assert!(
        j.script_mut().unwrap().take_send().is_none(),
        "prompt before the banner"
    );
    assert!(j.feed(b"Rust user shell\r\n>", t).is_none());
    assert!(j.script_mut().unwrap().take_send().is_none());
    assert!(j.feed(b"> ", t).is_none());
    assert_eq!(
        j.script_mut().unwrap().take_send().as_deref(),
        Some(&b"usertests\n"[..])
    );
    // The echo lands on the prompt's line; the old prompt must not match again.
    assert!(j.feed(b"usertests\r\n", t).is_none());
    match j.feed(b"usertests passed!\r\n", Duration::from_secs(2)) {
        Some(Decision::Success(m)) => {
            assert_eq!(m.pattern, "usertests passed!");
            assert_eq!(m.line_no, 4);
        }
        other => panic!("{other:?}"),
    }
    let tl = j.script().unwrap().timeline();
    assert_eq!(tl.len(), 3);
    assert_eq!(tl[1].name, "step 2: send 'usertests\\n'");
    assert_eq!(tl[2].delta, Some(Duration::from_millis(1999)));
}

#[test]
fn step_deadline_names_the_step() {
    let j = judge(NIMBOS);
    let s = j.script().unwrap();
    assert!(s.next_deadline().is_none(), "step 1 has no timeout");
    let mut j = judge(NIMBOS);
    j.feed(b"Rust user shell\n", Duration::from_secs(3));
    let (at, what) = j.script().unwrap().next_deadline().unwrap();
    assert_eq!(at, Duration::from_secs(33));
    assert!(what.contains("step 2 (expect '>> ')"), "{what}");
}

#[test]
fn step_fail_pattern_fails_while_waiting() {
    let mut j = judge(
        "shell_check_steps = [{ shell_prefix = \"$ \", shell_cmd = \"run\", \
         success_regex = \"^OK\", fail_regex = \"ERR\" }]\n",
    );
    let t = Duration::ZERO;
    assert!(
        j.feed(b"ERR before\n$ ", t).is_none(),
        "fail not active yet"
    );
    match j.feed(b"run\nERR now\nOK\n", t) {
        Some(Decision::Fail(m)) => assert_eq!(m.line_no, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn milestones_in_order_with_deadlines() {
    let mut j = judge(
        "[[milestones]]\nname = \"hv\"\npattern = 'VM\\[1\\] boot success'\ndeadline = \"20s\"\n\
         [[milestones]]\nname = \"guest\"\npattern = \"Hello\"\ndeadline = \"40s\"\n",
    );
    j.feed(b"Hello\n", Duration::from_secs(1));
    let (at, what) = j.script().unwrap().next_deadline().unwrap();
    assert_eq!(at, Duration::from_secs(20));
    assert!(what.contains("milestone 'hv'"), "{what}");
    j.feed(
        b"[ 1.0 0:1 axvisor] VM[1] boot success\nHello\n",
        Duration::from_secs(5),
    );
    let tl = j.script().unwrap().timeline();
    assert_eq!(tl[0].line_no, Some(2));
    assert_eq!(tl[1].line_no, Some(3));
    assert!(j.script().unwrap().next_deadline().is_none());
}

#[test]
fn extraction_maps_results_and_checks_expected() {
    let mut j = judge(
        "[[testcases]]\npattern = \"Test '(?P<test_case_id>\\\\w+)' in Process \\\\d+ exited with code (?P<result>-?\\\\d+)\"\n\
         results = { \"0\" = \"pass\" }\nexpected = [\"a\", \"b\", \"c\"]\n\
         [[testcases]]\npattern = '^ok \\d+ (?P<test_case_id>\\S+) # (?P<result>SKIP)'\n\
         [[testcases]]\npattern = '^(?P<result>ok|not ok) \\d+ (?P<test_case_id>\\S+)'\n",
    );
    let t = Duration::ZERO;
    j.feed(
        b"Test 'a' in Process 2 exited with code 0.\nTest 'b' in Process 3 exited with code 42.\n\
          Test 'z' in Process 4 exited with code 0.\nok 1 x\nnot ok 2 y\nok 3 w # SKIP no\npartial ok 4",
        t,
    );
    let s = j.script().unwrap();
    let got: Vec<(String, CaseStatus, Option<String>)> = s
        .cases()
        .into_iter()
        .map(|c| (c.id, c.status, c.note))
        .collect();
    use CaseStatus::*;
    assert_eq!(
        got,
        [
            ("a".into(), Pass, None),
            ("b".into(), Fail, None),
            ("z".into(), Fail, Some("unexpected".into())),
            ("x".into(), Pass, None),
            ("y".into(), Fail, None),
            ("w".into(), Skip, None),
            ("c".into(), Fail, Some("missing".into())),
        ]
    );
    let why = s.case_failure().unwrap();
    assert!(
        why.starts_with("4 of 7 test cases failed: 'b' (result '42', line 2)"),
        "{why}"
    );
}

#[test]
fn extractor_needs_named_groups() {
    let e =
        Script::compile(&grammar("[[testcases]]\npattern = \"(\\\\w+) ok\"\n"), true).unwrap_err();
    assert!(e.message.contains("no named group `test_case_id`"), "{e}");
    assert_eq!(e.location.unwrap().line, 2);
}

#[test]
fn a_success_pattern_does_not_decide_while_steps_are_incomplete() {
    let script = Script::compile(&grammar(NIMBOS), false).expect("compiles");
    let success = vec![
        Pattern::compile(
            &crate::config::PatternSpec {
                regex: "Hello".into(),
                location: None,
            },
            "success",
        )
        .unwrap(),
    ];
    let mut j = Judge::new(success, Vec::new(), JudgeOptions::default()).with_script(script);
    let t = Duration::from_millis(1);
    // Complete line and prompt-like unfinished line: neither passes before the steps are done.
    assert!(j.feed(b"Hello\r\nRust user shell\r\n", t).is_none());
    assert!(j.feed(b"Hello", t).is_none());
    assert!(
        j.poll(Duration::from_secs(5)).is_none(),
        "pending success kept"
    );
    assert!(j.finish(Duration::from_secs(5)).is_none());
    assert_eq!(
        j.script().unwrap().awaiting().as_deref(),
        Some("step 2 (expect '>> ')")
    );
    // The success text seen before the last step does not count, even in the same read.
    assert!(
        j.feed(b"\r\n>> usertests\r\nusertests passed!\r\n", t)
            .is_none()
    );
    assert!(j.script().unwrap().steps_done());
    match j.feed(b"Hello and more\r\nHello\r\n", t) {
        Some(Decision::Success(m)) => assert_eq!((m.pattern.as_str(), m.line_no), ("Hello", 6)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn optional_milestones_neither_wait_nor_fail() {
    let j = judge(
        "[[milestones]]\nname = \"extra\"\npattern = \"X\"\ndeadline = \"5s\"\noptional = true\n\
         [[milestones]]\nname = \"must\"\npattern = \"Y\"\n",
    );
    let s = j.script().unwrap();
    assert!(
        s.next_deadline().is_none(),
        "an optional deadline ends nothing"
    );
    assert_eq!(
        s.awaiting().as_deref(),
        Some("milestone 'must' (pattern 'Y')")
    );
    assert_eq!(
        s.missed_milestones(),
        vec!["'must' (pattern 'Y')".to_string()]
    );
    let tl = s.timeline();
    assert!(tl[0].optional && !tl[1].optional);
}

#[test]
fn a_missed_optional_milestone_does_not_block_the_next_one() {
    let mut j = judge(
        "[[milestones]]\nname = \"a\"\npattern = \"A\"\n\
         [[milestones]]\nname = \"extra\"\npattern = \"X\"\noptional = true\n\
         [[milestones]]\nname = \"b\"\npattern = \"B\"\n\
         [[milestones]]\nname = \"c\"\npattern = \"C\"\n",
    );
    j.feed(b"A\nB\nX\nC\n", Duration::from_secs(1));
    let s = j.script().unwrap();
    assert!(
        s.missed_milestones().is_empty(),
        "{:?}",
        s.missed_milestones()
    );
    let tl = s.timeline();
    let names: Vec<(&str, Option<u64>)> = tl.iter().map(|e| (e.name.as_str(), e.line_no)).collect();
    // X after B is too late for its place: it stays not reached.
    assert_eq!(
        names,
        vec![
            ("a", Some(1)),
            ("b", Some(2)),
            ("c", Some(4)),
            ("extra", None)
        ]
    );
    assert!(tl[3].optional);
}

#[test]
fn sends_are_named_with_control_characters_escaped() {
    assert_eq!(super::step_name(0, Some(b"\n")), "step 1: send '\\n'");
    assert_eq!(
        super::step_name(1, Some(b"run\r\x03")),
        "step 2: send 'run\\r\\u{3}'"
    );
}

/// Cases past [`MAX_CASES`] are counted, not kept: each line a test-case pattern matches counts
/// once, a line the screen points at but no pattern matches does not.
fn not_kept(extractor: &str, extra: &str) -> u64 {
    let mut j = judge(&format!("[[testcases]]\npattern = '{extractor}'\n"));
    let kept: String = (0..MAX_CASES).map(|i| format!("ok {i} t{i}\n")).collect();
    j.feed(kept.as_bytes(), Duration::ZERO);
    j.feed(extra.as_bytes(), Duration::ZERO);
    let s = j.script().unwrap();
    assert_eq!(s.cases().len(), MAX_CASES);
    s.cases_not_kept()
}

#[test]
fn cases_past_the_cap_are_counted_on_the_lines_that_match() {
    let extra = "ok 1 more\nnot ok 2 x\nok 3 again\nok\nok 4 last\n";
    // No assertion: the screen's hit is the match.
    let plain = r"(?P<result>ok) \d+ (?P<test_case_id>\S+)";
    assert_eq!(not_kept(plain, extra), 4);
    // Anchored: `not ok 2 x` is pointed at by the relaxed screen but does not match.
    let anchored = r"^(?P<result>ok) \d+ (?P<test_case_id>\S+)";
    assert_eq!(not_kept(anchored, extra), 3);
}

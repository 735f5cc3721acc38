use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn pats(res: &[&str]) -> Vec<Pattern> {
    Pattern::list(res)
}

fn judge(success: &[&str], fail: &[&str]) -> Judge {
    Judge::new(pats(success), pats(fail), JudgeOptions::default())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// (kind, index, line number): what must not depend on chunking.
type Outcome = Option<(PatternKind, usize, u64)>;

fn outcome(d: &Option<Decision>) -> Outcome {
    d.as_ref().map(|d| {
        let i = d.info();
        (i.kind, i.index, i.line_no)
    })
}

/// Feeds `stream` cut at `cuts` (sorted offsets), then finishes; returns the first decision.
fn run_cut(j: &mut Judge, stream: &[u8], cuts: &[usize]) -> Option<Decision> {
    let mut first = None;
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
        let d = j.feed(&stream[start..end], Duration::ZERO);
        first = first.or(d);
        start = end;
    }
    first.or(j.finish(Duration::ZERO))
}

fn run_whole(success: &[&str], fail: &[&str], stream: &[u8]) -> Option<Decision> {
    run_cut(&mut judge(success, fail), stream, &[])
}

fn run_bytewise(success: &[&str], fail: &[&str], stream: &[u8]) -> Option<Decision> {
    let cuts: Vec<usize> = (1..stream.len()).collect();
    run_cut(&mut judge(success, fail), stream, &cuts)
}

#[test]
fn success_on_a_complete_line_is_final_at_once() {
    let mut j = judge(&["Hello, world!"], &["panicked at"]);
    assert_eq!(j.feed(b"boot\nHello, ", ms(5)), None);
    let d = j.feed(b"world!\nbye\n", ms(7)).expect("decision");
    let Decision::Success(info) = d else {
        panic!("{d:?}")
    };
    assert_eq!(info.index, 0);
    assert_eq!(info.pattern, "Hello, world!");
    assert_eq!(info.line_no, 2);
    assert_eq!(info.line, "Hello, world!");
    assert_eq!(info.at, ms(7));
}

#[test]
fn every_cut_point_gives_the_same_decision() {
    let stream: &[u8] =
        b"[ 0.1] boot\r\n\x1b[32mVM[1] boot \x1b[0msuccess\r\n[ 0.2] x\npanicked at src/x.rs\n";
    let (s, f) = (&["VM\\[1\\] boot success"][..], &["panicked at"][..]);
    let whole = outcome(&run_whole(s, f, stream));
    assert_eq!(whole, Some((PatternKind::Success, 0, 2)));
    assert_eq!(outcome(&run_bytewise(s, f, stream)), whole);
    for cut in 0..=stream.len() {
        let got = run_cut(&mut judge(s, f), stream, &[cut]);
        assert_eq!(outcome(&got), whole, "cut at {cut}");
    }
}

#[test]
fn crlf_does_not_break_end_anchors() {
    let d = run_whole(&["^test pass!$"], &[], b"init\r\ntest pass!\r\n");
    assert_eq!(outcome(&d), Some((PatternKind::Success, 0, 2)));
}

#[test]
fn ansi_inside_the_matched_text_is_ignored() {
    let stream = b"ok\n\x1b[1;31mpan\x1b[0mick\x1b]0;t\x07ed at\x1b[K main.rs\n";
    let bytewise = run_bytewise(&[], &["panicked at main"], stream);
    assert_eq!(outcome(&bytewise), Some((PatternKind::Fail, 0, 2)));
    // Fed byte by byte, the fail is final as soon as the partial line matches.
    assert_eq!(bytewise.expect("fail").info().line, "panicked at main");
    let whole = run_whole(&[], &["panicked at main"], stream).expect("fail");
    assert_eq!(whole.info().line, "panicked at main.rs");
}

#[test]
fn invalid_utf8_is_matched_and_shown_lossily() {
    let d = run_whole(&[], &["panicked"], b"\xff\xfe panicked \xc3\n").expect("fail");
    assert_eq!(d.info().line, "\u{fffd}\u{fffd} panicked \u{fffd}");
    let d = run_whole(&["(?-u:\\xff)ok"], &[], b"x\xffok\n");
    assert_eq!(outcome(&d), Some((PatternKind::Success, 0, 1)));
}

#[test]
fn prompt_without_newline_settles_after_quiet() {
    let mut j = judge(&[">> $"], &["panicked at"]);
    assert_eq!(j.feed(b"Rust user shell\n>> ", ms(1000)), None);
    assert_eq!(j.next_wakeup(), Some(ms(1100)));
    assert_eq!(j.poll(ms(1099)), None);
    let d = j.poll(ms(1100)).expect("confirmed");
    let Decision::Success(info) = d else {
        panic!("{d:?}")
    };
    assert_eq!(
        (info.line_no, info.line.as_str(), info.at),
        (2, ">> ", ms(1100))
    );
    assert_eq!(j.next_wakeup(), None);
    assert_eq!(
        j.feed(b"panicked at x\n", ms(1200)),
        None,
        "first decision is final"
    );
}

#[test]
fn output_on_the_prompt_line_restarts_the_quiet_time() {
    let mut j = judge(&[">> "], &[]);
    assert_eq!(j.feed(b">> ", ms(10)), None);
    assert_eq!(j.feed(b"\x1b[K", ms(50)), None);
    assert_eq!(j.next_wakeup(), Some(ms(150)));
    assert!(j.poll(ms(149)).is_none());
    assert!(j.poll(ms(150)).is_some());
}

#[test]
fn late_bytes_after_quiet_confirm_the_prompt_first() {
    let mut j = judge(&[">> "], &["panicked"]);
    assert_eq!(j.feed(b">> ", ms(10)), None);
    let d = j.feed(b"panicked\n", ms(500)).expect("decision");
    assert_eq!(
        outcome(&Some(d.clone())),
        Some((PatternKind::Success, 0, 1))
    );
    assert_eq!(d.info().at, ms(500));
}

#[test]
fn prompt_confirmed_when_its_line_ends() {
    let mut j = judge(&["login: "], &["Login incorrect"]);
    assert_eq!(j.feed(b"debian login: ", ms(10)), None);
    let d = j.feed(b"root\n", ms(20)).expect("decision");
    assert_eq!(
        outcome(&Some(d.clone())),
        Some((PatternKind::Success, 0, 1))
    );
    assert_eq!(d.info().line, "debian login: root");
    assert_eq!(d.info().at, ms(20));
}

#[test]
fn pending_success_then_fail_on_the_same_line_fails() {
    let mut j = judge(&["test pass"], &["panicked at"]);
    assert_eq!(j.feed(b"boot\ntest pass", ms(10)), None);
    assert!(j.next_wakeup().is_some());
    let d = j
        .feed(b" ... panicked at lib.rs", ms(20))
        .expect("fail wins");
    assert_eq!(outcome(&Some(d)), Some((PatternKind::Fail, 0, 2)));
    assert_eq!(j.next_wakeup(), None);
}

#[test]
fn fail_and_success_on_one_line_fail() {
    let stream = b"test pass! then panicked at x\n";
    for d in [
        run_whole(&["test pass!"], &["panicked"], stream),
        run_bytewise(&["test pass!"], &["panicked"], stream),
    ] {
        assert_eq!(outcome(&d), Some((PatternKind::Fail, 0, 1)));
    }
}

#[test]
fn fail_on_an_unfinished_line_is_final_at_once() {
    let mut j = judge(&["ok"], &["System will reboot, press any key"]);
    let d = j.feed(
        b"x\nSystem will reboot, press any key to continue ...",
        ms(3),
    );
    assert_eq!(outcome(&d), Some((PatternKind::Fail, 0, 2)));
}

#[test]
fn finish_confirms_a_pending_success() {
    let mut j = judge(&["axvisor:\\$ "], &[]);
    assert_eq!(
        j.feed(b"Welcome to AxVisor Shell!\naxvisor:$ ", ms(1)),
        None
    );
    let d = j.finish(ms(2)).expect("confirmed at EOF");
    assert_eq!(
        outcome(&Some(d.clone())),
        Some((PatternKind::Success, 0, 2))
    );
    assert_eq!(d.info().at, ms(2));
    assert_eq!(j.finish(ms(3)), None);
}

#[test]
fn no_match_means_no_decision() {
    let mut j = judge(&["never"], &["nope"]);
    assert_eq!(j.feed(b"a\nb\nc", ms(1)), None);
    assert_eq!(j.next_wakeup(), None);
    assert_eq!(j.finish(ms(2)), None);
    let mut none = judge(&[], &[]);
    assert_eq!(none.feed(b"anything\n", ms(1)), None);
    assert_eq!(none.lines_seen(), 1);
}

#[test]
fn line_numbers_count_console_lines() {
    let mut stream = Vec::new();
    for i in 1..=999 {
        stream.extend_from_slice(format!("[{i:4}] line\r\n").as_bytes());
    }
    stream.extend_from_slice(b"\n\nall tests passed\n");
    let d = run_whole(&["tests passed"], &[], &stream);
    assert_eq!(outcome(&d), Some((PatternKind::Success, 0, 1002)));
}

#[test]
fn reports_which_of_several_patterns_matched() {
    let (s, f) = (
        &["Hello, world!", "test pass!", "usertests passed!"][..],
        &["panicked at", "Kernel panic", "BUG:"][..],
    );
    let d = run_whole(s, f, b"a\nb usertests passed!\n");
    assert_eq!(outcome(&d), Some((PatternKind::Success, 2, 2)));
    let d = run_whole(s, f, b"a\nKernel panic - not syncing\n").expect("fail");
    assert_eq!(
        (d.info().index, d.info().pattern.as_str()),
        (1, "Kernel panic")
    );
    // Two fail patterns on one line: the one complete first in the line is reported.
    let d = run_whole(s, f, b"BUG: x then panicked at y\n");
    assert_eq!(outcome(&d), Some((PatternKind::Fail, 2, 1)));
    assert_eq!(
        outcome(&run_bytewise(s, f, b"BUG: x then panicked at y\n")),
        outcome(&d)
    );
}

#[test]
fn caret_anchors_at_each_line_start() {
    let d = run_whole(&["^DONE"], &[], b"not DONE\n  DONE\nDONE: 3\n");
    assert_eq!(outcome(&d), Some((PatternKind::Success, 0, 3)));
}

#[test]
fn whole_text_anchors_are_checked_per_line() {
    let d = run_whole(&[r"\ADONE\z"], &[], b"DONE.\nDONE\n");
    assert_eq!(outcome(&d), Some((PatternKind::Success, 0, 2)));
}

#[test]
fn tail_continues_after_the_decision() {
    let mut j = Judge::new(
        pats(&[]),
        pats(&["panicked"]),
        JudgeOptions {
            tail_lines: 3,
            ..JudgeOptions::default()
        },
    );
    assert!(j.feed(b"a\npanicked at x\n", ms(1)).is_some());
    assert_eq!(j.feed(b"backtrace 1\nbacktrace 2\nunfinished", ms(2)), None);
    assert_eq!(
        j.tail(),
        ["panicked at x", "backtrace 1", "backtrace 2", "unfinished"]
    );
    assert_eq!(j.lines_seen(), 5);
}

#[test]
fn huge_reads_are_split_and_still_matched() {
    let mut stream = vec![b'.'; 3 * MAX_BATCH];
    stream.extend_from_slice(b"\nTEST OK\n");
    let d = run_whole(&["TEST OK"], &[], &stream);
    assert_eq!(outcome(&d), Some((PatternKind::Success, 0, 2)));
}

#[test]
fn endless_line_keeps_memory_bounded() {
    let opts = JudgeOptions::default();
    let bound = crate::console::lines::memory_bound(opts.line_cap, opts.tail_lines);
    assert!(bound < 256 * 1024);
    let mut j = Judge::new(pats(&["login: "]), pats(&["panicked at"]), opts);
    let mut chunk: Vec<u8> = (0..MAX_BATCH).map(|i| b"abcdefgh"[i % 8]).collect();
    for at in (0..MAX_BATCH - 8).step_by(1024) {
        chunk[at..at + 4].copy_from_slice(b"\x1b[0m");
    }
    for i in 0..(200 * 1024 * 1024 / MAX_BATCH) {
        assert_eq!(j.feed(&chunk, ms(i as u64)), None);
        assert!(
            j.memory_footprint() <= bound,
            "{} > {bound}",
            j.memory_footprint()
        );
    }
    let d = j.feed(b"panicked at the end", ms(99_999));
    assert_eq!(outcome(&d), Some((PatternKind::Fail, 0, 1)));
    assert!(d.expect("fail").info().line.len() <= 2 * lines_cap_shown());
    assert!(j.tail().iter().all(|l| l.len() <= 2 * lines_cap_shown()));
}

fn lines_cap_shown() -> usize {
    crate::console::lines::SHOWN_LINE_CAP
}

#[test]
fn many_lines_keep_memory_bounded() {
    let mut j = judge(&["never matches"], &["nor this"]);
    let mut chunk = Vec::new();
    while chunk.len() < MAX_BATCH - 40 {
        chunk.extend_from_slice(b"[  1.481549 0:5 axvisor::vmm:428] VM[1]\n");
    }
    let per_chunk = chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    for _ in 0..1000 {
        j.feed(&chunk, ms(1));
    }
    assert_eq!(j.lines_seen(), 1000 * per_chunk);
    assert!(j.memory_footprint() <= crate::console::lines::memory_bound(16 * 1024, 50));
    assert_eq!(j.tail().len(), 50);
}

/// The decision a byte-by-byte reader makes, computed naively from the whole cleaned text.
fn reference(success: &[Pattern], fail: &[Pattern], stream: &[u8]) -> Outcome {
    let mut cleaned = Vec::new();
    Cleaner::new().clean(stream, &mut cleaned);
    let first_prefix = |ps: &[Pattern], line: &[u8]| -> Option<usize> {
        (1..=line.len()).find_map(|n| ps.iter().position(|p| p.regex.is_match(&line[..n])))
    };
    for (i, line) in cleaned.split(|&b| b == b'\n').enumerate() {
        let no = i as u64 + 1;
        if let Some(k) = first_prefix(fail, line) {
            return Some((PatternKind::Fail, k, no));
        }
        if let Some(k) = first_prefix(success, line) {
            return Some((PatternKind::Success, k, no));
        }
    }
    None
}

const TOKENS: &[&[u8]] = &[
    b"ok",
    b" ",
    b"boot",
    b"PANIC",
    b"err",
    b"7",
    b" x",
    b"\n",
    b"\n",
    b"\n",
    b"\r\n",
    b"\r",
    b"\x1b[31m",
    b"\x1b[0m",
    b"\x1b]0;title\x07",
    b"\x1b(B",
    b"\xff",
    b"\xc3\x9b",
    b"\x9b1m",
    b">> ",
    b"Pan",
    b"IC",
    b"bo",
    b"ot",
];

fn random_stream(rng: &mut StdRng) -> Vec<u8> {
    let n = rng.random_range(1..120);
    let mut s = Vec::new();
    for _ in 0..n {
        s.extend_from_slice(TOKENS[rng.random_range(0..TOKENS.len())]);
    }
    s
}

fn random_cuts(rng: &mut StdRng, len: usize) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..rng.random_range(0..12))
        .map(|_| rng.random_range(0..=len))
        .collect();
    cuts.sort_unstable();
    cuts
}

#[test]
fn random_chunking_matches_the_byte_by_byte_reference() {
    let (s, f) = (
        &["^boot ok", ">> ", "ok ok", "boot"][..],
        &["PANIC", "err[0-9]+ x", "ok err"][..],
    );
    let (sp, fp) = (pats(s), pats(f));
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut decided = 0;
    for round in 0..1500 {
        let stream = random_stream(&mut rng);
        let expected = reference(&sp, &fp, &stream);
        decided += usize::from(expected.is_some());
        let mut whole = judge(s, f);
        assert_eq!(
            outcome(&run_cut(&mut whole, &stream, &[])),
            expected,
            "round {round}: {stream:?}"
        );
        let cuts = random_cuts(&mut rng, stream.len());
        let mut cut = judge(s, f);
        assert_eq!(
            outcome(&run_cut(&mut cut, &stream, &cuts)),
            expected,
            "round {round} cuts {cuts:?}: {stream:?}"
        );
        assert_eq!(whole.tail(), cut.tail(), "round {round}");
        assert_eq!(whole.lines_seen(), cut.lines_seen(), "round {round}");
        if round % 10 == 0 {
            assert_eq!(
                outcome(&run_bytewise(s, f, &stream)),
                expected,
                "round {round} bytewise: {stream:?}"
            );
        }
    }
    assert!(
        decided > 1000 && decided < 2900,
        "streams should be mixed: {decided} decided"
    );
}

#[test]
fn pending_success_is_final_when_its_line_ends_before_a_later_fail() {
    let mut j = judge(&[">> "], &["panicked"]);
    assert_eq!(j.feed(b"shell\n>> ", ms(1)), None);
    let d = j.feed(b"\npanicked at x\n", ms(2));
    assert_eq!(outcome(&d), Some((PatternKind::Success, 0, 2)));
}

/// axbuild's `(?m)^…\s*$` patterns: `^` is a line start and `$` a line end, also on the
/// unfinished last line; the shell's echo of the command (`~ # … echo 'guest test pass!'`) does
/// not match, the output line does — whole, bytewise, and as a partial last line.
#[test]
fn multiline_anchors_match_line_starts_also_on_the_partial_line() {
    let re = ["(?m)^guest test pass!\\s*$"];
    let echo = b"~ # pwd && echo 'guest test pass!'\r\n/\r\n";
    let mut stream = echo.to_vec();
    stream.extend_from_slice(b"guest test pass!\r\n~ # ");
    for d in [
        run_whole(&re, &[], &stream),
        run_bytewise(&re, &[], &stream),
    ] {
        assert_eq!(outcome(&d), Some((PatternKind::Success, 0, 3)));
    }
    assert_eq!(outcome(&run_whole(&re, &[], echo)), None);
    let mut partial = echo.to_vec();
    partial.extend_from_slice(b"guest test pass!");
    assert_eq!(
        outcome(&run_whole(&re, &[], &partial)),
        Some((PatternKind::Success, 0, 3))
    );
}

#[test]
fn a_fail_on_a_line_cut_mid_way_names_the_whole_line_once_the_tail_has_it() {
    let mut j = judge(&["Hello"], &["panicked at"]);
    let mut d = j
        .feed(b"boot\npanicked at src/ma", ms(5))
        .expect("the fail pattern decides on the unfinished line");
    assert_eq!(d.info().line, "panicked at src/ma");
    // Nothing new yet: the line stays as it was.
    j.complete_line(&mut d);
    assert_eq!(d.info().line, "panicked at src/ma");
    j.feed_tail(b"in.rs:1:1\nbacktrace\n");
    j.complete_line(&mut d);
    assert_eq!(d.info().line, "panicked at src/main.rs:1:1");
    assert_eq!(d.info().line_no, 2);
    // A success is never rewritten, and a line that does not start with the recorded text is
    // not taken.
    let mut other = d.clone();
    if let Decision::Fail(info) = &mut other {
        info.line = "something else".into();
    }
    j.complete_line(&mut other);
    assert_eq!(other.info().line, "something else");
}

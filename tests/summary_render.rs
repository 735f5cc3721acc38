//! The step summary through a real GitHub-flavoured Markdown renderer (comrak, which follows
//! cmark-gfm's spec): one table row per case, the failure details
//! folded, and nothing the guest printed becoming markup.

use std::path::PathBuf;
use std::time::Duration;

use qemu_test_action::console::{MatchInfo, PatternKind};
use qemu_test_action::report::gha::summary::{DEFAULT_BUDGET, SummaryCase, render};
use qemu_test_action::report::{CaseResult, ImageRef, Stage, StageTiming};
use qemu_test_action::verdict::{Outcome, Verdict};

fn case(name: &str, outcome: Outcome, tail: &[&str]) -> CaseResult {
    let mut b = CaseResult::builder(
        name,
        outcome,
        format!("{} because <b>guest</b> said so", outcome.name()),
    );
    if outcome == Outcome::Fail {
        b = b.decided_by(
            PatternKind::Fail,
            "panicked at",
            7,
            "panicked at <script>alert(1)</script> | col | `tick`",
            Duration::from_millis(1234),
        );
    }
    b.duration(Duration::from_millis(2500))
        .ran_on(qemu_test_action::arch::Arch::Aarch64, "tcg")
        .qemu_version("10.0.2")
        .image(ImageRef {
            name: "qemu_aarch64_linux".into(),
            version: Some("0.0.22".into()),
            sha256: Some("9e2a19e00a72962c4aac53ad8d6172ca473a93d321e3bb3f49a979264754e397".into()),
        })
        .stage(
            Stage::Boot,
            Duration::from_millis(2400),
            outcome == Outcome::Pass,
        )
        .tail(tail.iter().copied())
        .log("/out/x.log")
        .build()
}

fn summary_cases(results: &[CaseResult]) -> Vec<SummaryCase<'_>> {
    results
        .iter()
        .map(|r| SummaryCase {
            result: r,
            image: None,
        })
        .collect()
}

fn html(markdown: &str) -> String {
    let mut options = comrak::Options::default();
    options.extension.table = true;
    options.extension.strikethrough = true;
    options.extension.autolink = true;
    // Raw HTML passes through (GitHub keeps <details>/<summary>), so any guest text that were
    // not escaped would show up below as a real element.
    options.render.r#unsafe = true;
    comrak::markdown_to_html(markdown, &options)
}

#[test]
fn summary_renders_a_row_per_case_and_escapes_the_guest() {
    let results = [
        case("arceos-aarch64", Outcome::Pass, &["Hello, world!"]),
        case(
            "linux-aarch64",
            Outcome::Fail,
            &[
                "<img src=x onerror=alert(1)>",
                "```",
                "panicked at <script>alert(1)</script>",
            ],
        ),
        case("nimbos-x86_64", Outcome::Skipped, &[]),
    ];
    let cases = summary_cases(&results);
    let md = render(&cases, &[], DEFAULT_BUDGET);
    let page = html(&md);

    assert_eq!(page.matches("<table>").count(), 1, "{page}");
    // Header row plus one row per case.
    assert_eq!(page.matches("<tr>").count(), 4, "{page}");
    for name in ["arceos-aarch64", "linux-aarch64", "nimbos-x86_64"] {
        assert!(page.contains(name), "{name} missing:\n{page}");
    }
    assert!(page.contains("qemu_aarch64_linux"), "{page}");
    assert!(
        page.contains("9e2a19e00a72"),
        "short digest missing:\n{page}"
    );
    assert!(page.contains("10.0.2"), "{page}");
    // The failed case's console tail is open, its deciding line marked.
    assert!(
        page.contains("<details open>") && page.contains("<summary>"),
        "{page}"
    );
    // Nothing from the guest became an element.
    for raw in ["<script>", "<img", "<b>guest</b>"] {
        assert!(!page.contains(raw), "{raw} rendered as markup:\n{page}");
    }
    assert!(
        page.contains("&lt;script&gt;") || page.contains("&amp;lt;script&amp;gt;"),
        "{page}"
    );
}

/// A failed case retried twice and a passing case with milestones, rendered as GitHub would:
/// the deciding line once (marked in the console tail), the attempts as a list with their
/// verdicts, the log artifact linked, each chart a `mermaid` code block under its own case.
#[test]
fn failure_sections_say_the_deciding_line_once_and_picture_each_boot() {
    use qemu_test_action::console::{Decision, TimelineEntry, TimelineKind};
    use qemu_test_action::report::gha::summary::{Links, render_linked};
    use qemu_test_action::report::model::Attempt;
    use qemu_test_action::verdict::{End, Facts, decide};

    let deciding = "panicked at <script>alert(1)</script> src/main.rs:1:1";
    let tail: Vec<String> = vec!["booting".into(), deciding.into(), "cpu halted".into()];
    let facts = Facts {
        elapsed: Duration::from_secs(1),
        last_line: Some((42, "cpu halted".into())),
        ..Facts::new(
            End::Decided(Decision::Fail(MatchInfo {
                kind: PatternKind::Fail,
                index: 0,
                pattern: "panicked at".into(),
                location: None,
                line_no: 41,
                line: deciding.into(),
                at: Duration::from_millis(900),
            })),
            &[],
        )
    };
    let mut failed = case("panic", Outcome::Fail, &[]);
    failed.verdict = decide(&facts);
    failed.console_tail = tail;
    failed.console_lines = 42;
    failed.stages.insert(
        0,
        StageTiming {
            stage: Stage::Build,
            duration: Duration::from_millis(1200),
            ok: true,
        },
    );
    failed.attempts = vec![Attempt {
        verdict: Verdict::new(Outcome::Timeout, "timed out after 3s"),
        duration: Duration::from_secs(3),
        console_tail: Vec::new(),
        log: Some(PathBuf::from("/out/panic.attempt1.log")),
    }];
    let mut booted = case("linux", Outcome::Pass, &[]);
    booted.timeline = ["kernel up", "init: started #1"]
        .iter()
        .enumerate()
        .map(|(i, name)| TimelineEntry {
            kind: TimelineKind::Milestone,
            name: name.to_string(),
            pattern: "p".into(),
            at: Some(Duration::from_millis(500 * (i as u64 + 1))),
            delta: Some(Duration::from_millis(500)),
            line_no: Some(i as u64 + 1),
            line: None,
            optional: false,
        })
        .collect();
    let results = [failed, booted];
    let cases = summary_cases(&results);
    let links = Links {
        artifact: Links::artifact("https://github.com", "o/r", "7", "qemu-test-x-1-abc"),
        ..Links::default()
    };
    let md = render_linked(&cases, &[], DEFAULT_BUDGET, &links);
    let page = html(&md);

    assert_eq!(page.matches("alert(1)").count(), 1, "{page}");
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        page.contains(
            "<b>▶ 41 │ panicked at &lt;script&gt;alert(1)&lt;/script&gt; src/main.rs:1:1</b>"
        ),
        "{page}"
    );
    assert!(
        page.contains("<p>fail pattern 'panicked at' matched console line 41 at 0.900s</p>")
            || page.contains(
                "<p>fail pattern &#x27;panicked at&#x27; matched console line 41 at 0.900s</p>"
            ),
        "{page}"
    );
    // The attempts, as a list: the retry's verdict, then this result.
    let list = &page[page.find("<ol>").expect("attempts list")..page.find("</ol>").unwrap()];
    assert_eq!(list.matches("<li>").count(), 2, "{list}");
    assert!(
        list.contains("timeout in 3.0 s: timed out after 3s"),
        "{list}"
    );
    assert!(list.contains("fail in 2.4 s: this result"), "{list}");
    assert!(
        page.contains(
            "<a href=\"https://github.com/o/r/actions/runs/7#artifacts\">qemu-test-x-1-abc</a>"
        ),
        "{page}"
    );
    // One chart per booted case, each after its own heading; nothing of the config's name
    // escapes the chart's code block.
    let headings: Vec<usize> = page.match_indices("<h3>").map(|(i, _)| i).collect();
    assert_eq!(headings.len(), 2, "{page}");
    let charts: Vec<usize> = page
        .match_indices("<code class=\"language-mermaid\">gantt\n")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(charts.len(), 2, "{page}");
    assert!(headings[0] < charts[0] && charts[0] < headings[1] && headings[1] < charts[1]);
    assert!(
        page.contains("⚑ init∶ started ♯1 at 1.0 s :active, 500, 1000"),
        "{page}"
    );
}

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
    let mut v = Verdict::new(
        outcome,
        format!("{} because <b>guest</b> said so", outcome.name()),
    );
    if outcome == Outcome::Fail {
        v.decided_by = Some(MatchInfo {
            kind: PatternKind::Fail,
            index: 0,
            pattern: "panicked at".into(),
            location: None,
            line_no: 7,
            line: "panicked at <script>alert(1)</script> | col | `tick`".into(),
            at: Duration::from_millis(1234),
        });
    }
    let mut r = CaseResult::without_boot(name, v, Duration::from_millis(2500));
    r.arch = Some(qemu_test_action::arch::Arch::Aarch64);
    r.accel = Some("tcg".into());
    r.qemu_version = Some("10.0.2".into());
    r.image = Some(ImageRef {
        name: "qemu_aarch64_linux".into(),
        version: Some("0.0.22".into()),
        sha256: Some("9e2a19e00a72962c4aac53ad8d6172ca473a93d321e3bb3f49a979264754e397".into()),
    });
    r.stages = vec![StageTiming {
        stage: Stage::Boot,
        duration: Duration::from_millis(2400),
        ok: outcome == Outcome::Pass,
    }];
    r.console_tail = tail.iter().map(|s| s.to_string()).collect();
    r.log = Some(PathBuf::from("/out/x.log"));
    r
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
    let cases: Vec<SummaryCase> = results
        .iter()
        .map(|r| SummaryCase {
            result: r,
            image: None,
        })
        .collect();
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
    // The failed case's details are folded, with its deciding line.
    assert!(
        page.contains("<details>") && page.contains("<summary>"),
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

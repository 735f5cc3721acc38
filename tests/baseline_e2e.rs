//! End-to-end: boot-time baselines with the real binary, real QEMU and a real guest. A first
//! run writes `results.json`; a second run of the same case, whose milestone comes seconds
//! later because the guest waits for slowly typed input (see `TYPED_SLOWLY`), is compared
//! with it. `--fail-on-regression` is in `verdict_agreement.rs` (every report agrees).

pub mod common;

use common::fixtures::fixture;
use common::{BAREMETAL_CONFIG, BAREMETAL_MACHINE, Scratch, TYPED_SLOWLY, TYPED_USERTESTS, text};

/// The baseline: `prompt` typed at the default pace, results in `base/results.json`.
fn baseline_run(s: &Scratch) {
    let out = s.run_baremetal(
        "prompt",
        &format!("{BAREMETAL_MACHINE}{TYPED_USERTESTS}"),
        &["--out-dir", "base"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
}

fn time<'a>(case: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    case["baseline"]["times"]
        .as_array()
        .expect("times")
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no time '{name}' in {case}"))
}

#[test]
fn a_slower_milestone_is_flagged_and_without_fail_on_regression_still_passes() {
    let s = Scratch::new();
    baseline_run(&s);
    // The same case, slower; and a case the baseline never had.
    s.write(
        "slow.toml",
        &format!("{BAREMETAL_MACHINE}{TYPED_SLOWLY}{TYPED_USERTESTS}"),
    );
    s.write("hello.toml", BAREMETAL_CONFIG);
    let suite = format!(
        "[[case]]\nname = \"prompt\"\nkernel = \"{}\"\nqemu-config = \"slow.toml\"\n\
         [[case]]\nname = \"fresh\"\nkernel = \"{}\"\nqemu-config = \"hello.toml\"\n",
        fixture("aarch64-baremetal/prompt.elf").display(),
        fixture("aarch64-baremetal/hello.elf").display(),
    );
    s.write("suite.toml", &suite);
    let out = s
        .actions_cmd(&[
            "run",
            "--suite",
            "suite.toml",
            "--timeout",
            "60s",
            "--baseline",
            "base/results.json",
            "--junit",
            "true",
        ])
        .env("GITHUB_WORKSPACE", s.path())
        .output()
        .expect("spawn qemu-test");
    common::assert_no_qemu_left(s.path());
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");

    let r = s.results();
    let prompt = &r["cases"][0];
    assert_eq!(prompt["name"], "prompt");
    assert_eq!(prompt["verdict"]["outcome"], "pass", "{prompt}");
    assert_eq!(prompt["baseline"]["status"], "compared", "{prompt}");
    assert_eq!(prompt["baseline"]["regressed"], true, "{prompt}");
    assert_eq!(prompt["baseline"]["file"], "base/results.json");
    let done = time(prompt, "usertests done");
    assert_eq!(done["kind"], "milestone");
    assert_eq!(done["regression"], true, "{done}");
    // At least the 3.6 s the guest waited for the typing, in the delta and the ratio.
    let delta = done["delta"].as_f64().unwrap();
    let (now, was) = (
        done["current"].as_f64().unwrap(),
        done["baseline"].as_f64().unwrap(),
    );
    assert!(now >= 3.6 && delta > 3.0, "{done}");
    assert!((delta - (now - was)).abs() < 1e-5, "{done}");
    assert!(
        (done["ratio"].as_f64().unwrap() - now / was).abs() < 0.01,
        "{done}"
    );
    let boot = time(prompt, "boot");
    assert_eq!(boot["kind"], "boot");
    assert_eq!(boot["regression"], true, "{boot}");
    // The prompt milestone is compared too (whether it regressed depends on the load).
    assert!(time(prompt, "prompt")["baseline"].is_number(), "{prompt}");

    let fresh = &r["cases"][1];
    assert_eq!(fresh["verdict"]["outcome"], "pass", "{fresh}");
    assert_eq!(fresh["baseline"]["status"], "new", "{fresh}");
    assert_eq!(fresh["baseline"]["regressed"], false, "{fresh}");

    // The terminal: the comparison under the case line, the regression flagged.
    assert!(
        stderr.contains("  baseline base/results.json (regression: more than +20% and +500ms):"),
        "{stderr}"
    );
    let flagged = stderr
        .lines()
        .find(|l| l.starts_with("    milestone 'usertests done'  "))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(flagged.ends_with("REGRESSION"), "{flagged}");
    assert!(
        stderr.contains("  baseline: new (no case of this name in base/results.json)"),
        "{stderr}"
    );
    // Actions: a warning annotation (the case still passes), the summary's table, outputs.
    let warning = stdout
        .lines()
        .find(|l| l.starts_with("::warning") && l.contains("boot time regressed"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(warning.contains("milestone 'usertests done'"), "{warning}");
    let summary = std::fs::read_to_string(s.path().join("summary.md")).unwrap();
    assert!(
        summary.contains("### Boot times against the baseline\n\n1 of 2 cases regressed"),
        "{summary}"
    );
    let row = summary
        .lines()
        .find(|l| l.starts_with("| prompt | milestone &#39;usertests done&#39; |"))
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(row.ends_with("| 🔺 regression |"), "{row}");
    assert!(
        summary.contains("| fresh | – | – | new | – | – | 🆕 |"),
        "{summary}"
    );
    let outputs = std::fs::read_to_string(s.path().join("outputs.txt")).unwrap();
    assert!(outputs.contains("verdict=pass"), "{outputs}");
    let xml = std::fs::read_to_string(s.out().join("junit.xml")).unwrap();
    assert!(!xml.contains("<failure"), "{xml}");
}

#[test]
fn a_missing_baseline_is_a_warning_and_the_run_passes() {
    let s = Scratch::new();
    let out = s.run_baremetal(
        "hello",
        BAREMETAL_CONFIG,
        &["--baseline", "nowhere/results.json", "--fail-on-regression"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let expected = format!(
        "warning: baseline {}: cannot read baseline",
        s.path().join("nowhere/results.json").display()
    );
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&expected))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("No such file or directory"), "{line}");
    assert!(
        line.ends_with("boot times are not compared in this run"),
        "{line}"
    );
    let case = &s.results()["cases"][0];
    assert_eq!(case["verdict"]["outcome"], "pass");
    assert!(case.get("baseline").is_none(), "{case}");
}

#[test]
fn a_bad_threshold_is_a_usage_error_before_anything_runs() {
    let s = Scratch::new();
    let out = s.run(&["run", "--kernel", "k", "--regression-threshold", "20%,30%"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("invalid regression threshold '20%,30%': two percentages"),
        "{stderr}"
    );
    assert!(!s.out().exists(), "nothing written: {:?}", s.tree());
}

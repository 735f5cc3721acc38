//! Check runs against a mock GitHub API (wiremock on 127.0.0.1): the exact requests (paths,
//! bodies, annotation batches) and how API failures turn into warnings; and the real binary
//! booting a real guest publishes its check run and survives a read-only token.

pub mod common;

use std::path::PathBuf;
use std::time::Duration;

use qemu_test_action::console::PatternKind;
use qemu_test_action::report::CaseResult;
use qemu_test_action::report::gha::checks::{
    self, CheckRunReport, ChecksConfig, OUTPUT_LIMIT, READ_ONLY_WARNING,
};
use qemu_test_action::report::gha::commands::{Annotation, Level};
use qemu_test_action::verdict::{Outcome, Verdict};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const RUNS: &str = "/repos/o/r/check-runs";

fn config(server: &MockServer) -> ChecksConfig {
    ChecksConfig {
        token: "t0k".into(),
        api_url: server.uri(),
        repository: "o/r".into(),
        head_sha: "0123abc".into(),
        check_name: "qemu-test".into(),
        details_url: Some("https://github.com/o/r/actions/runs/9".into()),
        workspace: Some(PathBuf::from("/ws")),
    }
}

/// What GitHub answers to a create or update: enough for octocrab's `CheckRun`.
fn check_run(id: u64) -> Value {
    json!({
        "id": id, "node_id": "CR_x", "head_sha": "0123abc", "url": "http://x", "html_url": null,
        "details_url": null, "conclusion": null, "started_at": null, "completed_at": null,
        "name": "n", "pull_requests": [],
        "output": {"title": null, "summary": null, "text": null, "annotations_count": 0,
                   "annotations_url": "http://x"}
    })
}

fn passed(name: &str) -> CaseResult {
    CaseResult::builder(name, Outcome::Pass, "success pattern matched")
        .duration(Duration::from_secs(2))
        .build()
}

fn failed(name: &str, tail: Vec<String>) -> CaseResult {
    CaseResult::builder(name, Outcome::Fail, "fail pattern 'panic' matched")
        .decided_by(
            PatternKind::Fail,
            "panic",
            42,
            "kernel panic!",
            Duration::from_secs(1),
        )
        .pattern_at("/ws/configs/q.toml", 7, 3)
        .duration(Duration::from_secs(3))
        .console_lines(tail.len() as u64)
        .tail(tail)
        .build()
}

async fn mount_created(server: &MockServer, id: u64) {
    Mock::given(method("POST"))
        .and(path(RUNS))
        .and(header("authorization", "Bearer t0k"))
        .respond_with(ResponseTemplate::new(201).set_body_json(check_run(id)))
        .mount(server)
        .await;
}

async fn requests(server: &MockServer) -> Vec<(String, String, Value)> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r: &Request| {
            let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
            (r.method.to_string(), r.url.path().to_string(), body)
        })
        .collect()
}

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

#[tokio::test]
async fn one_completed_check_run_per_case() {
    let server = MockServer::start().await;
    mount_created(&server, 7).await;
    let results = [
        passed("boot-ok"),
        failed("boot-bad", vec!["kernel panic!".into()]),
    ];
    let warnings = checks::publish(&config(&server), &results).await.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");

    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 2, "one create per case, no updates");
    let (m, p, ok) = &reqs[0];
    assert_eq!((m.as_str(), p.as_str()), ("POST", RUNS));
    assert_eq!(ok["name"], "qemu-test / boot-ok");
    assert_eq!(ok["head_sha"], "0123abc");
    assert_eq!(ok["status"], "completed");
    assert_eq!(ok["conclusion"], "success");
    assert_eq!(ok["external_id"], "boot-ok");
    assert_eq!(ok["details_url"], "https://github.com/o/r/actions/runs/9");
    assert_eq!(ok["output"]["title"], "PASS: success pattern matched");
    assert!(ok["output"].get("annotations").is_none());

    let bad = &reqs[1].2;
    assert_eq!(bad["name"], "qemu-test / boot-bad");
    assert_eq!(bad["conclusion"], "failure");
    assert_eq!(bad["output"]["title"], "FAIL: fail pattern 'panic' matched");
    let summary = bad["output"]["summary"].as_str().unwrap();
    assert!(summary.contains("kernel panic!"), "{summary}");
    assert!(
        bad["output"]["text"]
            .as_str()
            .unwrap()
            .contains("```text\nkernel panic!\n```")
    );
    let notes = bad["output"]["annotations"].as_array().unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["path"], "configs/q.toml");
    assert_eq!(notes[0]["start_line"], 7);
    assert_eq!(notes[0]["end_line"], 7);
    assert_eq!(notes[0]["annotation_level"], "failure");
    assert!(
        notes[0]["message"]
            .as_str()
            .unwrap()
            .contains("console line 42")
    );
}

#[tokio::test]
async fn conclusions_cover_every_outcome() {
    let server = MockServer::start().await;
    mount_created(&server, 1).await;
    let outcomes = [
        (Outcome::Timeout, "timed_out"),
        (Outcome::Skipped, "skipped"),
        (Outcome::Cancelled, "cancelled"),
        (Outcome::Error, "failure"),
    ];
    let results: Vec<CaseResult> = outcomes
        .iter()
        .map(|(o, _)| CaseResult::without_boot(o.name(), Verdict::new(*o, "why"), Duration::ZERO))
        .collect();
    checks::publish(&config(&server), &results).await.unwrap();
    let reqs = requests(&server).await;
    let got: Vec<&str> = reqs
        .iter()
        .map(|r| r.2["conclusion"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = outcomes.iter().map(|(_, c)| *c).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn annotations_go_in_batches_of_fifty() {
    let server = MockServer::start().await;
    mount_created(&server, 77).await;
    Mock::given(method("PATCH"))
        .and(path(format!("{RUNS}/77")))
        .respond_with(ResponseTemplate::new(200).set_body_json(check_run(77)))
        .mount(&server)
        .await;
    let cfg = config(&server);
    let mut run = CheckRunReport::for_case(&cfg, &failed("many", vec![]));
    run.content.annotations = (0..120)
        .map(|i| Annotation::new(Level::Warning, format!("a{i}")).at("configs/q.toml", i + 1, 1))
        .collect();
    let warnings = checks::publish_runs(&cfg, &[run]).await.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");

    let reqs = requests(&server).await;
    let shape: Vec<(&str, &str, usize)> = reqs
        .iter()
        .map(|(m, p, b)| {
            let n = b["output"]["annotations"].as_array().map_or(0, Vec::len);
            (m.as_str(), p.as_str(), n)
        })
        .collect();
    let patch = format!("{RUNS}/77");
    assert_eq!(
        shape,
        [
            ("POST", RUNS, 50),
            ("PATCH", patch.as_str(), 50),
            ("PATCH", patch.as_str(), 20)
        ]
    );
    let messages: Vec<String> = reqs
        .iter()
        .flat_map(|r| {
            r.2["output"]["annotations"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|a| a["message"].as_str().unwrap_or_default().to_string())
        .collect();
    let want: Vec<String> = (0..120).map(|i| format!("a{i}")).collect();
    assert_eq!(messages, want, "every annotation once, in order");
    for (_, _, body) in &reqs[1..] {
        assert_eq!(body["output"]["title"], reqs[0].2["output"]["title"]);
        assert!(body.get("conclusion").is_none(), "updates only append");
    }
}

#[tokio::test]
async fn read_only_token_is_a_warning_and_stops_further_attempts() {
    for (status, message) in [
        (403, "Resource not accessible by integration"),
        (404, "Not Found"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(RUNS))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({
                "message": message,
                "documentation_url": "https://docs.github.com/rest/checks/runs#create-a-check-run"
            })))
            .mount(&server)
            .await;
        let results = [passed("a"), passed("b"), passed("c")];
        let warnings = checks::publish(&config(&server), &results).await.unwrap();
        assert_eq!(warnings[0], READ_ONLY_WARNING, "HTTP {status}");
        assert_eq!(warnings[1], "2 more check runs not created");
        assert_eq!(
            requests(&server).await.len(),
            1,
            "HTTP {status}: no retry, no second case"
        );
    }
}

#[tokio::test]
async fn server_error_is_a_warning_with_status_and_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(RUNS))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"message": "Server Error"})))
        .mount(&server)
        .await;
    let warnings = checks::publish(&config(&server), &[passed("a")])
        .await
        .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("'qemu-test / a'"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("HTTP 500: Server Error"),
        "{}",
        warnings[0]
    );
    assert_eq!(
        requests(&server).await.len(),
        3,
        "two retries, then give up"
    );
}

#[tokio::test]
async fn a_rejected_run_does_not_stop_the_others() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(RUNS))
        .respond_with(
            ResponseTemplate::new(422).set_body_json(json!({"message": "Validation Failed"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    mount_created(&server, 2).await;
    let warnings = checks::publish(&config(&server), &[passed("a"), passed("b")])
        .await
        .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("HTTP 422: Validation Failed"));
    let names: Vec<String> = requests(&server)
        .await
        .iter()
        .map(|r| r.2["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, ["qemu-test / a", "qemu-test / b"]);
}

#[tokio::test]
async fn unreachable_api_is_a_warning() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let server = MockServer::start().await;
    let mut cfg = config(&server);
    cfg.api_url = format!("http://127.0.0.1:{port}");
    let warnings = checks::publish(&cfg, &[passed("a"), passed("b")])
        .await
        .unwrap();
    assert!(
        warnings[0].starts_with("check run 'qemu-test / a' not created: "),
        "{warnings:?}"
    );
    assert_eq!(warnings[1], "1 more check runs not created");
    assert!(
        warnings[0].contains("Connection refused"),
        "the cause is named: {warnings:?}"
    );
}

#[tokio::test]
async fn huge_console_tail_stays_within_the_output_limits() {
    let server = MockServer::start().await;
    mount_created(&server, 3).await;
    let tail: Vec<String> = (0..20_000)
        .map(|i| format!("{i} ünïcödé {}", "x".repeat(200)))
        .collect();
    let mut r = failed("big", tail);
    r.verdict.reason = format!("fail pattern matched: {}", "é".repeat(100_000));
    let warnings = checks::publish(&config(&server), &[r]).await.unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    let reqs = requests(&server).await;
    let output = &reqs[0].2["output"];
    assert!(chars(&output["summary"]) <= OUTPUT_LIMIT);
    assert!(chars(&output["text"]) <= OUTPUT_LIMIT);
    assert!(
        chars(&output["summary"]) > 1000,
        "the summary is cut, not dropped"
    );
    let text = output["text"].as_str().unwrap();
    assert!(text.contains("19999 ünïcödé"), "the newest line is kept");
    assert!(text.contains("of 20000 lines"));
    assert!(!output["title"].as_str().unwrap().contains('\n'));
}

#[tokio::test]
async fn bad_configuration_is_an_error_without_requests() {
    let server = MockServer::start().await;
    let mut cfg = config(&server);
    cfg.repository = "no-slash".into();
    let err = checks::publish(&cfg, &[passed("a")]).await.unwrap_err();
    assert!(err.message.contains("GITHUB_REPOSITORY"), "{err}");
    let mut cfg = config(&server);
    cfg.api_url = "http://bad host/".into();
    let err = checks::publish(&cfg, &[passed("a")]).await.unwrap_err();
    assert!(err.message.contains("GITHUB_API_URL"), "{err}");
    assert!(requests(&server).await.is_empty());
}

/// `qemu-test run` in Actions with a token, booting the panicking aarch64 guest.
async fn run_in_actions(server: &MockServer) -> (std::process::Output, common::Scratch) {
    let s = common::Scratch::new();
    let cfg = s.write("qemu.toml", common::BAREMETAL_CONFIG);
    let kernel = common::fixtures::fixture("aarch64-baremetal/panic.elf");
    let mut cmd = s.actions_cmd(&[
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--timeout",
        "30s",
    ]);
    cmd.arg("--qemu-config")
        .arg(&cfg)
        .env("GITHUB_API_URL", server.uri())
        .env("GITHUB_REPOSITORY", "o/r")
        .env("GITHUB_SHA", "0123abc")
        .env_remove("GITHUB_EVENT_PATH")
        .env("INPUT_GITHUB_TOKEN", "t0k")
        .env("INPUT_CHECK_NAME", "boot");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("spawn qemu-test"))
        .await
        .unwrap();
    common::assert_no_qemu_left(s.path());
    (out, s)
}

#[tokio::test]
async fn a_real_failing_boot_publishes_its_check_run() {
    let server = MockServer::start().await;
    mount_created(&server, 5).await;
    let (out, _s) = run_in_actions(&server).await;
    let (stdout, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stdout.contains("check runs not created"), "{stdout}");
    let reqs = requests(&server).await;
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let body = &reqs[0].2;
    assert_eq!(body["name"], "boot / panic");
    assert_eq!(body["conclusion"], "failure");
    assert!(
        body["output"]["text"]
            .as_str()
            .unwrap()
            .contains("panicked at")
    );
    let note = &body["output"]["annotations"][0];
    assert_eq!(note["path"], "qemu.toml", "relative to GITHUB_WORKSPACE");
    assert_eq!(note["start_line"], 4, "the fail_regex line");
}

#[tokio::test]
async fn a_read_only_token_warns_and_keeps_the_verdict() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(RUNS))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "message": "Resource not accessible by integration"
        })))
        .mount(&server)
        .await;
    let (out, s) = run_in_actions(&server).await;
    let (stdout, stderr) = common::text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "still the guest's verdict: {stderr}"
    );
    let warning = format!("::warning title=qemu-test check runs::{READ_ONLY_WARNING}");
    assert!(stdout.lines().any(|l| l == warning), "{stdout}");
    let summary = std::fs::read_to_string(s.path().join("summary.md")).unwrap();
    assert!(summary.contains("1 fail"), "{summary}");
}

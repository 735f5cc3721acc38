//! Workflow-command injection: whatever the guest prints, the Actions runner must not obey it.
//!
//! The captured stdout of a `GithubReporter` is parsed the way the runner parses a step's
//! output (actions/runner `ActionCommandManager` + `ActionCommand.TryParseV2/TryParse`): lines
//! end at CR, LF or CRLF; a line whose trimmed start is `::name …::data` (or that contains
//! `##[name …]data`) is a command if `name` is a known command; after `::stop-commands::T`
//! nothing is processed until a command named `T`.

pub mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::capture::Captured;
use common::fixtures::fixture;
use common::{Scratch, text};
use qemu_test_action::console::PatternKind;
use qemu_test_action::error::{Error, Location};
use qemu_test_action::qemu::QemuCommand;
use qemu_test_action::report::gha::commands::{Annotation, Level};
use qemu_test_action::report::gha::{GithubEnv, GithubReporter};
use qemu_test_action::report::{self, CaseResult, Event, Reporter, Stage};
use qemu_test_action::verdict::{Outcome, Verdict};

/// A command the runner processed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Processed {
    name: String,
    props: Vec<(String, String)>,
    data: String,
}

const KNOWN: [&str; 15] = [
    "error",
    "warning",
    "notice",
    "debug",
    "group",
    "endgroup",
    "add-mask",
    "echo",
    "set-output",
    "save-state",
    "set-env",
    "add-path",
    "add-matcher",
    "remove-matcher",
    "stop-commands",
];

/// The runner's command processing, reduced to what decides whether a command is obeyed.
#[derive(Default)]
struct RunnerModel {
    stop_token: Option<String>,
    processed: Vec<Processed>,
    tokens_seen: Vec<String>,
    /// The open log group (`::group::` … `::endgroup::`), as the UI folds the log.
    group: Option<String>,
    /// Every line the log shows as text (not a processed command), with its group.
    shown: Vec<(Option<String>, String)>,
}

impl RunnerModel {
    fn run(output: &str) -> Self {
        let mut model = RunnerModel::default();
        for line in output.split("\r\n").flat_map(|l| l.split(['\r', '\n'])) {
            model.line(line);
        }
        model
    }

    fn registered(&self, name: &str) -> bool {
        KNOWN.iter().any(|k| k.eq_ignore_ascii_case(name))
            || self
                .stop_token
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(name))
    }

    fn line(&mut self, line: &str) {
        let Some(cmd) = self.parse_v2(line).or_else(|| self.parse_v1(line)) else {
            self.shown.push((self.group.clone(), line.to_string()));
            return;
        };
        if let Some(token) = &self.stop_token {
            if cmd.name.eq_ignore_ascii_case(token) {
                self.stop_token = None;
            } else {
                self.shown.push((self.group.clone(), line.to_string()));
            }
            return;
        }
        if cmd.name.eq_ignore_ascii_case("group") {
            self.group = Some(cmd.data.clone());
        } else if cmd.name.eq_ignore_ascii_case("endgroup") {
            self.group = None;
        }
        if cmd.name.eq_ignore_ascii_case("stop-commands") {
            self.tokens_seen.push(cmd.data.clone());
            self.stop_token = Some(cmd.data);
            return;
        }
        self.processed.push(cmd);
    }

    fn parse_v2(&self, line: &str) -> Option<Processed> {
        let msg = line.trim_start().strip_prefix("::")?;
        let end = msg.find("::")?;
        let (info, data) = (&msg[..end], &msg[end + 2..]);
        let (name, props) = info.split_once(' ').unwrap_or((info, ""));
        if !self.registered(name) {
            return None;
        }
        let props = props
            .trim()
            .split(',')
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), unescape_property(v)))
            .collect();
        Some(Processed {
            name: name.to_string(),
            props,
            data: unescape_data(data),
        })
    }

    fn parse_v1(&self, line: &str) -> Option<Processed> {
        let start = line.find("##[")? + 3;
        let end = start + line[start..].find(']')?;
        let info = &line[start..end];
        let name = info.split(' ').next().unwrap_or_default();
        self.registered(name).then(|| Processed {
            name: name.to_string(),
            props: Vec::new(),
            data: line[end + 1..].to_string(),
        })
    }
}

fn unescape_data(s: &str) -> String {
    s.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%25", "%")
}

fn unescape_property(s: &str) -> String {
    s.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%3A", ":")
        .replace("%2C", ",")
        .replace("%25", "%")
}

fn prop<'a>(cmd: &'a Processed, key: &str) -> Option<&'a str> {
    cmd.props
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Guest output full of commands, split at awkward places.
const GUEST_CHUNKS: [&[u8]; 8] = [
    b"Booting kernel\n::err",
    b"or::x\n::add-mask::y\n::stop-com",
    b"mands::z\n::endgroup::\n::warning file=a::b\n",
    b"##[error]legacy\n   ::error::indented\r::error::after-cr\r\n",
    b"::set-output name=verdict::pass\n::echo::on\n\xff\xfe::error::after-bad-utf8\n",
    b"::z::\n::error::after-own-token\n",
    b"login: ",
    b"::notice::not-at-line-start\n::group::fake",
];

const GUEST_DATA: [&str; 9] = [
    "x",
    "y",
    "b",
    "legacy",
    "indented",
    "after-cr",
    "after-own-token",
    "fake",
    "pass",
];

/// A case failed by a pattern whose texts carry workflow commands.
fn failed(case: &str) -> CaseResult {
    CaseResult::builder(
        case,
        Outcome::Fail,
        "fail pattern 'panicked' matched: ::error::evil",
    )
    .decided_by(
        PatternKind::Fail,
        "panicked",
        3,
        "panicked at ::add-mask::z",
        Duration::from_secs(1),
    )
    .pattern_at("configs/qemu.toml", 12, 5)
    .duration(Duration::from_secs(2))
    .build()
}

fn run_scenario(out: &Captured) {
    let mut rep = GithubReporter::new(Box::new(out.clone()), GithubEnv::default());
    let case = "guest";
    let cases = [case.to_string()];
    rep.event(&Event::RunStarted { cases: &cases });
    rep.event(&Event::CaseStarted { case });
    rep.event(&Event::StageStarted {
        case,
        stage: Stage::Boot,
    });
    let command = QemuCommand {
        program: "qemu-system-aarch64".into(),
        args: vec!["-nographic".into(), "\n::error::from-arg".into()],
        notes: vec![],
        host_gaps: vec![],
        esp: None,
    };
    rep.event(&Event::QemuStarting {
        case,
        command: &command,
    });
    for (i, chunk) in GUEST_CHUNKS.iter().enumerate() {
        rep.event(&Event::Console { case, bytes: chunk });
        if i == 6 {
            let message = "KVM requested but not usable; using TCG";
            rep.event(&Event::Note {
                case: Some(case),
                level: report::Level::Warning,
                message,
                location: None,
            });
        }
    }
    rep.event(&Event::QemuStderr {
        case,
        bytes: b"::error::from-stderr\n",
    });
    let result = failed(case);
    let info = result.verdict.decided_by.clone().unwrap();
    rep.event(&Event::Decided { case, info: &info });
    rep.event(&Event::CaseFinished { result: &result });
    let results = [result];
    rep.event(&Event::RunFinished {
        results: &results,
        exit_code: 1,
        outcome: qemu_test_action::verdict::worst(results.iter().map(|r| r.verdict.outcome)),
    });
    rep.finish().unwrap();
}

#[test]
fn no_command_from_the_guest_is_processed() {
    let out = Captured::default();
    run_scenario(&out);
    let text = out.text();
    let runner = RunnerModel::run(&text);

    assert!(
        runner.stop_token.is_none(),
        "command processing left stopped:\n{text}"
    );
    for cmd in &runner.processed {
        for guest in GUEST_DATA {
            assert_ne!(cmd.data, guest, "guest command obeyed: {cmd:?}\n{text}");
        }
        assert!(
            !cmd.data.contains("from-"),
            "guest command obeyed: {cmd:?}\n{text}"
        );
        assert_ne!(cmd.name, "add-mask", "guest mask obeyed:\n{text}");
    }
    let names: Vec<&str> = runner.processed.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["group", "warning", "endgroup", "error"], "\n{text}");
    assert_eq!(runner.processed[0].data, "Boot guest");
    assert_eq!(
        runner.processed[1].data,
        "KVM requested but not usable; using TCG"
    );

    let err = &runner.processed[3];
    assert_eq!(prop(err, "file"), Some("configs/qemu.toml"));
    assert_eq!(prop(err, "line"), Some("12"));
    assert_eq!(prop(err, "col"), Some("5"));
    assert_eq!(prop(err, "title"), Some("qemu-test: guest"));
    assert_eq!(
        err.data,
        "guest fail: fail pattern 'panicked' matched: ::error::evil\nconsole line 3: panicked at ::add-mask::z"
    );

    // Every guest line still reaches the log, just not as a command.
    for shown in [
        "::error::x",
        "::add-mask::y",
        "::endgroup::",
        "::warning file=a::b",
        "login: ",
    ] {
        assert!(
            text.contains(shown),
            "{shown:?} missing from the log:\n{text}"
        );
    }
    // A fresh unguessable token per window: the Note splits the echo in two.
    assert_eq!(runner.tokens_seen.len(), 2, "\n{text}");
    let mut tokens = runner.tokens_seen.clone();
    tokens.dedup();
    assert_eq!(tokens.len(), runner.tokens_seen.len());
    assert!(
        tokens
            .iter()
            .all(|t| t.len() >= 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
    );
}

#[test]
fn qemu_command_line_is_not_a_command() {
    let out = Captured::default();
    run_scenario(&out);
    let text = out.text();
    let line = text
        .lines()
        .find(|l| l.starts_with("$ qemu-system-aarch64"))
        .unwrap();
    assert_eq!(
        line,
        "$ qemu-system-aarch64 -nographic ' ::error::from-arg'"
    );
}

#[test]
fn config_error_is_annotated_on_its_line_with_escaping() {
    let out = Captured::default();
    let mut rep = GithubReporter::new(Box::new(out.clone()), GithubEnv::default());
    let error = Error::config("bad value 100%\r\nfor key: a,b")
        .at(Location {
            path: PathBuf::from("configs/we,ird:name.toml"),
            line: 3,
            column: 9,
        })
        .help("use 1, 2: or 3");
    rep.event(&Event::Failed {
        case: None,
        error: &error,
    });
    rep.finish().unwrap();
    let text = out.text();
    assert_eq!(
        text.lines().count(),
        1,
        "one line whatever the message holds:\n{text}"
    );
    let runner = RunnerModel::run(&text);
    let cmd = &runner.processed[0];
    assert_eq!(cmd.name, "error");
    assert_eq!(
        cmd.data,
        "bad value 100%\r\nfor key: a,b\nhelp: use 1, 2: or 3"
    );
    assert_eq!(prop(cmd, "file"), Some("configs/we,ird:name.toml"));
    assert_eq!(prop(cmd, "line"), Some("3"));
    assert_eq!(prop(cmd, "title"), Some("qemu-test"));
}

#[test]
fn annotations_round_trip_through_the_runner_parser() {
    let message = "50% done\r\nnext: a,b::c %0A literal";
    let mut a = Annotation::new(Level::Warning, message)
        .at("dir/a:b,c%.toml", 1, 2)
        .title("t: x, y\n");
    a.end_line = Some(4);
    let runner = RunnerModel::run(&format!("{a}\n"));
    let cmd = &runner.processed[0];
    assert_eq!(cmd.name, "warning");
    assert_eq!(cmd.data, message);
    assert_eq!(prop(cmd, "file"), Some("dir/a:b,c%.toml"));
    assert_eq!(prop(cmd, "title"), Some("t: x, y\n"));
    assert_eq!(prop(cmd, "endLine"), Some("4"));
}

#[test]
fn only_ten_errors_per_level_reach_the_runner() {
    let out = Captured::default();
    let mut rep = GithubReporter::new(Box::new(out.clone()), GithubEnv::default());
    let results: Vec<CaseResult> = (0..13)
        .map(|i| {
            CaseResult::without_boot(
                format!("c{i}"),
                Verdict::new(Outcome::Timeout, "late"),
                Duration::ZERO,
            )
        })
        .collect();
    for result in &results {
        rep.event(&Event::CaseFinished { result });
    }
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let outputs = dir.path().join("outputs");
    let env = GithubEnv {
        step_summary: Some(summary.clone()),
        output: Some(outputs.clone()),
        workspace: None,
        blob_url: None,
        artifact: None,
    };
    let mut rep2 = GithubReporter::new(Box::new(out.clone()), env);
    for result in &results {
        rep2.event(&Event::CaseFinished { result });
    }
    rep2.event(&Event::RunFinished {
        results: &results,
        exit_code: 1,
        outcome: qemu_test_action::verdict::worst(results.iter().map(|r| r.verdict.outcome)),
    });
    rep2.finish().unwrap();
    rep.finish().unwrap();

    let runner = RunnerModel::run(&out.text());
    assert_eq!(
        runner
            .processed
            .iter()
            .filter(|c| c.name == "error")
            .count(),
        20
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("### 3 more annotations not shown"), "{md}");
    assert!(md.contains("c12 timeout: late"), "{md}");
    let outs = std::fs::read_to_string(&outputs).unwrap();
    assert!(outs.contains("verdict=timeout\npassed=false\n"), "{outs}");
}

/// The real binary, in Actions mode, booting the real `injection` guest: its console prints
/// workflow commands (`::error::`, `::add-mask::`, `::stop-commands::`, `::endgroup::`, …).
/// Parsed as the runner parses the step's stdout, none of them is obeyed; ours are.
#[test]
fn a_real_guest_printing_workflow_commands_issues_none() {
    let s = Scratch::new();
    let (code, stdout) = run_in_actions(&s, &guest_args(&s, "injection"));
    assert_eq!(code, Some(0), "{stdout}");
    // The guest's lines reached the log (inside the window) ...
    for shown in [
        "::error::forged by guest",
        "::add-mask::Hello",
        "::stop-commands::guesttoken",
    ] {
        assert!(stdout.contains(shown), "{shown:?} not echoed:\n{stdout}");
    }
    // ... but the runner obeys only our own commands.
    let runner = RunnerModel::run(&stdout);
    for cmd in &runner.processed {
        let text = format!("{} {}", cmd.name, cmd.data);
        assert!(
            !text.contains("forged")
                && !text.contains("guest group")
                && cmd.name != "add-mask"
                && cmd.name != "set-output",
            "guest command obeyed: {cmd:?}\n{stdout}"
        );
    }
    assert!(
        runner.processed.iter().any(|c| c.name == "group"),
        "{stdout}"
    );
    assert!(
        !runner.tokens_seen.iter().any(|t| t == "guesttoken"),
        "{stdout}"
    );
    assert!(
        runner.stop_token.is_none(),
        "a window was left open:\n{stdout}"
    );
    let outputs = std::fs::read_to_string(s.path().join("outputs.txt")).unwrap();
    assert!(outputs.contains("verdict=pass"), "{outputs}");
}

/// A config error in Actions: exit 2, an error annotation at the config line (path relative to
/// the workspace), and `verdict=error` in the outputs, though nothing ran.
#[test]
fn a_config_error_is_annotated_at_its_line_in_actions() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "args = [\"-m\", 128]\n").unwrap();
    let output = dir.path().join("output.txt");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qemu-test"))
        .args(["run", "--kernel", "k.elf", "--qemu-config", "bad.toml"])
        .current_dir(dir.path())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", dir.path())
        .env("GITHUB_OUTPUT", &output)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let runner = RunnerModel::run(&stdout);
    let error = runner
        .processed
        .iter()
        .find(|c| c.name == "error")
        .unwrap_or_else(|| panic!("no error annotation:\n{stdout}"));
    assert_eq!(prop(error, "file"), Some("bad.toml"));
    assert_eq!(prop(error, "line"), Some("1"));
    assert!(
        error.data.contains("must be an array of strings"),
        "{error:?}"
    );
    assert!(
        std::fs::read_to_string(&output)
            .unwrap()
            .contains("verdict=error")
    );
}

/// The QEMU config of the e2e tests below: the bare-metal fixtures on `virt`.
const VIRT_CONFIG: &str = r#"args = ["-nographic", "-cpu", "cortex-a72", "-machine", "virt", "-m", "128M"]
success_regex = ["Hello, world!"]
fail_regex = ["panicked at"]
"#;

/// `qemu-test run <args>` on a real guest as a step of Actions runs it in `s`; returns (exit
/// code, stdout).
fn run_in_actions(s: &Scratch, args: &[impl AsRef<str>]) -> (Option<i32>, String) {
    let args: Vec<&str> = ["run"]
        .into_iter()
        .chain(args.iter().map(AsRef::as_ref))
        .collect();
    let out = s
        .actions_cmd(&args)
        .env_remove("INPUT_JOBS")
        .output()
        .unwrap();
    common::assert_no_qemu_left(s.path());
    (out.status.code(), text(&out).0)
}

/// `--kernel <the aarch64 fixture variant> --qemu-config <VIRT_CONFIG written into s>`.
fn guest_args(s: &Scratch, variant: &str) -> Vec<String> {
    let cfg = s.write("qemu.toml", VIRT_CONFIG);
    let kernel = fixture(&format!("aarch64-baremetal/{variant}.elf"));
    [
        "--kernel",
        kernel.to_str().unwrap(),
        "--qemu-config",
        cfg.to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}

/// Two cases at once in Actions (`--jobs 2`): `late` prints its fail text 200 ms after its
/// first line, while `long` (which outlives it) is already booting. Parsed as the runner folds
/// the log, every console line sits in its own case's "Boot" group.
#[test]
fn parallel_cases_in_actions_show_each_console_in_its_own_group() {
    let s = Scratch::new();
    let suite = s.write(
        "suite.toml",
        &format!(
            r#"[defaults]
qemu-config = "qemu.toml"
[[case]]
name = "late"
kernel = "{}"
[[case]]
name = "long"
kernel = "{}"
success-regex = ["never printed"]
timeout = "3s"
"#,
            fixture("aarch64-baremetal/late_fail.elf").display(),
            fixture("aarch64-baremetal/hello_noexit.elf").display()
        ),
    );
    s.write("qemu.toml", VIRT_CONFIG);
    let (code, stdout) = run_in_actions(
        &s,
        &[
            "--suite",
            suite.to_str().unwrap(),
            "--jobs",
            "2",
            "--workspace",
            s.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(1), "{stdout}");
    let runner = RunnerModel::run(&stdout);
    assert!(
        runner.stop_token.is_none(),
        "a window was left open:\n{stdout}"
    );
    let group_of = |needle: &str| -> Vec<Option<String>> {
        runner
            .shown
            .iter()
            .filter(|(_, l)| l.contains(needle))
            .map(|(g, _)| g.clone())
            .collect()
    };
    let late = Some("Boot late".to_string());
    let long = Some("Boot long".to_string());
    // late_fail prints "Hello, world! " and, 200 ms later, the panic on the same line (QEMU is
    // stopped as soon as 'panicked at' matches, so the rest of that line may never be printed).
    assert_eq!(
        group_of("panicked at"),
        std::slice::from_ref(&late),
        "{stdout}"
    );
    let hellos = group_of("Hello, world!");
    assert_eq!(hellos.len(), 2, "{stdout}");
    assert!(hellos.contains(&late) && hellos.contains(&long), "{stdout}");
    // Each case's group is shown once, whole.
    let opened: Vec<&str> = runner
        .processed
        .iter()
        .filter(|c| c.name == "group")
        .map(|c| c.data.as_str())
        .collect();
    assert_eq!(
        opened.iter().filter(|g| **g == "Boot late").count(),
        1,
        "{stdout}"
    );
    assert_eq!(
        opened.iter().filter(|g| **g == "Boot long").count(),
        1,
        "{stdout}"
    );
}

/// `-q` in Actions: the console is logged, not echoed; the verdict is still reported.
#[test]
fn quiet_is_honoured_in_actions() {
    let s = Scratch::new();
    let mut args = guest_args(&s, "hello");
    let (code, loud) = run_in_actions(&s, &args);
    assert_eq!(code, Some(0), "{loud}");
    let shown = |model: &RunnerModel| model.shown.iter().any(|(_, l)| l == "Hello, world!");
    assert!(shown(&RunnerModel::run(&loud)), "{loud}");
    args.push("-q".into());
    let (code, quiet) = run_in_actions(&s, &args);
    assert_eq!(code, Some(0), "{quiet}");
    let runner = RunnerModel::run(&quiet);
    assert!(!shown(&runner), "console echoed with -q:\n{quiet}");
    assert!(
        runner.tokens_seen.is_empty(),
        "a console window was opened:\n{quiet}"
    );
    let log = std::fs::read_to_string(s.out().join("hello.log")).unwrap();
    assert!(log.contains("Hello, world!"), "{log}");
    let outputs = std::fs::read_to_string(s.path().join("outputs.txt")).unwrap();
    assert!(outputs.contains("verdict=pass"), "{outputs}");
}

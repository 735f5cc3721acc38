//! `action.yml` run the way the GitHub runner runs a composite action (see `action_runner`),
//! with this crate's `qemu-test` (QEMU_TEST_BINARY) booting the real demo guests in QEMU, plus
//! static checks of the composite rules and of the action/binary contract in dist/README.md.

mod action_runner;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use action_runner::expr::{Context, StepState, Value, condition_holds, evaluate, interpolate};
use action_runner::{Job, load_action, repo};

fn fixtures() -> PathBuf {
    std::env::var_os("QEMU_TEST_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/fixtures"))
}

fn fixture(rel: &str) -> PathBuf {
    let path = fixtures().join(rel);
    assert!(
        path.is_file(),
        "missing fixture {}: run fixtures/build.sh (or scripts/test.sh)",
        path.display()
    );
    path
}

// ---------------------------------------------------------------------------------------------
// Static checks of action.yml

/// The binary's definition of the inputs: each argument of `qemu-test <path…>` with
/// `env = "INPUT_…"`, by input name, with its default (empty when it has none).
fn binary_inputs(path: &[&str]) -> BTreeMap<String, String> {
    use clap::CommandFactory;
    let mut cmd = qemu_test_action::cli::Cli::command();
    for name in path {
        cmd = cmd
            .find_subcommand(name)
            .unwrap_or_else(|| panic!("no subcommand {name}"))
            .clone();
    }
    cmd.get_arguments()
        .filter_map(|a| {
            let env = a.get_env()?.to_str()?.strip_prefix("INPUT_")?;
            let default: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|d| d.to_string_lossy().into_owned())
                .collect();
            Some((env.to_lowercase().replace('_', "-"), default.join(",")))
        })
        .collect()
}

/// Each input is defined once, in the binary's clap arguments (`qemu-test action …` takes them
/// all): action.yml declares exactly those inputs, with the binary's default where it has one,
/// and every subcommand reads only inputs that action.yml declares.
#[test]
fn action_yml_inputs_are_the_binarys() {
    let (action, _) = load_action();
    let binary = binary_inputs(&["action", "prepare"]);
    let declared: Vec<&String> = action.inputs.keys().collect();
    let known: Vec<&String> = binary.keys().collect();
    assert_eq!(declared, known, "action.yml inputs vs the binary's");
    for (name, default) in &binary {
        if !default.is_empty() {
            assert_eq!(
                action.inputs[name].default.as_deref(),
                Some(default.as_str()),
                "input {name}: action.yml's default differs from the binary's"
            );
        }
    }
    for path in [
        &["run"][..],
        &["matrix"],
        &["action", "run"],
        &["action", "image-cache"],
    ] {
        for name in binary_inputs(path).keys() {
            assert!(
                action.inputs.contains_key(name),
                "`qemu-test {}` reads input {name}, which action.yml does not declare",
                path.join(" ")
            );
        }
    }
}

/// Inputs a suite file can also set (and log-dir, whose default `qemu-test action prepare` and
/// `run` share):
/// an action default would override the suite.
const EMPTY_DEFAULT_INPUTS: [&str; 18] = [
    "build-config",
    "qemu-config",
    "uboot-config",
    "vmconfigs",
    "image",
    "registry",
    "kernel",
    "arch",
    "build-command",
    "artifact",
    "accel",
    "requires",
    "on-unsupported",
    "timeout",
    "success-regex",
    "fail-regex",
    "log-dir",
    "core-dump",
];

const CONTRACT_OUTPUTS: [&str; 8] = [
    "verdict",
    "passed",
    "duration",
    "accel",
    "log",
    "junit",
    "qemu-version",
    "results-json",
];

fn env_name(input: &str) -> String {
    format!("INPUT_{}", input.to_uppercase().replace('-', "_"))
}

#[test]
fn action_yml_follows_the_composite_rules_and_the_contract() {
    let (action, text) = load_action();
    assert!(!action.name.is_empty() && !action.description.is_empty());
    assert_eq!(action.runs.using, "composite");
    assert!(
        !text.contains("action_ref") && !text.contains("action_repository"),
        "nothing may be derived from github.action_ref / action_repository (empty in composites)"
    );
    for step in &action.runs.steps {
        let label = step.label();
        match (&step.run, &step.uses) {
            (Some(run), None) => {
                assert_eq!(step.shell.as_deref(), Some("bash"), "{label}: shell: bash");
                assert!(!run.contains("${{"), "{label}: expression inside run: text");
                assert!(step.with.is_empty(), "{label}: with: on a run step");
            }
            (None, Some(uses)) => {
                assert!(step.shell.is_none(), "{label}: shell on a uses step");
                let allowed = [
                    "actions/cache/restore",
                    "actions/cache/save",
                    "actions/upload-artifact",
                ];
                let (name, _) = uses.split_once('@').unwrap_or((uses, ""));
                assert!(allowed.contains(&name), "{label}: unexpected {uses}");
                assert_eq!(uses, &current_major(name), "{label}");
            }
            _ => panic!("{label}: exactly one of run/uses"),
        }
        for (key, value) in &step.env {
            if let Some(input) = value
                .strip_prefix("${{ inputs.")
                .and_then(|v| v.strip_suffix(" }}"))
            {
                assert_eq!(
                    key,
                    &env_name(input),
                    "{label}: {key} carries inputs.{input}"
                );
            }
            if key.starts_with("INPUT_") {
                assert!(
                    value.starts_with("${{ inputs."),
                    "{label}: {key} must carry an input"
                );
            }
        }
    }
    for (name, input) in &action.inputs {
        assert!(
            !input.description.is_empty(),
            "input {name} needs a description"
        );
        assert_ne!(
            input.required,
            Some(true),
            "required is not enforced by the runner: {name}"
        );
        let reference = format!("inputs.{name} ");
        assert!(text.contains(&reference), "input {name} is never used");
    }
    for key in EMPTY_DEFAULT_INPUTS {
        let input = action
            .inputs
            .get(key)
            .unwrap_or_else(|| panic!("missing input {key}"));
        assert_eq!(
            input.default.as_deref().unwrap_or(""),
            "",
            "input {key} must default to empty so the suite's value wins"
        );
    }
    let run = action
        .runs
        .steps
        .iter()
        .find(|s| s.id.as_deref() == Some("run"))
        .expect("a step with id: run");
    // `qemu-test action run` is `qemu-test run` or `matrix`: it gets every input they read.
    for name in binary_inputs(&["run"])
        .keys()
        .chain(binary_inputs(&["matrix"]).keys())
        .chain(["command".to_string()].iter())
    {
        assert_eq!(
            run.env.get(&env_name(name)).map(String::as_str),
            Some(format!("${{{{ inputs.{name} }}}}").as_str()),
            "the run step must pass input {name} as {}",
            env_name(name)
        );
    }
    for name in CONTRACT_OUTPUTS {
        let out = action
            .outputs
            .get(name)
            .unwrap_or_else(|| panic!("missing output {name}"));
        assert_eq!(out.value, format!("${{{{ steps.run.outputs.{name} }}}}"));
        assert!(!out.description.is_empty());
    }
    let upload = action
        .runs
        .steps
        .iter()
        .find(|s| s.uses.as_deref() == Some("actions/upload-artifact@v7"))
        .expect("an upload-artifact step");
    assert!(
        upload
            .condition
            .as_deref()
            .is_some_and(|c| c.contains("always()")),
        "logs must be uploaded when the run fails"
    );
    let _ = (&action.author, &action.branding);
}

/// The cache key steps read the cases as the run does, so each gets every input that selects
/// the cases or decides what they build or which images they use: a `kernel` or `build-command`
/// input replaces a suite's board-config build, so it changes the build cache key.
#[test]
fn cache_key_steps_get_every_input_that_decides_their_key() {
    let (action, _) = load_action();
    let step = |id: &str| {
        action
            .runs
            .steps
            .iter()
            .find(|s| s.id.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no step {id}"))
    };
    let cases = ["suite", "case", "test-suit", "test-group", "test-case"];
    let build = [
        "cache-build",
        "arch",
        "kernel",
        "build-config",
        "build-command",
        "vmconfigs",
        "log-dir",
    ];
    let images = ["cache-images", "image", "registry"];
    // The step keying qemu-test's own source build runs before the binary exists: install.sh
    // checks cache-build there, and the restore/save steps test only its key.
    assert_eq!(
        step("source-cache")
            .env
            .get(&env_name("cache-build"))
            .map(String::as_str),
        Some("${{ inputs.cache-build }}")
    );
    for id in ["source-restore", "Save the qemu-test build"] {
        let s = action
            .runs
            .steps
            .iter()
            .find(|s| s.id.as_deref() == Some(id) || s.name.as_deref() == Some(id))
            .unwrap_or_else(|| panic!("no step {id}"));
        let condition = s.condition.as_deref().unwrap_or_default();
        assert!(
            condition.contains("steps.source-cache.outputs.key != ''")
                && !condition.contains("inputs."),
            "{id}: {condition}"
        );
    }
    for (id, own) in [("build-cache", &build[..]), ("images", &images[..])] {
        for name in cases.iter().chain(own) {
            assert_eq!(
                step(id).env.get(&env_name(name)).map(String::as_str),
                Some(format!("${{{{ inputs.{name} }}}}").as_str()),
                "step {id} must get input {name}"
            );
        }
    }
}

/// GitHub's own actions at their current majors (checked 2026-12 in their release notes:
/// cache v6.1.0, upload-artifact v7.0.1, download-artifact v8.0.1, checkout v7.0.1).
const CURRENT_MAJORS: [(&str, &str); 4] = [
    ("actions/cache", "v6"),
    ("actions/upload-artifact", "v7"),
    ("actions/download-artifact", "v8"),
    ("actions/checkout", "v7"),
];

/// `name@<current major>` for one of [`CURRENT_MAJORS`] (`actions/cache/save` is actions/cache).
fn current_major(name: &str) -> String {
    let major = CURRENT_MAJORS
        .iter()
        .find(|(a, _)| name == *a || name.starts_with(&format!("{a}/")))
        .map(|(_, m)| *m)
        .unwrap_or_else(|| panic!("{name} is not one of GitHub's actions we use"));
    format!("{name}@{major}")
}

#[test]
fn workflows_and_examples_use_the_current_majors() {
    let mut files = vec![repo().join("action.yml"), repo().join("README.md")];
    for dir in [".github/workflows", "examples/axvisor", "examples/tgoskits"] {
        for e in std::fs::read_dir(repo().join(dir)).unwrap().flatten() {
            if e.path().extension().is_some_and(|x| x == "yml") {
                files.push(e.path());
            }
        }
    }
    let mut seen = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("actions/") {
                let Some((name, rest)) = line[at..].split_once('@') else {
                    continue;
                };
                if name.contains(char::is_whitespace)
                    || !CURRENT_MAJORS.iter().any(|(a, _)| name.starts_with(a))
                {
                    continue;
                }
                let version: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.')
                    .collect();
                seen += 1;
                assert_eq!(
                    format!("{name}@{version}"),
                    current_major(name),
                    "{}:{}",
                    f.display(),
                    n + 1
                );
            }
        }
    }
    assert!(seen > 10, "only {seen} uses found");
}

#[test]
fn expression_evaluator_follows_github_semantics() {
    let inputs = BTreeMap::from([("a".to_string(), "x".to_string())]);
    let steps = BTreeMap::from([(
        "s".to_string(),
        StepState {
            outputs: BTreeMap::from([("k".to_string(), "v".to_string())]),
            outcome: "success".to_string(),
        },
    )]);
    let (github, runner) = (BTreeMap::new(), BTreeMap::new());
    let ctx = Context {
        inputs: &inputs,
        steps: &steps,
        github: &github,
        runner: &runner,
        failed: true,
    };
    assert_eq!(evaluate("inputs.a == 'X'", &ctx), Value::Bool(true));
    assert_eq!(evaluate("steps.s.outputs.k != ''", &ctx), Value::Bool(true));
    assert_eq!(
        evaluate("steps.s.outputs.missing == ''", &ctx),
        Value::Bool(true)
    );
    assert_eq!(evaluate("inputs.b || 'd'", &ctx).text(), "d");
    assert_eq!(evaluate("inputs.a && 'y'", &ctx).text(), "y");
    assert_eq!(evaluate("!(inputs.a == 'x')", &ctx), Value::Bool(false));
    assert_eq!(evaluate("'it''s'", &ctx).text(), "it's");
    assert!(
        !condition_holds(Some("inputs.a == 'x'"), &ctx),
        "implicit success()"
    );
    assert!(condition_holds(Some("always() && inputs.a == 'x'"), &ctx));
    assert_eq!(interpolate("<${{ inputs.a }}>", &ctx), "<x>");
}

// ---------------------------------------------------------------------------------------------
// Running the action

fn binary_env() -> [(&'static str, &'static str); 1] {
    [("QEMU_TEST_BINARY", env!("CARGO_BIN_EXE_qemu-test"))]
}

fn demo_inputs<'a>(kernel: &'a str, config: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("kernel", kernel),
        ("qemu-config", config),
        ("timeout", "60s"),
        ("success-regex", "Hello, world!"),
        ("accel", "tcg"),
        ("log-dir", "out"),
    ]
}

fn workspace_entries(job: &Job) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(job.workspace())
        .expect("read workspace")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn composite_run_boots_the_demo_guest_and_maps_the_outputs() {
    let (action, _) = load_action();
    let kernel = fixture("aarch64-baremetal/hello.elf");
    let config = repo().join("examples/demo/baremetal.toml");
    let (kernel, config) = (kernel.to_string_lossy(), config.to_string_lossy());
    let job = Job::new();
    let run = job.run(&action, &demo_inputs(&kernel, &config), &binary_env());
    let t = run.transcript();

    let install = run.step("install");
    assert_eq!(install.status, Some(0), "{t}");
    assert_eq!(install.outputs["source"], "override", "{t}");
    // A given binary is not built, so there is no build of qemu-test to cache.
    assert_eq!(run.step("source-cache").outputs["key"], "", "{t}");
    assert!(!run.step("source-restore").ran && !run.step("Save the qemu-test build").ran);

    let prepare = run.step("prepare");
    let out_dir = job.workspace().join("out");
    assert_eq!(Path::new(&prepare.outputs["log-dir"]), out_dir, "{t}");
    assert_eq!(
        Path::new(&prepare.outputs["junit"]),
        out_dir.join("junit.xml")
    );
    assert_eq!(prepare.outputs["arches"], "aarch64", "{t}");
    assert_eq!(prepare.outputs["board-only"], "false", "{t}");
    let artifact = &prepare.outputs["artifact-name"];
    assert!(
        artifact.starts_with("qemu-test-hello-action-test-2-"),
        "{artifact}"
    );

    assert_eq!(
        run.step("Prepare the host (QEMU, KVM access)").status,
        Some(0),
        "{t}"
    );
    assert_eq!(
        run.step("images").outputs.get("key").map(String::as_str),
        Some(""),
        "{t}"
    );
    assert!(!run.step("image-cache").ran, "no images, no cache restore");
    assert!(!run.step("images-after").ran);
    assert!(!run.step("Save guest images").ran);

    let step = run.step("run");
    assert_eq!(step.status, Some(0), "the run step must pass:\n{t}");
    let o = &step.outputs;
    assert_eq!(o.get("verdict").map(String::as_str), Some("pass"), "{t}");
    assert_eq!(o["passed"], "true");
    assert_eq!(o["accel"], "tcg");
    assert!(
        o["duration"].parse::<f64>().is_ok_and(|d| d >= 0.0),
        "{o:?}"
    );
    assert!(
        o["qemu-version"].starts_with(|c: char| c.is_ascii_digit()),
        "{o:?}"
    );
    let log = PathBuf::from(&o["log"]);
    assert!(
        log.starts_with(&out_dir),
        "log {} outside the log dir",
        log.display()
    );
    let console = std::fs::read_to_string(&log).expect("console log");
    assert!(console.contains("Hello, world!"), "{console}");
    assert_eq!(Path::new(&o["junit"]), out_dir.join("junit.xml"));
    let junit = std::fs::read_to_string(&o["junit"]).expect("junit file");
    assert!(junit.contains("<testsuites"), "{junit}");
    let results = std::fs::read_to_string(&o["results-json"]).expect("results.json");
    serde_json::from_str::<serde_json::Value>(&results).expect("results.json is JSON");

    for name in CONTRACT_OUTPUTS {
        assert_eq!(run.outputs[name], o[name], "action output {name}");
    }
    assert_eq!(&run.outputs["artifact-name"], artifact);

    let upload = run.step("Upload console logs and JUnit");
    assert!(upload.ran);
    assert_eq!(upload.uses.as_deref(), Some("actions/upload-artifact@v7"));
    assert_eq!(&upload.with["name"], artifact);
    let paths: Vec<PathBuf> = upload.with["path"].lines().map(PathBuf::from).collect();
    assert_eq!(
        paths,
        [
            out_dir.join("*.log"),
            out_dir.join("results.json"),
            out_dir.join("summary.md"),
            out_dir.join("junit.xml")
        ]
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("summary.md")).expect("summary.md"),
        run.summary,
        "the uploaded summary is the step summary"
    );

    assert!(run.summary.contains("hello"), "summary:\n{}", run.summary);
    for s in &run.steps {
        assert!(
            !s.stdout.contains("::error") && !s.stderr.contains("::error"),
            "{}: unexpected error\n{t}",
            s.label
        );
    }
    assert_eq!(workspace_entries(&job), vec!["out".to_string()]);
}

#[test]
fn failing_guest_fails_the_step_and_still_uploads_the_log() {
    let (action, _) = load_action();
    let kernel = fixture("aarch64-baremetal/panic.elf");
    let config = repo().join("examples/demo/baremetal.toml");
    let (kernel, config) = (kernel.to_string_lossy(), config.to_string_lossy());
    let job = Job::new();
    let mut inputs = demo_inputs(&kernel, &config);
    inputs.push(("junit", "false"));
    let run = job.run(&action, &inputs, &https_server_env());
    let t = run.transcript();

    let step = run.step("run");
    assert_eq!(step.status, Some(1), "a failed boot exits 1:\n{t}");
    assert_eq!(
        step.outputs.get("verdict").map(String::as_str),
        Some("fail"),
        "{t}"
    );
    assert_eq!(step.outputs["passed"], "false");
    assert_eq!(run.outputs["verdict"], "fail");
    assert_eq!(run.step("prepare").outputs["junit"], "");
    let upload = run.step("Upload console logs and JUnit");
    assert!(upload.ran, "upload runs under always():\n{t}");
    let out_dir = job.workspace().join("out");
    assert_eq!(
        upload.with["path"],
        format!(
            "{}\n{}\n{}",
            out_dir.join("*.log").display(),
            out_dir.join("results.json").display(),
            out_dir.join("summary.md").display()
        )
    );
    let console = std::fs::read_to_string(&step.outputs["log"]).expect("console log");
    assert!(console.contains("panicked at"), "{console}");
    // The step summary says the deciding line once and points at the artifact uploaded next.
    let summary = &run.summary;
    assert_eq!(
        summary.matches("panicked at src/main.rs:1:1").count(),
        1,
        "{summary}"
    );
    let artifact = &run.step("prepare").outputs["artifact-name"];
    assert!(
        summary.contains(&format!(
            "[{artifact}](https://ghe.example/axvisor/qemu-test-action/actions/runs/4242#artifacts)"
        )),
        "{summary}"
    );
}

/// A board job (`uboot-config`) has no QEMU: the host step (QEMU check/install, KVM access) does
/// not run; the run step goes to the board (here a serial device that is not there, which ends
/// the run as an infrastructure error naming it).
#[test]
fn a_board_job_skips_the_host_step() {
    let (action, _) = load_action();
    let kernel = fixture("aarch64-baremetal/hello.elf");
    let kernel = kernel.to_string_lossy();
    let job = Job::new();
    std::fs::write(
        job.workspace().join("uboot.toml"),
        "serial = \"/dev/ttyNOSUCHBOARD7\"\nsuccess_regex = [\"Hello, world!\"]\n",
    )
    .unwrap();
    let inputs = [
        ("kernel", &*kernel),
        ("uboot-config", "uboot.toml"),
        ("install-qemu", "true"),
        ("log-dir", "out"),
    ];
    let run = job.run(&action, &inputs, &binary_env());
    let t = run.transcript();
    let prepare = run.step("prepare");
    assert_eq!(prepare.status, Some(0), "{t}");
    assert_eq!(prepare.outputs["board-only"], "true", "{t}");
    assert_eq!(prepare.outputs["arches"], "", "{t}");
    assert!(
        t.contains("every case boots on a board through U-Boot (uboot-config)"),
        "{t}"
    );
    assert!(
        !run.step("Prepare the host (QEMU, KVM access)").ran,
        "install-qemu true, yet no QEMU is installed or checked for a board:\n{t}"
    );
    let step = run.step("run");
    assert_eq!(step.status, Some(3), "{t}");
    assert!(
        t.contains("the serial device /dev/ttyNOSUCHBOARD7 does not exist"),
        "{t}"
    );
}

/// The base environment with a server URL of GitHub's shape (the runner model's own is
/// unroutable http, which the summary never links to); still not GitHub.
fn https_server_env() -> Vec<(&'static str, &'static str)> {
    let mut env = binary_env().to_vec();
    env.push(("GITHUB_SERVER_URL", "https://ghe.example"));
    env
}

#[test]
fn no_upload_when_disabled() {
    let (action, _) = load_action();
    let kernel = fixture("aarch64-baremetal/panic.elf");
    let config = repo().join("examples/demo/baremetal.toml");
    let (kernel, config) = (kernel.to_string_lossy(), config.to_string_lossy());
    let job = Job::new();
    let mut inputs = demo_inputs(&kernel, &config);
    inputs.push(("upload-logs", "false"));
    let run = job.run(&action, &inputs, &https_server_env());
    assert_eq!(run.step("prepare").outputs["artifact-name"], "");
    assert!(!run.step("Upload console logs and JUnit").ran);
    // No artifact, no link to one (the failure section is there).
    assert!(run.summary.contains("### ❌"), "{}", run.summary);
    assert!(!run.summary.contains("#artifacts"), "{}", run.summary);
}

#[test]
fn matrix_command_plans_axvisors_suite() {
    let (action, _) = load_action();
    let suite = repo().join("examples/axvisor/suite.toml");
    let suite = suite.to_string_lossy();
    let job = Job::new();
    let run = job.run(
        &action,
        &[("command", "matrix"), ("suite", &suite)],
        &binary_env(),
    );
    let t = run.transcript();
    assert_eq!(run.step("run").status, Some(0), "{t}");
    let matrix: serde_json::Value =
        serde_json::from_str(&run.outputs["matrix"]).expect("matrix output is JSON");
    let include = matrix["include"].as_array().expect("include array");
    let cases: Vec<&str> = include.iter().filter_map(|c| c["case"].as_str()).collect();
    assert_eq!(cases, ["arceos-aarch64", "linux-aarch64", "nimbos-x86_64"]);
    assert_eq!(include[0]["arch"], "aarch64");
    assert_eq!(include[0]["runner"], "ubuntu-latest");
    assert_eq!(include[2]["arch"], "x86_64");
    assert_eq!(
        include[2]["runner"],
        serde_json::json!(["self-hosted", "linux", "intel"])
    );
    for skipped in [
        "Prepare the host (QEMU, KVM access)",
        "images",
        "Upload console logs and JUnit",
    ] {
        assert!(!run.step(skipped).ran, "{skipped} must not run for matrix");
    }

    let one = job.run(
        &action,
        &[
            ("command", "matrix"),
            ("suite", &suite),
            ("case", "nimbos-x86_64"),
        ],
        &binary_env(),
    );
    let matrix: serde_json::Value =
        serde_json::from_str(&one.outputs["matrix"]).expect("matrix output is JSON");
    assert_eq!(
        matrix["include"].as_array().map(Vec::len),
        Some(1),
        "{}",
        one.transcript()
    );
}

/// A Markdown table cell: one line, `|` escaped.
fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// The README's Inputs and Outputs tables are generated from action.yml; this fails when they
/// drift. `QEMU_TEST_BLESS=1 cargo test --test action_composite readme` rewrites them.
#[test]
fn readme_inputs_and_outputs_tables_match_action_yml() {
    let (action, _) = load_action();
    let mut inputs = String::from("| input | default | description |\n|---|---|---|\n");
    for (name, i) in &action.inputs {
        let default = match i.default.as_deref().unwrap_or("") {
            "" => String::new(),
            d => format!("`{d}`"),
        };
        inputs.push_str(&format!(
            "| `{name}` | {default} | {} |\n",
            cell(&i.description)
        ));
    }
    let mut outputs = String::from("| output | description |\n|---|---|\n");
    for (name, o) in &action.outputs {
        outputs.push_str(&format!("| `{name}` | {} |\n", cell(&o.description)));
    }
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let mut want = readme.clone();
    for (tag, table) in [("inputs", &inputs), ("outputs", &outputs)] {
        let (begin, end) = (
            format!("<!-- {tag}:begin -->\n"),
            format!("<!-- {tag}:end -->"),
        );
        let a = want.find(&begin).expect("begin marker") + begin.len();
        let b = want.find(&end).expect("end marker");
        want.replace_range(a..b, table);
    }
    if want != readme && std::env::var_os("QEMU_TEST_BLESS").is_some() {
        std::fs::write(&path, &want).expect("write README.md");
        return;
    }
    assert!(
        want == readme,
        "README.md's Inputs/Outputs tables differ from action.yml; rerun with QEMU_TEST_BLESS=1.\nExpected:\n{inputs}\n{outputs}"
    );
}

// ---------------------------------------------------------------------------------------------
// The build cache between jobs

const CARGO_KERNEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cargo-kernel");

/// A crate outside the workspace that the kernel depends on: like a registry dependency, its
/// sources stay put between jobs while the checkout is fresh each time.
fn dependency(dir: &Path) -> PathBuf {
    let dep = dir.join("warmdep");
    std::fs::create_dir_all(dep.join("src")).unwrap();
    std::fs::write(
        dep.join("Cargo.toml"),
        "[package]\nname = \"warmdep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        dep.join("src/lib.rs"),
        "#![no_std]\npub fn answer() -> u32 { 42 }\n",
    )
    .unwrap();
    dep
}

/// An AxVisor-shaped checkout in the job's workspace: the fixture cargo kernel with its board
/// config, VM config (its guest named `vm_name`) and QEMU config, and a dependency; a fresh copy
/// (fresh mtimes) per job.
fn cargo_workspace(job: &Job, dep: &Path, vm_name: &str) {
    let ws = job.workspace();
    for e in std::fs::read_dir(CARGO_KERNEL).unwrap().flatten() {
        let to = ws.join(e.file_name());
        if e.file_name() == "target" {
            continue;
        }
        if e.path().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(e.path()).unwrap().flatten() {
                std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
            }
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
    let manifest = std::fs::read_to_string(ws.join("Cargo.toml")).unwrap();
    std::fs::write(
        ws.join("Cargo.toml"),
        format!(
            "{manifest}\n[dependencies]\nwarmdep = {{ path = \"{}\" }}\n",
            dep.display()
        ),
    )
    .unwrap();
    std::fs::write(
        ws.join("Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"cargo-kernel\"\nversion = \"0.1.0\"\n\
         dependencies = [\n \"warmdep\",\n]\n\n[[package]]\nname = \"warmdep\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    // The fixture's VM config (vms/guest.toml) and qemu.toml came with the copy.
    let vm = ws.join("vms/guest.toml");
    let text = std::fs::read_to_string(&vm).unwrap();
    let name = "name = \"cargo-kernel-guest\"";
    assert!(text.contains(name), "{text}");
    std::fs::write(&vm, text.replace(name, &format!("name = \"{vm_name}\""))).unwrap();
}

fn build_inputs() -> Vec<(&'static str, &'static str)> {
    vec![
        ("build-config", "board.toml"),
        ("qemu-config", "qemu.toml"),
        ("vmconfigs", "vms/guest.toml"),
        ("arch", "x86_64"),
        ("accel", "tcg"),
        ("timeout", "60s"),
        ("log-dir", "out"),
    ]
}

/// [`binary_env`] plus the rustup and cargo homes (the job's HOME is its own), so the run step's
/// cargo finds this machine's toolchain.
fn toolchain_env() -> Vec<(&'static str, String)> {
    let home = std::env::var("HOME").unwrap_or_default();
    let mut env = vec![(
        "QEMU_TEST_BINARY",
        env!("CARGO_BIN_EXE_qemu-test").to_string(),
    )];
    for (name, fallback) in [
        ("RUSTUP_HOME", format!("{home}/.rustup")),
        ("CARGO_HOME", format!("{home}/.cargo")),
    ] {
        env.push((name, std::env::var(name).unwrap_or(fallback)));
    }
    if let Ok(t) = std::env::var("RUSTUP_TOOLCHAIN") {
        env.push(("RUSTUP_TOOLCHAIN", t));
    }
    env
}

/// The console and build output of the run step (the build is echoed in its own group).
fn run_log(run: &action_runner::ActionRun) -> String {
    let s = run.step("run");
    format!("{}{}", s.stdout, s.stderr)
}

/// Jobs of one repository: a shared actions/cache store and dependency, a fresh checkout each.
struct BuildJobs {
    shared: tempfile::TempDir,
    dep: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl BuildJobs {
    fn new() -> BuildJobs {
        let shared = tempfile::tempdir().unwrap();
        let dep = dependency(shared.path());
        BuildJobs {
            shared,
            dep,
            env: toolchain_env(),
        }
    }

    fn store(&self) -> PathBuf {
        self.shared.path().join("cache")
    }

    /// A new job whose checkout embeds the VM config named `vm_name`.
    fn job(&self, vm_name: &str) -> Job {
        let job = Job::with_cache(&self.store());
        cargo_workspace(&job, &self.dep, vm_name);
        job
    }

    fn run(&self, job: &Job, inputs: &[(&str, &str)]) -> action_runner::ActionRun {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        job.run(&load_action().0, inputs, &env)
    }
}

#[test]
fn the_build_cache_makes_the_next_job_compile_only_the_checkout() {
    let jobs = BuildJobs::new();
    let store = jobs.store();

    // Job 1: nothing cached; it builds everything and saves the target dir under its key.
    let cold = jobs.job("guest-a");
    let run = jobs.run(&cold, &build_inputs());
    let t = run.transcript();
    assert_eq!(run.step("run").status, Some(0), "{t}");
    let key_step = run.step("build-cache");
    let key = key_step.outputs["key"].clone();
    let dir = cold.workspace().join("out/cargo-target");
    assert_eq!(Path::new(&key_step.outputs["dir"]), dir, "{t}");
    assert!(key.starts_with("qemu-test-build-v1-Linux-"), "{t}");
    let restore = run.step("build-restore");
    assert!(
        restore.ran && !restore.outputs.contains_key("cache-hit"),
        "{t}"
    );
    assert_eq!(restore.with["restore-keys"].lines().count(), 3);
    let log = run_log(&run);
    assert!(log.contains("Compiling warmdep"), "{log}");
    assert!(log.contains("Compiling cargo-kernel"), "{log}");
    assert_eq!(run.step("build-after").outputs["filled"], "true", "{t}");
    let save = run.step("Save the build cache");
    assert!(save.ran, "{t}");
    assert_eq!(
        (&save.with["key"], Path::new(&save.with["path"])),
        (&key, dir.as_path())
    );
    assert!(store.join(&key).is_dir());
    // The upload never includes the target dir.
    let upload = run.step("Upload console logs and JUnit");
    assert!(
        upload.with["path"]
            .lines()
            .all(|p| !p.contains("cargo-target")),
        "{}",
        upload.with["path"]
    );

    // Job 2: a fresh checkout and out dir, the same inputs: the exact key is restored, the
    // dependency is reused and only the checkout's crate compiles; nothing new to save.
    let warm = jobs.job("guest-a");
    let run = jobs.run(&warm, &build_inputs());
    let t = run.transcript();
    assert_eq!(run.step("run").status, Some(0), "{t}");
    assert_eq!(run.step("build-cache").outputs["key"], key, "{t}");
    assert_eq!(
        run.step("build-restore").outputs["cache-hit"],
        "true",
        "{t}"
    );
    let log = run_log(&run);
    assert!(
        !log.contains("Compiling warmdep"),
        "the dependency was rebuilt:\n{log}"
    );
    assert!(log.contains("Compiling cargo-kernel"), "{log}");
    // Its patched VM config names this job's workspace, so its target dir has another name:
    // the restored one is taken over.
    assert!(log.contains("starting from the cached target dir"), "{log}");
    assert!(
        !run.step("build-after").ran && !run.step("Save the build cache").ran,
        "{t}"
    );

    // Job 3: another VM config: a new key, restored from job 1's entry by a restore key, and
    // saved under its own key after the build.
    let other = jobs.job("guest-b");
    let run = jobs.run(&other, &build_inputs());
    let t = run.transcript();
    assert_eq!(run.step("run").status, Some(0), "{t}");
    let key3 = run.step("build-cache").outputs["key"].clone();
    assert_ne!(key3, key);
    let restore = run.step("build-restore");
    assert_eq!(restore.outputs["cache-hit"], "false", "{t}");
    assert_eq!(restore.outputs["cache-matched-key"], key, "{t}");
    let log = run_log(&run);
    assert!(log.contains("vm config: guest-b"), "{log}");
    assert!(
        !log.contains("Compiling warmdep"),
        "the dependency was rebuilt:\n{log}"
    );
    assert!(run.step("Save the build cache").ran, "{t}");
    assert!(store.join(&key3).is_dir());
}

#[test]
fn a_prebuilt_kernel_has_no_build_cache() {
    let (action, _) = load_action();
    let kernel = fixture("aarch64-baremetal/hello.elf");
    let config = repo().join("examples/demo/baremetal.toml");
    let (kernel, config) = (kernel.to_string_lossy(), config.to_string_lossy());
    let store = tempfile::tempdir().unwrap();
    let job = Job::with_cache(store.path());
    let run = job.run(&action, &demo_inputs(&kernel, &config), &binary_env());
    let t = run.transcript();
    assert_eq!(run.step("run").status, Some(0), "{t}");
    assert_eq!(run.step("build-cache").outputs["key"], "", "{t}");
    assert!(
        run.step("build-cache")
            .stderr
            .contains("no selected case builds"),
        "{t}"
    );
    for s in ["build-restore", "build-after", "Save the build cache"] {
        assert!(!run.step(s).ran, "{s}: {t}");
    }
}

#[test]
fn cache_build_false_turns_the_build_caches_off() {
    let jobs = BuildJobs::new();
    let job = jobs.job("guest-a");
    let mut inputs = build_inputs();
    inputs.push(("cache-build", "FALSE"));
    let run = jobs.run(&job, &inputs);
    let t = run.transcript();
    assert_eq!(run.step("run").status, Some(0), "{t}");
    let key = run.step("build-cache");
    assert_eq!(key.outputs["key"], "", "{t}");
    assert!(key.stderr.contains("cache-build is false"), "{t}");
    for s in ["build-restore", "build-after", "Save the build cache"] {
        assert!(!run.step(s).ran, "{s}: {t}");
    }
    assert!(!jobs.store().exists(), "nothing saved");
    // Any other spelling fails the job in its first step (before any cache is restored), naming
    // the input; no later step runs.
    let bad = jobs.run(&job, &[("cache-build", "no")]);
    let first = bad.step("source-cache");
    assert_eq!(first.status, Some(1), "{}", bad.transcript());
    assert!(
        first.stderr.contains("input `cache-build`") && first.stderr.contains("'no'"),
        "{}",
        bad.transcript()
    );
    for s in ["source-restore", "install", "prepare", "run"] {
        assert!(!bad.step(s).ran, "{s}: {}", bad.transcript());
    }
}

//! Runs `action.yml` the way the GitHub runner runs a composite action: inputs with their
//! defaults; `${{ … }}` evaluated in `if:`, `env:`, `with:` and `working-directory` (never in
//! `run:` text); each `run` step as `bash --noprofile --norc -eo pipefail <script>` with fresh
//! GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_ENV and GITHUB_PATH files whose contents feed the
//! later steps; `uses:` steps recorded, not run — except actions/cache/restore and save when the
//! job has a cache store ([`Job::with_cache`]), which follow actions/cache's rules on a local
//! directory; the action's `outputs` resolved at the end.

pub mod env_file;
pub mod expr;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use tempfile::TempDir;

pub use env_file::parse_env_file;
use expr::{Context, StepState, condition_holds, interpolate};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// action.yml, as far as a composite action can have it (unknown keys fail the parse).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub author: Option<String>,
    #[serde(default)]
    pub branding: Option<BTreeMap<String, String>>,
    pub inputs: BTreeMap<String, Input>,
    pub outputs: BTreeMap<String, OutputSpec>,
    pub runs: Runs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub description: String,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub required: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub description: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runs {
    pub using: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Step {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, rename = "if")]
    pub condition: Option<String>,
    #[serde(default)]
    pub shell: Option<String>,
    #[serde(default)]
    pub run: Option<String>,
    #[serde(default)]
    pub uses: Option<String>,
    #[serde(default)]
    pub with: BTreeMap<String, String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub working_directory: Option<String>,
    #[serde(default)]
    pub continue_on_error: Option<bool>,
}

impl Step {
    /// The step's id, else its name: how the tests refer to it.
    pub fn label(&self) -> String {
        self.id
            .clone()
            .or_else(|| self.name.clone())
            .unwrap_or_else(|| "<unnamed step>".to_string())
    }
}

/// The parsed action.yml and its text.
pub fn load_action() -> (Action, String) {
    let text = std::fs::read_to_string(repo().join("action.yml")).expect("read action.yml");
    let action = yaml_serde::from_str(&text).expect("action.yml parses into the composite model");
    (action, text)
}

/// What one step did.
#[derive(Debug, Default)]
pub struct StepRecord {
    pub label: String,
    pub ran: bool,
    pub uses: Option<String>,
    pub with: BTreeMap<String, String>,
    /// Exit status of a `run` step.
    pub status: Option<i32>,
    pub outputs: BTreeMap<String, String>,
    pub stdout: String,
    pub stderr: String,
}

/// The result of running the whole action.
pub struct ActionRun {
    pub steps: Vec<StepRecord>,
    /// The action's outputs, resolved through its `outputs.<id>.value`.
    pub outputs: BTreeMap<String, String>,
    /// Every step summary, concatenated as the runner shows them.
    pub summary: String,
}

impl ActionRun {
    pub fn step(&self, label: &str) -> &StepRecord {
        self.steps
            .iter()
            .find(|s| s.label == label)
            .unwrap_or_else(|| panic!("no step {label}"))
    }

    /// Every step's status, outputs and log, for assertion messages.
    pub fn transcript(&self) -> String {
        self.steps
            .iter()
            .map(|s| {
                format!(
                    "--- {} ran={} status={:?} outputs={:?}\n{}{}",
                    s.label, s.ran, s.status, s.outputs, s.stdout, s.stderr
                )
            })
            .collect()
    }
}

/// A runner job in temporary directories: workspace, RUNNER_TEMP, RUNNER_TOOL_CACHE, HOME.
pub struct Job {
    root: TempDir,
    github: BTreeMap<&'static str, String>,
    runner: BTreeMap<&'static str, String>,
    cache: Option<PathBuf>,
}

/// What changes as the steps run.
struct JobState {
    inputs: BTreeMap<String, String>,
    steps: BTreeMap<String, StepState>,
    failed: bool,
    path: String,
    exported: Vec<(String, String)>,
    summary: String,
}

impl Job {
    pub fn new() -> Job {
        let root = tempfile::tempdir().expect("tempdir");
        for d in ["workspace", "temp", "tool-cache", "home", "steps"] {
            std::fs::create_dir_all(root.path().join(d)).expect("mkdir");
        }
        let p = |d: &str| root.path().join(d).to_string_lossy().into_owned();
        let github = BTreeMap::from([
            ("action_path", repo().to_string_lossy().into_owned()),
            ("workspace", p("workspace")),
            ("job", "action-test".to_string()),
            ("run_attempt", "2".to_string()),
        ]);
        let runner = BTreeMap::from([
            ("temp", p("temp")),
            ("tool_cache", p("tool-cache")),
            ("os", "Linux".to_string()),
            ("arch", runner_arch().to_string()),
            // Not github-hosted: setup-host.sh must not touch this machine's udev rules.
            ("environment", "self-hosted".to_string()),
        ]);
        Job {
            root,
            github,
            runner,
            cache: None,
        }
    }

    /// A job whose actions/cache steps restore from and save to `store` (shared by the jobs of
    /// one test, as the repository's cache is shared by its workflow runs).
    pub fn with_cache(store: &Path) -> Job {
        Job {
            cache: Some(store.to_path_buf()),
            ..Job::new()
        }
    }

    pub fn workspace(&self) -> PathBuf {
        self.root.path().join("workspace")
    }

    /// The job-level environment every step starts from.
    fn base_env(&self) -> Vec<(String, String)> {
        let home = self.root.path().join("home");
        [
            ("GITHUB_ACTIONS", "true"),
            ("CI", "true"),
            ("GITHUB_ACTION_PATH", self.github["action_path"].as_str()),
            ("GITHUB_WORKSPACE", &self.github["workspace"]),
            ("GITHUB_JOB", &self.github["job"]),
            ("GITHUB_RUN_ATTEMPT", &self.github["run_attempt"]),
            ("GITHUB_RUN_ID", "4242"),
            ("GITHUB_REPOSITORY", "axvisor/qemu-test-action"),
            ("GITHUB_SHA", "0000000000000000000000000000000000000000"),
            // Unroutable: nothing in these tests may reach GitHub.
            ("GITHUB_SERVER_URL", "http://127.0.0.1:9"),
            ("GITHUB_API_URL", "http://127.0.0.1:9"),
            ("RUNNER_OS", &self.runner["os"]),
            ("RUNNER_ARCH", &self.runner["arch"]),
            ("RUNNER_TEMP", &self.runner["temp"]),
            ("RUNNER_TOOL_CACHE", &self.runner["tool_cache"]),
            ("RUNNER_ENVIRONMENT", &self.runner["environment"]),
            ("HOME", &home.to_string_lossy()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Runs the action with `given` inputs, `job_env` added to every run step's environment.
    pub fn run(
        &self,
        action: &Action,
        given: &[(&str, &str)],
        job_env: &[(&str, &str)],
    ) -> ActionRun {
        let mut state = JobState {
            inputs: resolve_inputs(action, given),
            steps: BTreeMap::new(),
            failed: false,
            path: std::env::var("PATH").unwrap_or_default(),
            exported: Vec::new(),
            summary: String::new(),
        };
        let mut records = Vec::new();
        for (n, step) in action.runs.steps.iter().enumerate() {
            let record = self.run_step(n, step, &mut state, job_env);
            let ok = record.status.is_none_or(|s| s == 0);
            if !ok && step.continue_on_error != Some(true) {
                state.failed = true;
            }
            if let Some(id) = &step.id {
                let outcome = match (record.ran, ok) {
                    (false, _) => "skipped",
                    (true, true) => "success",
                    (true, false) => "failure",
                };
                let outputs = record.outputs.clone();
                let outcome = outcome.to_string();
                state
                    .steps
                    .insert(id.clone(), StepState { outputs, outcome });
            }
            records.push(record);
        }
        let ctx = self.context(&state);
        let outputs = action
            .outputs
            .iter()
            .map(|(k, o)| (k.clone(), interpolate(&o.value, &ctx)))
            .collect();
        ActionRun {
            steps: records,
            outputs,
            summary: state.summary,
        }
    }

    fn context<'a>(&'a self, state: &'a JobState) -> Context<'a> {
        Context {
            inputs: &state.inputs,
            steps: &state.steps,
            github: &self.github,
            runner: &self.runner,
            failed: state.failed,
        }
    }

    fn run_step(
        &self,
        n: usize,
        step: &Step,
        state: &mut JobState,
        job_env: &[(&str, &str)],
    ) -> StepRecord {
        let ctx = self.context(state);
        let label = step.label();
        if !condition_holds(step.condition.as_deref(), &ctx) {
            return StepRecord {
                label,
                ..StepRecord::default()
            };
        }
        let eval = |map: &BTreeMap<String, String>| -> Vec<(String, String)> {
            map.iter()
                .map(|(k, v)| (k.clone(), interpolate(v, &ctx)))
                .collect()
        };
        let with: BTreeMap<String, String> = eval(&step.with).into_iter().collect();
        let Some(script) = &step.run else {
            let uses = step.uses.clone().unwrap_or_default();
            let outputs = match &self.cache {
                Some(store) if uses.starts_with("actions/cache/restore@") => {
                    cache_restore(store, &with)
                }
                Some(store) if uses.starts_with("actions/cache/save@") => {
                    cache_save(store, &with);
                    BTreeMap::new()
                }
                _ => BTreeMap::new(),
            };
            return StepRecord {
                label,
                ran: true,
                uses: step.uses.clone(),
                with,
                outputs,
                ..StepRecord::default()
            };
        };
        let mut env = eval(&step.env);
        env.extend(job_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let wd = match &step.working_directory {
            Some(w) => self.workspace().join(interpolate(w, &ctx)),
            None => self.workspace(),
        };
        let files = self.root.path().join(format!("steps/{n}"));
        let shell = Shell {
            base: self.base_env(),
            path: state.path.clone(),
            exported: state.exported.clone(),
        };
        let run = shell.run(script, &files, &wd, &env);
        state.summary.push_str(&run.summary);
        for dir in &run.path_additions {
            state.path = format!("{dir}:{}", state.path);
        }
        state.exported.extend(run.exported);
        StepRecord {
            label,
            ran: true,
            uses: None,
            with,
            status: Some(run.status),
            outputs: run.outputs,
            stdout: run.stdout,
            stderr: run.stderr,
        }
    }
}

/// actions/cache/restore on a local store: the entry named `key`, else the newest entry whose
/// key starts with the first of `key` and the `restore-keys` lines that matches any; copied into
/// `path` with times kept (the cache's tar keeps them). `cache-hit` is `true` only for the exact
/// key.
fn cache_restore(store: &Path, with: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let key = &with["key"];
    let entries: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(store)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    let t = e.metadata().and_then(|m| m.modified()).expect("entry time");
                    (t, e.file_name().to_string_lossy().into_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let prefixes = with.get("restore-keys").map(String::as_str).unwrap_or("");
    let found = entries
        .iter()
        .find(|(_, k)| k == key)
        .map(|(_, k)| k.clone())
        .or_else(|| {
            let candidates = std::iter::once(key.as_str()).chain(prefixes.lines());
            candidates.filter(|p| !p.is_empty()).find_map(|p| {
                entries
                    .iter()
                    .filter(|(_, k)| k.starts_with(p))
                    .max()
                    .map(|(_, k)| k.clone())
            })
        });
    let Some(found) = found else {
        return BTreeMap::new();
    };
    copy_tree(&store.join(&found), Path::new(&with["path"]));
    BTreeMap::from([
        ("cache-hit".to_string(), (&found == key).to_string()),
        ("cache-matched-key".to_string(), found),
    ])
}

/// actions/cache/save on a local store: an existing key is never overwritten.
fn cache_save(store: &Path, with: &BTreeMap<String, String>) {
    let entry = store.join(&with["key"]);
    if !entry.exists() {
        copy_tree(Path::new(&with["path"]), &entry);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir cache copy");
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", from.display()))
        .arg(to)
        .status()
        .expect("cp");
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

fn runner_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "ARM64",
        _ => "X64",
    }
}

/// Inputs as the runner gives them to a composite action: the given ones, else their defaults.
fn resolve_inputs(action: &Action, given: &[(&str, &str)]) -> BTreeMap<String, String> {
    for (k, _) in given {
        assert!(
            action.inputs.contains_key(*k),
            "action.yml has no input {k}"
        );
    }
    action
        .inputs
        .iter()
        .map(|(k, i)| {
            let v = given
                .iter()
                .find(|(g, _)| g == k)
                .map(|(_, v)| v.to_string())
                .or_else(|| i.default.clone())
                .unwrap_or_default();
            (k.clone(), v)
        })
        .collect()
}

/// The environment a run step's bash starts with.
struct Shell {
    base: Vec<(String, String)>,
    path: String,
    exported: Vec<(String, String)>,
}

struct ScriptRun {
    status: i32,
    outputs: BTreeMap<String, String>,
    summary: String,
    path_additions: Vec<String>,
    exported: Vec<(String, String)>,
    stdout: String,
    stderr: String,
}

impl Shell {
    fn run(
        &self,
        script: &str,
        files: &Path,
        wd: &Path,
        step_env: &[(String, String)],
    ) -> ScriptRun {
        std::fs::create_dir_all(files).expect("mkdir step files");
        for f in ["output", "summary", "path", "env"] {
            std::fs::write(files.join(f), "").expect("create step file");
        }
        std::fs::write(files.join("script.sh"), script).expect("write script");
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(files.join("script.sh"))
            .env_clear()
            .envs(self.base.iter().cloned())
            .env("PATH", &self.path)
            .envs(self.exported.iter().cloned())
            .envs(step_env.iter().cloned())
            .env("GITHUB_OUTPUT", files.join("output"))
            .env("GITHUB_STEP_SUMMARY", files.join("summary"))
            .env("GITHUB_PATH", files.join("path"))
            .env("GITHUB_ENV", files.join("env"))
            .current_dir(wd)
            .output()
            .expect("spawn bash");
        let read = |f: &str| std::fs::read_to_string(files.join(f)).unwrap_or_default();
        ScriptRun {
            status: out.status.code().unwrap_or(-1),
            outputs: parse_env_file(&read("output")),
            summary: read("summary"),
            path_additions: read("path").lines().map(str::to_string).collect(),
            exported: parse_env_file(&read("env")).into_iter().collect(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

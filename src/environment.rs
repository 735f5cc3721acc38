//! The process environment, read in one place. The Actions runner's variables (`GITHUB_*`,
//! `RUNNER_*`, and `action.yml`'s `QEMU_TEST_ARTIFACT_NAME`) are read into a typed [`Runner`]
//! (the commands read it once and pass it down); the action's `INPUT_*` variables reach
//! `crate::cmd::inputs` through [`Lookup`]; the few settings other tools define
//! (`TGOS_IMAGE_*`, `WORKSPACE_FOLDER`, axbuild's `FEATURES`, `QEMU_TEST_CACHE`/`XDG_CACHE_HOME`/`HOME` for the
//! cache root, and `${env:NAME}` in the user's configs) are read through [`process`] by the
//! module that owns their rule.
//!
//! `tests/layers.rs` keeps `std::env::var` out of every other file but a listed few (`PATH`,
//! `TERM`, `NO_COLOR`: the operating system's and the terminal's conventions), and the runner's
//! variable names (`"GITHUB_…"`, `"RUNNER_…"`, `"INPUT_…"`, `"ACTIONS_…"`) out of every file but
//! this one, `cmd/inputs.rs` and the `env = "INPUT_…"` of `cli.rs`'s flags. Ground level: uses
//! nothing of the crate.

use std::ffi::OsString;
use std::path::PathBuf;

/// A source of variables: the process environment ([`process`]), or a map in tests.
pub trait Lookup {
    fn get(&self, name: &str) -> Option<String>;

    /// The value as the OS holds it (a path need not be UTF-8).
    fn get_os(&self, name: &str) -> Option<OsString> {
        self.get(name).map(OsString::from)
    }

    /// Whether any variable's name starts with `prefix`; `true` when that cannot be told
    /// (a lookup that only answers by name).
    fn any_named(&self, _prefix: &str) -> bool {
        true
    }
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Process;

impl Lookup for Process {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn get_os(&self, name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }

    fn any_named(&self, prefix: &str) -> bool {
        std::env::vars_os().any(|(k, _)| k.as_encoded_bytes().starts_with(prefix.as_bytes()))
    }
}

/// The process environment.
pub fn process() -> Process {
    Process
}

/// Variables from `(name, value)` pairs (tests).
#[cfg(test)]
pub fn map(pairs: &[(&str, &str)]) -> impl Lookup + use<> {
    let m: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| m.get(k).cloned()
}

/// `WORKSPACE_FOLDER`: the workspace ostool sets for the commands it runs (the default of
/// `--workspace`, as ostool's children expect).
pub fn workspace_folder() -> Option<PathBuf> {
    process()
        .get_os("WORKSPACE_FOLDER")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `FEATURES`: the features tgoskits' axbuild adds to every build file's (its Makefile-era
/// variable, read by `build::axbuild` for the builds it reproduces).
pub fn axbuild_features() -> Option<String> {
    process().get("FEATURES")
}

/// The value of `${env:NAME}` in a user's config: a variable the user chose.
pub fn config_variable(name: &str) -> Option<OsString> {
    process().get_os(name)
}

/// The variable `action.yml` passes the log artifact's name in.
pub const ARTIFACT_NAME_VAR: &str = "QEMU_TEST_ARTIFACT_NAME";

/// What the GitHub Actions runner tells a step through its environment, read once. Every value
/// is trimmed; an empty or missing variable is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runner {
    /// `GITHUB_ACTIONS=true`: this is an Actions job.
    pub actions: bool,
    /// `GITHUB_OUTPUT`: `name=value` entries become step outputs.
    pub output: Option<PathBuf>,
    /// `GITHUB_STEP_SUMMARY`: Markdown appended here is shown on the run's page.
    pub step_summary: Option<PathBuf>,
    /// `GITHUB_WORKSPACE`: the checkout; reports name files relative to it.
    pub workspace: Option<PathBuf>,
    /// `GITHUB_EVENT_PATH`: the event's JSON payload.
    pub event_path: Option<PathBuf>,
    /// `GITHUB_SERVER_URL`, e.g. `https://github.com`.
    pub server_url: Option<String>,
    /// `GITHUB_API_URL` (GitHub Enterprise Server has its own).
    pub api_url: Option<String>,
    /// `GITHUB_REPOSITORY`: `owner/repo`.
    pub repository: Option<String>,
    /// `GITHUB_SHA`: the commit the workflow runs on.
    pub sha: Option<String>,
    /// `GITHUB_RUN_ID`, `GITHUB_RUN_ATTEMPT`, `GITHUB_JOB`.
    pub run_id: Option<String>,
    pub run_attempt: Option<String>,
    pub job: Option<String>,
    /// `RUNNER_OS`, `RUNNER_ARCH` (`Linux`, `X64`).
    pub os: Option<String>,
    pub arch: Option<String>,
    /// `RUNNER_TOOL_CACHE`: the runner's tool cache, kept between jobs on self-hosted runners
    /// (the image cache's default root); as the OS holds it, untrimmed.
    pub tool_cache: Option<PathBuf>,
    /// `QEMU_TEST_ARTIFACT_NAME`: the log artifact `action.yml` uploads.
    pub artifact_name: Option<String>,
}

impl Runner {
    /// This process's runner environment.
    pub fn from_env() -> Runner {
        Runner::from_vars(&process())
    }

    /// The runner environment in `vars`.
    pub fn from_vars(vars: &impl Lookup) -> Runner {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let path = |k: &str| get(k).map(PathBuf::from);
        Runner {
            actions: get("GITHUB_ACTIONS").as_deref() == Some("true"),
            output: path("GITHUB_OUTPUT"),
            step_summary: path("GITHUB_STEP_SUMMARY"),
            workspace: path("GITHUB_WORKSPACE"),
            event_path: path("GITHUB_EVENT_PATH"),
            server_url: get("GITHUB_SERVER_URL"),
            api_url: get("GITHUB_API_URL"),
            repository: get("GITHUB_REPOSITORY"),
            sha: get("GITHUB_SHA"),
            run_id: get("GITHUB_RUN_ID"),
            run_attempt: get("GITHUB_RUN_ATTEMPT"),
            job: get("GITHUB_JOB"),
            os: get("RUNNER_OS"),
            arch: get("RUNNER_ARCH"),
            tool_cache: vars
                .get_os("RUNNER_TOOL_CACHE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            artifact_name: get(ARTIFACT_NAME_VAR),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runner_is_read_trimmed_and_empty_means_unset() {
        let r = Runner::from_vars(&map(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_OUTPUT", "/tmp/out"),
            ("GITHUB_SHA", " abc \n"),
            ("GITHUB_JOB", ""),
            ("RUNNER_OS", "Linux"),
            ("RUNNER_TOOL_CACHE", "/opt/hostedtoolcache"),
        ]));
        assert!(r.actions);
        assert_eq!(r.tool_cache, Some(PathBuf::from("/opt/hostedtoolcache")));
        let empty = Runner::from_vars(&map(&[("RUNNER_TOOL_CACHE", "")]));
        assert_eq!(empty.tool_cache, None);
        assert_eq!(r.output, Some(PathBuf::from("/tmp/out")));
        assert_eq!(r.sha.as_deref(), Some("abc"));
        assert_eq!((r.job, r.os.as_deref()), (None, Some("Linux")));
        assert!(!Runner::from_vars(&map(&[("GITHUB_ACTIONS", "1")])).actions);
        assert_eq!(Runner::from_vars(&map(&[])), Runner::default());
    }
}

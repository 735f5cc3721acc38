//! Check runs: one per case on the commit under test, when the action is given a token
//! (input `github-token`), through octocrab's Checks API.
//!
//! Each run is created `completed` with the conclusion mapped from the verdict, a one-line
//! title, the step summary's Markdown for that case as `output.summary`, the console tail as
//! `output.text` (both kept under GitHub's 65,535-character limit) and annotations at the
//! line of the pattern that decided it. GitHub takes at most 50 annotations per request: the
//! create call carries the first 50 and `update_check_run` calls append the rest.
//!
//! The verdict never depends on this API. A read-only token (pull requests from forks get
//! one: HTTP 403 "Resource not accessible by integration", or 404) and any other failure
//! become warnings; the results are in the step summary and annotations anyway.
//!
//! TLS: reqwest is built with `rustls-no-provider` and octocrab with `rustls-ring`, so ring is
//! the only rustls crypto provider compiled in (`cargo tree -e features -i rustls` shows the
//! features `ring std tls12 logging` and no `aws-lc-rs`). rustls panics at the first handshake
//! only when several providers are compiled in and none is installed; we install ring
//! ([`crate::http::install_crypto_provider`]) before building the client anyway, and octocrab
//! uses the installed default.

mod output;

use std::path::{Path, PathBuf};
use std::time::Duration;

use octocrab::Octocrab;
use octocrab::models::CheckRunId;
use octocrab::params::checks::{
    CheckRunConclusion, CheckRunOutput, CheckRunOutputAnnotation, CheckRunOutputAnnotationLevel,
    CheckRunStatus,
};
use octocrab::service::middleware::retry::RetryConfig;

pub use output::{CheckRunContent, OUTPUT_LIMIT};

use crate::environment::Runner;
use crate::error::Error;
use crate::report::CaseResult;
use crate::report::gha::commands::{Annotation, Level};
use crate::verdict::Outcome;

/// GitHub accepts at most this many annotations per create or update request.
pub const ANNOTATIONS_PER_REQUEST: usize = 50;

/// The warning for a token that cannot write checks.
pub const READ_ONLY_WARNING: &str = "check runs not created: the token cannot write checks (fork \
     pull request?); results are in the summary and annotations";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Deadline for all check runs of a run: the job's end must not wait on the API.
const TOTAL_TIMEOUT: Duration = Duration::from_secs(120);
/// Retries of a request that got a 5xx, a 429 or no response.
const RETRIES: usize = 2;

/// Where and as what check runs are published, from the Actions environment.
#[derive(Clone, PartialEq, Eq)]
pub struct ChecksConfig {
    /// `--github-token` (input `github-token`); needs `checks: write`.
    pub token: String,
    /// `GITHUB_API_URL` (GitHub Enterprise Server has its own), default `https://api.github.com`.
    pub api_url: String,
    /// `owner/repo` from `GITHUB_REPOSITORY`.
    pub repository: String,
    /// The commit the runs attach to: the pull request's head, else `GITHUB_SHA`.
    pub head_sha: String,
    /// Run names are `<check_name> / <case>` (input `check-name`, default `qemu-test`).
    pub check_name: String,
    /// Link to the workflow run, shown on each check run.
    pub details_url: Option<String>,
    /// `GITHUB_WORKSPACE`: annotation paths are made relative to it.
    pub workspace: Option<PathBuf>,
}

impl std::fmt::Debug for ChecksConfig {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChecksConfig")
            .field("api_url", &self.api_url)
            .field("repository", &self.repository)
            .field("head_sha", &self.head_sha)
            .field("check_name", &self.check_name)
            .field("details_url", &self.details_url)
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

impl ChecksConfig {
    /// The configuration for `token` and `check_name` (the inputs) in the runner's
    /// environment; `None` without a token, which means check runs are not wanted.
    pub fn of(runner: &Runner, token: Option<&str>, check_name: Option<&str>) -> Option<Self> {
        let token = token.map(str::trim).filter(|t| !t.is_empty())?.to_string();
        let repository = runner.repository.clone().unwrap_or_default();
        let pr_head = runner.event_path.as_deref().and_then(pull_request_head);
        let details_url = match (&runner.server_url, &runner.run_id) {
            (Some(server), Some(run)) if !repository.is_empty() => Some(format!(
                "{}/{repository}/actions/runs/{run}",
                server.trim_end_matches('/')
            )),
            _ => None,
        };
        Some(ChecksConfig {
            token,
            api_url: runner
                .api_url
                .clone()
                .unwrap_or_else(|| "https://api.github.com".into()),
            head_sha: pr_head.or_else(|| runner.sha.clone()).unwrap_or_default(),
            repository,
            check_name: check_name.unwrap_or("qemu-test").to_string(),
            details_url,
            workspace: runner.workspace.clone(),
        })
    }

    /// `(owner, repo)`, or why the configuration cannot be used.
    fn owner_repo(&self) -> Result<(&str, &str), Error> {
        let bad = || {
            Error::config(format!(
                "GITHUB_REPOSITORY is '{}', not 'owner/repo'",
                self.repository
            ))
            .help("run in GitHub Actions, or set GITHUB_REPOSITORY=owner/repo")
        };
        let (owner, repo) = self.repository.split_once('/').ok_or_else(bad)?;
        if owner.is_empty() || repo.is_empty() || repo.contains('/') {
            return Err(bad());
        }
        if self.head_sha.is_empty() {
            return Err(
                Error::config("GITHUB_SHA is not set: no commit to attach check runs to")
                    .help("run in GitHub Actions, or set GITHUB_SHA to the commit under test"),
            );
        }
        Ok((owner, repo))
    }
}

/// `pull_request.head.sha` from the event payload: for `pull_request` events `GITHUB_SHA` is
/// the temporary merge commit, which the pull request's checks list does not show.
fn pull_request_head(event_path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(event_path).ok()?;
    let event: serde_json::Value = serde_json::from_str(&text).ok()?;
    let sha = event.pointer("/pull_request/head/sha")?.as_str()?;
    (!sha.is_empty()).then(|| sha.to_string())
}

/// One check run, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRunReport {
    /// `<check-name> / <case>`.
    pub name: String,
    /// The case name, sent as `external_id`.
    pub case: String,
    pub outcome: Outcome,
    pub content: CheckRunContent,
}

impl CheckRunReport {
    /// The check run for a finished case.
    pub fn for_case(cfg: &ChecksConfig, result: &CaseResult) -> Self {
        let cwd = std::env::current_dir().unwrap_or_default();
        CheckRunReport {
            name: format!("{} / {}", cfg.check_name, result.name),
            case: result.name.clone(),
            outcome: result.verdict.outcome,
            content: output::content(result, cfg.workspace.as_deref(), &cwd),
        }
    }
}

/// Creates one completed check run per case. Returns warnings for the user; never fails
/// because of the API (only for an unusable configuration, e.g. no `GITHUB_REPOSITORY`).
pub async fn publish(cfg: &ChecksConfig, results: &[CaseResult]) -> Result<Vec<String>, Error> {
    let runs: Vec<CheckRunReport> = results
        .iter()
        .map(|r| CheckRunReport::for_case(cfg, r))
        .collect();
    publish_runs(cfg, &runs).await
}

/// Sends prepared check runs (see [`publish`]); callers may add annotations to them first.
pub async fn publish_runs(
    cfg: &ChecksConfig,
    runs: &[CheckRunReport],
) -> Result<Vec<String>, Error> {
    let (owner, repo) = cfg.owner_repo()?;
    let client = client(cfg)?;
    let mut warnings = Vec::new();
    let all = async {
        for (i, run) in runs.iter().enumerate() {
            let Err(e) = send(&client, cfg, owner, repo, run).await else {
                continue;
            };
            let failure = Failure::of(&e);
            warnings.push(failure.warning(&run.name));
            if failure.stops_all() {
                let left = runs.len() - i - 1;
                if left > 0 {
                    warnings.push(format!("{left} more check runs not created"));
                }
                break;
            }
        }
    };
    if tokio::time::timeout(TOTAL_TIMEOUT, all).await.is_err() {
        warnings.push(format!(
            "check runs not all created: the GitHub API took longer than {} s",
            TOTAL_TIMEOUT.as_secs()
        ));
    }
    Ok(warnings)
}

fn client(cfg: &ChecksConfig) -> Result<Octocrab, Error> {
    crate::http::install_crypto_provider();
    let bad_url = |e: octocrab::Error| {
        Error::config(format!(
            "GITHUB_API_URL '{}' is not usable: {}",
            cfg.api_url,
            error_chain(&e)
        ))
        .help("set GITHUB_API_URL to the REST API root, e.g. https://api.github.com")
    };
    Octocrab::builder()
        .base_uri(cfg.api_url.as_str())
        .map_err(bad_url)?
        .personal_token(cfg.token.clone())
        .add_retry_config(RetryConfig::Simple(RETRIES))
        .set_connect_timeout(Some(CONNECT_TIMEOUT))
        .set_read_timeout(Some(IO_TIMEOUT))
        .set_write_timeout(Some(IO_TIMEOUT))
        .build()
        .map_err(|e| {
            Error::infra(format!(
                "cannot create the GitHub API client: {}",
                error_chain(&e)
            ))
        })
}

/// Creates the run with the first batch of annotations, then appends the other batches.
async fn send(
    client: &Octocrab,
    cfg: &ChecksConfig,
    owner: &str,
    repo: &str,
    run: &CheckRunReport,
) -> Result<(), octocrab::Error> {
    let checks = client.checks(owner, repo);
    let annotations: Vec<&Annotation> = run
        .content
        .annotations
        .iter()
        .filter(|a| a.file.is_some() && a.line.is_some())
        .collect();
    let mut batches = annotations.chunks(ANNOTATIONS_PER_REQUEST);
    let first = batches.next().unwrap_or_default();
    let mut create = checks
        .create_check_run(&run.name, &cfg.head_sha)
        .external_id(&run.case)
        .status(CheckRunStatus::Completed)
        .conclusion(conclusion(run.outcome))
        .output(api_output(&run.content, first));
    if let Some(url) = &cfg.details_url {
        create = create.details_url(url);
    }
    let created = create.send().await?;
    for batch in batches {
        update(&checks, created.id, &run.content, batch).await?;
    }
    Ok(())
}

async fn update(
    checks: &octocrab::checks::ChecksHandler<'_>,
    id: CheckRunId,
    content: &CheckRunContent,
    batch: &[&Annotation],
) -> Result<(), octocrab::Error> {
    checks
        .update_check_run(id)
        .output(api_output(content, batch))
        .send()
        .await
        .map(drop)
}

/// The verdict as a check conclusion (an infrastructure error is a failure to the reader).
pub fn conclusion(outcome: Outcome) -> CheckRunConclusion {
    match outcome {
        Outcome::Pass => CheckRunConclusion::Success,
        Outcome::Fail | Outcome::Error => CheckRunConclusion::Failure,
        Outcome::Timeout => CheckRunConclusion::TimedOut,
        Outcome::Skipped => CheckRunConclusion::Skipped,
        Outcome::Cancelled => CheckRunConclusion::Cancelled,
    }
}

/// The output object of a request. Title, summary and text are sent with every batch:
/// an update replaces them, while annotations are appended.
fn api_output(content: &CheckRunContent, batch: &[&Annotation]) -> CheckRunOutput {
    CheckRunOutput {
        title: content.title.clone(),
        summary: content.summary.clone(),
        text: content.text.clone(),
        annotations: batch.iter().filter_map(|a| api_annotation(a)).collect(),
        images: Vec::new(),
    }
}

fn api_annotation(a: &Annotation) -> Option<CheckRunOutputAnnotation> {
    let line = u32::try_from(a.line?).ok()?;
    let end_line = a
        .end_line
        .and_then(|l| u32::try_from(l).ok())
        .unwrap_or(line);
    // GitHub accepts columns only on single-line annotations.
    let columns = (end_line == line).then_some((a.col, a.end_column));
    let col = |c: Option<usize>| c.and_then(|c| u32::try_from(c).ok());
    Some(CheckRunOutputAnnotation {
        path: a.file.clone()?,
        start_line: line,
        end_line: end_line.max(line),
        start_column: columns.and_then(|(s, e)| e.and(col(s))),
        end_column: columns.and_then(|(s, e)| s.and(col(e))),
        annotation_level: match a.level {
            Level::Error => CheckRunOutputAnnotationLevel::Failure,
            Level::Warning => CheckRunOutputAnnotationLevel::Warning,
            Level::Notice => CheckRunOutputAnnotationLevel::Notice,
        },
        message: a.message.clone(),
        title: a.title.clone(),
        raw_details: None,
    })
}

/// Why a request failed, as far as the user can act on it.
enum Failure {
    /// 403 (not a rate limit) or 404: the token may not write checks.
    ReadOnly,
    /// Another answer from GitHub.
    Api { status: u16, message: String },
    /// No answer (connection, timeout, TLS) or an unreadable one.
    Transport(String),
}

impl Failure {
    fn of(e: &octocrab::Error) -> Self {
        match e {
            octocrab::Error::GitHub { source, .. } => {
                let status = source.status_code.as_u16();
                let rate_limited = source.message.to_lowercase().contains("rate limit");
                match status {
                    403 if !rate_limited => Failure::ReadOnly,
                    404 => Failure::ReadOnly,
                    _ => Failure::Api {
                        status,
                        message: source.message.clone(),
                    },
                }
            }
            other => Failure::Transport(error_chain(other)),
        }
    }

    fn warning(&self, run: &str) -> String {
        match self {
            Failure::ReadOnly => READ_ONLY_WARNING.to_string(),
            Failure::Api { status, message } => {
                format!("check run '{run}' not created: GitHub answered HTTP {status}: {message}")
            }
            Failure::Transport(e) => format!("check run '{run}' not created: {e}"),
        }
    }

    /// Whether the next runs would fail the same way (only a rejected request, e.g. 422 for
    /// one run's content, is worth not repeating for the others).
    fn stops_all(&self) -> bool {
        !matches!(self, Failure::Api { status: 422, .. })
    }
}

/// The error and its causes on one line ("client error (Connect)" alone says little); some
/// octocrab errors append a backtrace after the first line, which is left out.
fn error_chain(e: &dyn std::error::Error) -> String {
    let first_line =
        |e: &dyn std::error::Error| e.to_string().lines().next().unwrap_or_default().to_string();
    let mut text = first_line(e);
    let mut source = e.source();
    while let Some(cause) = source {
        let line = first_line(cause);
        if !text.contains(&line) {
            text = format!("{text}: {line}");
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn no_token_means_no_check_runs() {
        let runner = Runner {
            repository: some("o/r"),
            ..Runner::default()
        };
        assert!(ChecksConfig::of(&runner, None, None).is_none());
        assert!(ChecksConfig::of(&Runner::default(), Some(" "), None).is_none());
    }

    #[test]
    fn config_from_the_actions_environment() {
        let runner = Runner {
            repository: some("o/r"),
            sha: some("abc"),
            server_url: some("https://github.com/"),
            run_id: some("42"),
            ..Runner::default()
        };
        let cfg = ChecksConfig::of(&runner, Some("t0k"), None).unwrap();
        assert_eq!(cfg.api_url, "https://api.github.com");
        assert_eq!(cfg.check_name, "qemu-test");
        assert_eq!(cfg.head_sha, "abc");
        assert_eq!(
            cfg.details_url.as_deref(),
            Some("https://github.com/o/r/actions/runs/42")
        );
        assert_eq!(cfg.owner_repo().unwrap(), ("o", "r"));
        assert!(!format!("{cfg:?}").contains("t0k"));
    }

    #[test]
    fn pull_request_head_wins_over_the_merge_commit() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(&event, r#"{"pull_request":{"head":{"sha":"feed"}}}"#).unwrap();
        let on = |sha: &str| Runner {
            sha: some(sha),
            event_path: Some(event.clone()),
            ..Runner::default()
        };
        let cfg = ChecksConfig::of(&on("merge"), Some("t"), None).unwrap();
        assert_eq!(cfg.head_sha, "feed");
        std::fs::write(&event, r#"{"ref":"refs/heads/main"}"#).unwrap();
        let cfg = ChecksConfig::of(&on("push"), Some("t"), None).unwrap();
        assert_eq!(cfg.head_sha, "push");
    }

    #[test]
    fn unusable_repository_or_sha_is_a_config_error() {
        let runner = Runner {
            sha: some("s"),
            ..Runner::default()
        };
        let mut cfg = ChecksConfig::of(&runner, Some("t"), None).unwrap();
        for bad in ["", "o", "o/", "/r", "o/r/x"] {
            cfg.repository = bad.into();
            let e = cfg.owner_repo().unwrap_err();
            assert!(e.message.contains("not 'owner/repo'"), "{e}");
        }
        cfg.repository = "o/r".into();
        cfg.head_sha.clear();
        assert!(
            cfg.owner_repo()
                .unwrap_err()
                .message
                .contains("GITHUB_SHA is not set")
        );
    }

    #[test]
    fn conclusions_follow_the_verdict() {
        let json = |o| serde_json::to_value(conclusion(o)).unwrap();
        assert_eq!(json(Outcome::Pass), "success");
        assert_eq!(json(Outcome::Fail), "failure");
        assert_eq!(json(Outcome::Error), "failure");
        assert_eq!(json(Outcome::Timeout), "timed_out");
        assert_eq!(json(Outcome::Skipped), "skipped");
        assert_eq!(json(Outcome::Cancelled), "cancelled");
    }

    #[test]
    fn annotations_map_levels_and_single_line_columns() {
        let mut a = Annotation::new(Level::Error, "m").at("f.toml", 3, 5);
        a.end_column = Some(9);
        let json = serde_json::to_value(api_annotation(&a).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"path": "f.toml", "start_line": 3, "end_line": 3,
                "start_column": 5, "end_column": 9, "annotation_level": "failure", "message": "m"})
        );
        a.end_line = Some(4);
        let json = serde_json::to_value(api_annotation(&a).unwrap()).unwrap();
        assert!(json.get("start_column").is_none());
        assert!(api_annotation(&Annotation::new(Level::Notice, "no file")).is_none());
    }
}

//! The reporter that turns pipeline events into what GitHub Actions shows: the console in a
//! collapsible group and a stop-commands window, annotations, the step summary and outputs.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::commands::{self, Annotation, Annotator, Level, StopCommands};
use super::held::{Held, stream_log};
use super::outputs;
use super::summary::{self, ImageRef, SummaryCase};
use crate::console::{MatchInfo, PatternKind};
use crate::environment::Runner;
use crate::error::{Error, Location};
use crate::report::{self, CaseResult, Event, Reporter, Stage};
use crate::verdict::Outcome;

/// Files and paths the Actions runner gives a step through its environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GithubEnv {
    /// `GITHUB_STEP_SUMMARY`: Markdown appended here is shown on the run's page.
    pub step_summary: Option<PathBuf>,
    /// `GITHUB_OUTPUT`: `name=value` entries become step outputs.
    pub output: Option<PathBuf>,
    /// `GITHUB_WORKSPACE`: annotation paths are made relative to it.
    pub workspace: Option<PathBuf>,
    /// `GITHUB_SERVER_URL/GITHUB_REPOSITORY/blob/GITHUB_SHA`: the summary links pattern
    /// locations to the file at the commit.
    pub blob_url: Option<String>,
    /// The log artifact `action.yml` uploads (`QEMU_TEST_ARTIFACT_NAME`, the prepare step's
    /// `artifact-name`) on the run page `GITHUB_SERVER_URL/GITHUB_REPOSITORY/actions/runs/
    /// GITHUB_RUN_ID`: the summary points failed cases' logs there.
    pub artifact: Option<summary::ArtifactLink>,
}

impl GithubEnv {
    /// What the reporter takes from the runner's environment, or `None` when not running in
    /// Actions (`GITHUB_ACTIONS` is not `true`).
    pub fn of(runner: &Runner) -> Option<Self> {
        if !runner.actions {
            return None;
        }
        let var = |v: &Option<String>| v.clone().unwrap_or_default();
        Some(GithubEnv {
            step_summary: runner.step_summary.clone(),
            output: runner.output.clone(),
            workspace: runner.workspace.clone(),
            blob_url: summary::Links::blob_url(
                &var(&runner.server_url),
                &var(&runner.repository),
                &var(&runner.sha),
            ),
            artifact: summary::Links::artifact(
                &var(&runner.server_url),
                &var(&runner.repository),
                &var(&runner.run_id),
                &var(&runner.artifact_name),
            ),
        })
    }
}

/// What the action's inputs switch on or off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GithubOptions {
    /// Emit annotations (input `annotations`).
    pub annotations: bool,
    /// Write the step summary (input `summary`).
    pub summary: bool,
    /// Byte budget of our part of the step summary.
    pub summary_budget: usize,
    /// Reported as the `junit` output when set.
    pub junit: Option<PathBuf>,
    /// Reported as the `results-json` output when set.
    pub results_json: Option<PathBuf>,
    /// Echo the guest console, QEMU's stderr and the build output (`false`: `--quiet`).
    pub echo_console: bool,
    /// Cases run at once: each case's output is held and shown whole in its own groups when
    /// it ends (see `held.rs` for why), never under another case's group.
    pub parallel: bool,
}

impl Default for GithubOptions {
    fn default() -> Self {
        GithubOptions {
            annotations: true,
            summary: true,
            summary_budget: summary::DEFAULT_BUDGET,
            junit: None,
            results_json: None,
            echo_console: true,
            parallel: false,
        }
    }
}

/// Reports to GitHub Actions. Guest console bytes are echoed only inside a stop-commands
/// window, so nothing the guest prints is obeyed as a workflow command; our own commands are
/// written only while the window is closed.
///
/// In Actions this must be the only reporter that echoes the console to stdout or stderr:
/// console text written elsewhere would be outside the window.
pub struct GithubReporter {
    out: Box<dyn Write + Send>,
    env: GithubEnv,
    options: GithubOptions,
    window: StopCommands,
    annotator: Annotator,
    /// Title of the open log group.
    group: Option<String>,
    images: HashMap<String, ImageRef>,
    /// The fail-pattern match per case, in case the verdict lacks it.
    decided: HashMap<String, MatchInfo>,
    /// Cases (and `""` for the run) already annotated from a `Failed` event.
    annotated: HashSet<String>,
    /// With `parallel`: each running case's output, shown when it ends.
    held: HashMap<String, Held>,
    /// Where the summary is also written as a file (`<out-dir>/summary.md`, uploaded with the
    /// logs), whatever the `summary` input says about the step summary.
    summary_file: Option<PathBuf>,
    error: Option<Error>,
}

impl GithubReporter {
    /// A reporter writing workflow commands to `out` (normally stdout).
    pub fn new(out: Box<dyn Write + Send>, env: GithubEnv) -> Self {
        GithubReporter {
            out,
            env,
            options: GithubOptions::default(),
            window: StopCommands::new(),
            annotator: Annotator::new(),
            group: None,
            images: HashMap::new(),
            decided: HashMap::new(),
            annotated: HashSet::new(),
            held: HashMap::new(),
            summary_file: None,
            error: None,
        }
    }

    /// The reporter when `runner` is GitHub Actions (`GITHUB_ACTIONS=true`).
    pub fn for_runner(out: Box<dyn Write + Send>, runner: &Runner) -> Option<Self> {
        GithubEnv::of(runner).map(|env| Self::new(out, env))
    }

    /// Also writes the summary to `path` (replacing it) when the run ends.
    pub fn with_summary_file(mut self, path: PathBuf) -> Self {
        self.summary_file = Some(path);
        self
    }

    pub fn with_options(mut self, options: GithubOptions) -> Self {
        self.options = options;
        self
    }

    /// Records the image a case boots, for the summary's image column.
    pub fn set_image(&mut self, case: &str, image: ImageRef) {
        self.images.insert(case.to_string(), image);
    }

    /// Masks a secret (e.g. the `github-token` input) in all later log output of the job.
    pub fn mask(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let result = self
            .window
            .end(&mut self.out)
            .and_then(|()| commands::add_mask(&mut self.out, secret))
            .and_then(|()| self.out.flush());
        self.keep_io_error(result);
    }

    fn handle(&mut self, event: &Event<'_>) -> io::Result<()> {
        if self.options.parallel && self.hold(event) {
            return Ok(());
        }
        match event {
            Event::Console { .. } | Event::QemuStderr { .. } | Event::BuildOutput { .. }
                if !self.options.echo_console =>
            {
                Ok(())
            }
            Event::StageStarted {
                case,
                stage: Stage::Build,
            } => self.open_group(&format!("Build {case}")),
            Event::StageStarted {
                case,
                stage: Stage::Boot,
            } => self.open_group(&boot_title(case)),
            Event::QemuStarting { case, command } => {
                self.open_group(&boot_title(case))?;
                self.own_line(&format!("$ {}", command.display()))
            }
            // Build output is as untrusted as the console (it quotes the user's code).
            Event::Console { case, bytes }
            | Event::QemuStderr { case, bytes }
            | Event::BuildOutput { case, bytes } => {
                if self.group.is_none() {
                    self.open_group(&boot_title(case))?;
                }
                self.window.echo(&mut self.out, bytes)
            }
            Event::StageFinished {
                stage: Stage::Build | Stage::Boot,
                ..
            } => self.close_group(),
            Event::Decided { case, info } if info.kind == PatternKind::Fail => {
                self.decided.insert(case.to_string(), (*info).clone());
                Ok(())
            }
            Event::Failed { case, error } => self.on_failed(*case, error),
            Event::Note {
                case,
                level: report::Level::Warning,
                message,
                location,
            } => {
                let a = Annotation::new(Level::Warning, *message);
                let a = self.place(a, *location).title(title(*case));
                self.annotate(a)
            }
            Event::CaseFinished { result } => {
                self.close_group()?;
                if self.options.parallel {
                    self.show_held(result)?;
                }
                self.on_case_finished(result)
            }
            Event::RunFinished {
                results,
                exit_code,
                outcome,
            } => {
                self.close_group()?;
                self.write_files(results, *exit_code, *outcome);
                Ok(())
            }
            Event::ChecksWarning { message } => self
                .annotate(Annotation::new(Level::Warning, *message).title("qemu-test check runs")),
            _ => Ok(()),
        }
    }

    /// With cases running at once: keeps what belongs in a case's groups until it ends;
    /// `true` when the event was taken.
    fn hold(&mut self, event: &Event<'_>) -> bool {
        fn held<'a>(me: &'a mut GithubReporter, case: &str) -> &'a mut Held {
            me.held.entry(case.to_string()).or_default()
        }
        let echo = self.options.echo_console;
        match event {
            Event::StageStarted {
                case,
                stage: Stage::Build,
            } => held(self, case).built = true,
            Event::QemuStarting { case, command } => {
                held(self, case).command = Some(command.display());
            }
            // Read back from the case's console log when it ends.
            Event::Console { .. } => {}
            Event::QemuStderr { case, bytes } if echo => held(self, case).stderr.push(bytes),
            Event::BuildOutput { case, bytes } if echo => held(self, case).build.push(bytes),
            Event::QemuStderr { .. }
            | Event::BuildOutput { .. }
            | Event::StageStarted { .. }
            | Event::StageFinished { .. } => {}
            _ => return false,
        }
        true
    }

    /// Shows a finished case's held output in its own groups: the build, then the boot (the
    /// command, every attempt's console from its log, QEMU's stderr).
    fn show_held(&mut self, r: &CaseResult) -> io::Result<()> {
        let held = self.held.remove(&r.name).unwrap_or_default();
        if held.built {
            self.open_group(&format!("Build {}", r.name))?;
            self.window.echo(&mut self.out, &held.build.bytes)?;
            if let Some(note) = held.build.dropped_note("build output") {
                self.own_line(&note)?;
            }
            self.close_group()?;
        }
        let Some(command) = &held.command else {
            return Ok(());
        };
        self.open_group(&boot_title(&r.name))?;
        self.own_line(&format!("$ {command}"))?;
        if self.options.echo_console {
            let earlier = r.attempts.iter().filter_map(|a| a.log.as_deref());
            let logs: Vec<&Path> = earlier.chain(r.log.as_deref()).collect();
            for (i, log) in logs.iter().enumerate() {
                if logs.len() > 1 {
                    self.own_line(&format!("attempt {}:", i + 1))?;
                }
                let (window, out) = (&mut self.window, &mut self.out);
                if let Err(e) = stream_log(log, &mut |bytes| window.echo(out, bytes)) {
                    self.own_line(&format!("(console log {}: {e})", log.display()))?;
                }
            }
            self.window.echo(&mut self.out, &held.stderr.bytes)?;
            if let Some(note) = held.stderr.dropped_note("QEMU stderr") {
                self.own_line(&note)?;
            }
        }
        self.close_group()
    }

    fn on_failed(&mut self, case: Option<&str>, error: &Error) -> io::Result<()> {
        self.annotated.insert(case.unwrap_or_default().to_string());
        let mut message = error.message.clone();
        if let Some(help) = &error.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        let a = Annotation::new(Level::Error, message);
        let a = self.place(a, error.location.as_ref()).title(title(case));
        self.annotate(a)
    }

    fn on_case_finished(&mut self, r: &CaseResult) -> io::Result<()> {
        let v = &r.verdict;
        let level = match v.outcome {
            Outcome::Pass => return Ok(()),
            Outcome::Error if self.annotated.contains(&r.name) => return Ok(()),
            Outcome::Fail | Outcome::Timeout | Outcome::Error => Level::Error,
            Outcome::Cancelled => Level::Warning,
            Outcome::Skipped => Level::Notice,
        };
        let mut message = format!("{} {}: {}", r.name, v.outcome.name(), v.reason);
        let decided = v.decided_by.as_ref().or_else(|| self.decided.get(&r.name));
        let location = decided.and_then(|m| m.location.clone());
        if let Some(m) = decided {
            message.push_str(&format!("\nconsole line {}: {}", m.line_no, m.line));
        }
        let a = self.place(Annotation::new(level, message), location.as_ref());
        self.annotate(a.title(title(Some(&r.name))))
    }

    fn write_files(&mut self, results: &[CaseResult], exit_code: i32, outcome: Outcome) {
        let step_summary = self
            .env
            .step_summary
            .clone()
            .filter(|_| self.options.summary);
        if step_summary.is_some() || self.summary_file.is_some() {
            let cases: Vec<SummaryCase<'_>> = results
                .iter()
                .map(|result| SummaryCase {
                    result,
                    image: result
                        .image
                        .as_ref()
                        .or_else(|| self.images.get(&result.name)),
                })
                .collect();
            let links = summary::Links {
                blob: self.env.blob_url.clone(),
                workspace: self.env.workspace.clone(),
                cwd: std::env::current_dir().unwrap_or_default(),
                artifact: self.env.artifact.clone(),
            };
            let overflow = self.annotator.overflow();
            let budget = self.options.summary_budget;
            let mut written = Ok(());
            if let Some(path) = &step_summary {
                written = summary::write_summary(path, &cases, overflow, budget, &links);
            }
            if let Some(path) = &self.summary_file {
                let markdown = summary::render_linked(&cases, overflow, budget, &links);
                let copy = crate::prepare::workdir::write_file(path, markdown.as_bytes());
                written = written.and(copy);
            }
            self.keep_error(written);
        }
        if let Some(path) = self.env.output.clone() {
            let o = &self.options;
            let values = outputs::run_outputs(
                results,
                outcome,
                exit_code,
                o.junit.as_deref(),
                o.results_json.as_deref(),
            );
            let entries: Vec<(&str, String)> = values.into_iter().collect();
            self.keep_error(outputs::write_outputs(&path, &entries));
        }
    }

    /// Places an annotation on a file line when the file is inside the workspace (GitHub
    /// drops annotations on other paths); otherwise names the place in the message.
    fn place(&self, mut a: Annotation, location: Option<&Location>) -> Annotation {
        let Some(loc) = location else { return a };
        let cwd = std::env::current_dir().unwrap_or_default();
        match report::repo_path(&loc.path, self.env.workspace.as_deref(), &cwd) {
            Some(file) => a.at(file, loc.line, loc.column),
            None => {
                a.message = format!("{loc}: {}", a.message);
                a
            }
        }
    }

    fn annotate(&mut self, a: Annotation) -> io::Result<()> {
        if !self.options.annotations {
            return Ok(());
        }
        if let Some(a) = self.annotator.admit(a) {
            self.window.end(&mut self.out)?;
            writeln!(self.out, "{a}")?;
        }
        Ok(())
    }

    /// Our own plain text line, outside the window, on one line.
    fn own_line(&mut self, text: &str) -> io::Result<()> {
        self.window.end(&mut self.out)?;
        let flat: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        writeln!(self.out, "{flat}")
    }

    fn open_group(&mut self, title: &str) -> io::Result<()> {
        if self.group.as_deref() == Some(title) {
            return Ok(());
        }
        self.close_group()?;
        commands::group(&mut self.out, title)?;
        self.group = Some(title.to_string());
        Ok(())
    }

    fn close_group(&mut self) -> io::Result<()> {
        self.window.end(&mut self.out)?;
        if self.group.take().is_some() {
            commands::end_group(&mut self.out)?;
        }
        Ok(())
    }

    fn keep_io_error(&mut self, result: io::Result<()>) {
        if let Err(e) = result {
            self.keep_error(Err(Error::infra(format!(
                "cannot write to the Actions log: {e}"
            ))));
        }
    }

    fn keep_error(&mut self, result: Result<(), Error>) {
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
    }
}

impl Reporter for GithubReporter {
    fn event(&mut self, event: &Event<'_>) {
        let result = self.handle(event).and_then(|()| self.out.flush());
        self.keep_io_error(result);
    }

    fn finish(&mut self) -> Result<(), Error> {
        let result = self.close_group().and_then(|()| self.out.flush());
        self.keep_io_error(result);
        self.error.take().map_or(Ok(()), Err)
    }
}

fn boot_title(case: &str) -> String {
    format!("Boot {case}")
}

fn title(case: Option<&str>) -> String {
    match case {
        Some(c) => format!("qemu-test: {c}"),
        None => "qemu-test".to_string(),
    }
}

//! `qemu-test check`: validates QEMU TOMLs, ostool U-Boot configs and suites without booting anything — every pattern
//! compiles, the grammar keys are well-formed, and the lints in [`lint`] find nothing — and with
//! `--log FILE` replays a saved console log through the grammar ([`replay`]).

pub mod lint;
pub mod replay;
mod testsuit;

use std::path::{Path, PathBuf};

use crate::board::UbootConfig;
use crate::config::grammar::GrammarSpec;
use crate::config::qemu::Warning;
use crate::config::{PatternSpec, QemuConfig};
use crate::error::Error;
use crate::plan::{JudgeSource, Suite};
use crate::verdict::Outcome;

/// What to check.
pub struct CheckRequest {
    pub qemu_config: Option<PathBuf>,
    /// ostool's U-Boot config (or a tgoskits board run config).
    pub uboot_config: Option<PathBuf>,
    pub suite: Option<PathBuf>,
    /// tgoskits' test-suit directory: every TOML in it.
    pub test_suit: Option<PathBuf>,
    pub log: Option<PathBuf>,
    /// What a suite's relative paths are relative to, as for `qemu-test run`.
    pub workspace: PathBuf,
}

/// Findings and, with a log, the replay verdict; config errors are returned as `Err`.
pub struct CheckReport {
    pub warnings: Vec<Warning>,
    /// What was not checked and why (not findings): values of a U-Boot config that use a
    /// variable unset here, under `check --test-suit`.
    pub notes: Vec<Warning>,
    pub replays: Vec<(String, replay::Replay)>,
}

impl CheckReport {
    /// 0 when clean, 1 when a replayed log would not pass (warnings do not change it).
    pub fn exit_code(&self) -> i32 {
        let failed = self.replays.iter().any(|(_, r)| r.outcome != Outcome::Pass);
        i32::from(failed)
    }
}

/// One case's grammar as it would be planned.
struct Target {
    name: String,
    success: Vec<PatternSpec>,
    fail: Vec<PatternSpec>,
    grammar: GrammarSpec,
    /// A deadline given outside the grammar (a suite case's `timeout`).
    timeout: Option<std::time::Duration>,
    warnings: Vec<Warning>,
    /// Where `fail_regex` was written (explicitly; `[]` then means none).
    fail_at: Option<crate::error::Location>,
    /// Where the case is defined, for findings about something missing.
    origin: Option<crate::error::Location>,
    /// What was left unchecked ([`CheckReport::notes`]).
    notes: Vec<Warning>,
}

/// Checks the named files; `Err` on the first config error (with its file:line:col).
pub fn check(req: &CheckRequest) -> Result<CheckReport, Error> {
    let (targets, file_warnings) = targets(req)?;
    let mut report = CheckReport {
        warnings: file_warnings,
        notes: match &req.test_suit {
            Some(dir) => testsuit::notes(dir)?,
            None => Vec::new(),
        },
        replays: Vec::new(),
    };
    for t in targets {
        let judge = crate::plan::judge_spec(&JudgeSource {
            success: &t.success,
            fail: &t.fail,
            fail_written_at: t.fail_at.as_ref(),
            grammar: &t.grammar,
            timeout: t.timeout,
        })?;
        let fail: Vec<PatternSpec> = judge.fail.iter().map(|p| p.spec.clone()).collect();
        report.warnings.extend(verdict_rules(&t, &fail));
        report.warnings.extend(t.warnings);
        report.notes.extend(t.notes);
        report.warnings.extend(lint::lint(&lint::LintInput {
            success: &t.success,
            fail: &fail,
            default_fail: judge.default_fail,
            grammar: &t.grammar,
            timeout: judge.timeout,
            origin: t.origin.as_ref(),
        }));
        if let Some(log) = &req.log {
            let r = replay::replay(log, &judge)?;
            report.replays.push((t.name, r));
        }
    }
    Ok(report)
}

/// The cases to check, and the findings about the suite file itself (its unknown keys).
fn targets(req: &CheckRequest) -> Result<(Vec<Target>, Vec<Warning>), Error> {
    if let Some(u) = &req.uboot_config {
        if req.qemu_config.is_some() || req.suite.is_some() {
            return Err(Error::usage(
                "--uboot-config is checked on its own, not with --qemu-config or --suite",
            )
            .help("run qemu-test check once per file"));
        }
        let c = UbootConfig::load(u, &req.workspace)?;
        return Ok((vec![from_uboot(&c, u.display().to_string())], Vec::new()));
    }
    match (&req.qemu_config, &req.suite, &req.test_suit) {
        (Some(q), None, None) => {
            let c = QemuConfig::load(q)?;
            let target = from_config(&c, &GrammarSpec::default(), q.display().to_string());
            Ok((vec![target], Vec::new()))
        }
        (None, Some(s), None) => suite_targets(s, &req.workspace),
        (None, None, Some(dir)) => testsuit::targets(dir),
        _ => Err(Error::usage(
            "check needs exactly one of --qemu-config FILE, --suite FILE or --test-suit DIR",
        )
        .help("e.g. qemu-test check --qemu-config .github/workflows/qemu-aarch64.toml")),
    }
}

/// A U-Boot config's patterns and grammar, checked as a QEMU config's are; values it left
/// unchecked (unset variables) become notes.
fn from_uboot(c: &UbootConfig, name: String) -> Target {
    let (success, fail) = (c.success_regex.clone(), c.fail_regex.clone());
    let t = file_target(name, &c.path, success, fail, c.grammar.clone());
    let notes = match c.unset.first() {
        None => Vec::new(),
        Some(first) => {
            let vars: Vec<String> = c
                .unset
                .iter()
                .map(|v| format!("{} (line {})", v.value, v.location.line))
                .collect();
            vec![Warning {
                location: first.location.clone(),
                message: format!(
                    "values using variables not set here were not checked: {}; set the board \
                     job's variables and run `qemu-test check --uboot-config {}` to check them",
                    vars.join(", "),
                    c.path.display()
                ),
            }]
        }
    };
    Target {
        warnings: c.warnings.clone(),
        fail_at: c.fail_regex_at.clone(),
        notes,
        ..t
    }
}

fn from_config(c: &QemuConfig, over: &GrammarSpec, name: String) -> Target {
    let (success, fail) = (c.success_regex.clone(), c.fail_regex.clone());
    let t = file_target(name, &c.path, success, fail, over.over(&c.grammar));
    Target {
        warnings: c.warnings.clone(),
        fail_at: c.fail_regex_at.clone(),
        ..t
    }
}

/// The target of one config file (QEMU or U-Boot): its patterns and grammar, its first line as
/// the origin.
fn file_target(
    name: String,
    path: &Path,
    success: Vec<PatternSpec>,
    fail: Vec<PatternSpec>,
    grammar: GrammarSpec,
) -> Target {
    Target {
        name,
        success,
        fail,
        timeout: None,
        grammar,
        warnings: Vec::new(),
        fail_at: None,
        origin: Some(crate::error::Location {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
        }),
        notes: Vec::new(),
    }
}

/// Findings about the verdict rules a config would hit (README "How a verdict is reached").
fn verdict_rules(t: &Target, fail: &[PatternSpec]) -> Vec<Warning> {
    let mut out = Vec::new();
    if let Some((true, at)) = &t.grammar.on_reset_pass {
        out.push(Warning {
            location: at.clone(),
            message: "on_reset = \"pass\": a guest reset (a triple fault, a panic that reboots) \
                      will pass this case; keep it only for a test that reboots on purpose"
                .into(),
        });
    }
    if fail.is_empty()
        && let Some(at) = &t.fail_at
    {
        out.push(Warning {
            location: at.clone(),
            message: "no fail patterns: a kernel panic on the console fails nothing (only a \
                      reset or QEMU's exit would); remove `fail_regex = []` for the built-in \
                      default set"
                .into(),
        });
    }
    out
}

/// Each suite case over `[defaults]`, over its QEMU TOML (resolved against the workspace, as
/// `qemu-test run` does); the suite's own patterns replace the TOML's.
fn suite_targets(path: &Path, base: &Path) -> Result<(Vec<Target>, Vec<Warning>), Error> {
    let suite = Suite::load(path)?;
    let suite_warnings = suite
        .warnings
        .iter()
        .map(|(location, message)| Warning {
            location: location.clone(),
            message: message.clone(),
        })
        .collect();
    let mut out = Vec::new();
    for case in &suite.cases {
        let layered = case.over(&suite.defaults);
        let name = layered.name.clone().unwrap_or_default();
        let mut t = match &layered.qemu_config {
            Some(q) => {
                let q = if q.is_absolute() {
                    q.clone()
                } else {
                    base.join(q)
                };
                from_config(&QemuConfig::load(&q)?, &layered.grammar, name)
            }
            None => Target {
                name,
                success: Vec::new(),
                fail: Vec::new(),
                timeout: None,
                grammar: layered.grammar.clone(),
                warnings: Vec::new(),
                fail_at: None,
                origin: None,
                notes: Vec::new(),
            },
        };
        t.origin = layered.location.clone().or(t.origin);
        let at = layered.location.as_ref();
        t.success = crate::plan::judge::patterns(&layered.success_regex, at, &t.success);
        t.fail = crate::plan::judge::patterns(&layered.fail_regex, at, &t.fail);
        t.timeout = layered.timeout;
        out.push(t);
    }
    Ok((out, suite_warnings))
}

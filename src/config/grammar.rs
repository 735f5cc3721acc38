//! The console grammar keys, shared by the QEMU TOML (extra keys ostool ignores) and suite cases:
//! expect/send `steps` (and ostool 0.29's `shell_check_steps`), named `milestones`, test-case
//! extraction (`testcases`/`extract`), built-in `fail_sets`, deadlines (`timeout`,
//! `inactivity_timeout`), typing pace (`send_chunk`, `send_delay`) and `retries`/`retry_on`.
//!
//! tgoskits' axbuild keys become steps too: `shell_prefix` (the prompt, matched literally) with
//! `shell_init_cmd` (typed once at it) and `test_commands` (each typed when the prompt is back),
//! folded into `steps` by [`GrammarSpec::finish`] once the whole table is read (the keys may come
//! in any order), as ostool 0.24 and axbuild read them: the prompt and the init command trimmed
//! (blank = unset), each test command trimmed and none empty, never an init command beside the
//! list. ostool 0.29's `shell_check_steps` inherit `shell_prefix` from earlier entries.
//!
//! Everything is read with its place in the file, so `qemu-test check` and config errors can
//! point at the exact line. Patterns are compiled later, when the case is planned.

use std::time::Duration;

use toml_edit::{Item, TableLike};

use crate::config::field::TomlReader;
use crate::config::source::SourceText;
use crate::error::{Error, Location};

/// One console pattern as written by the user (not yet compiled) and where it came from
/// (`None` = command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternSpec {
    pub regex: String,
    pub location: Option<Location>,
}

/// Most boots again after the first (`retries`, `--retries`, `INPUT_RETRIES`): one range
/// everywhere.
pub const MAX_RETRIES: u32 = 10;

/// The default `max_log_size`: 64 MiB.
pub const DEFAULT_MAX_LOG_SIZE: u64 = 64 << 20;
/// The smallest `max_log_size` accepted (room for a useful head, marker and tail).
pub const MIN_MAX_LOG_SIZE: u64 = 4 << 10;

/// Parses a size: bytes (`1048576`) or with a binary unit (`64M`, `64MiB`, `512K`, `1G`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "\"{text}\" is not a size (use e.g. 64MiB, 512K or 1048576)"
            ));
        }
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a size (use e.g. 64MiB, 512K or 1048576)"))?;
    let bytes = n
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("\"{text}\" is too large"))?;
    if bytes < MIN_MAX_LOG_SIZE {
        return Err(format!(
            "\"{text}\" is below the smallest log size of {} KiB",
            MIN_MAX_LOG_SIZE >> 10
        ));
    }
    Ok(bytes)
}

/// The default `max_core_size`: guests with up to 1 GiB of RAM are dumped.
pub const DEFAULT_MAX_CORE_SIZE: u64 = 1 << 30;

/// When the guest's memory is written as a core file (`core_dump`, `--core-dump`, the
/// `core-dump` input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CoreDump {
    /// Never (the default).
    #[default]
    Off,
    /// When a boot fails while QEMU still runs the guest (a deadline, a fail pattern, a guest
    /// panic).
    OnFail,
}

impl CoreDump {
    /// Parses `off` or `on-fail`.
    pub fn parse(text: &str) -> Option<CoreDump> {
        match text {
            "off" => Some(CoreDump::Off),
            "on-fail" => Some(CoreDump::OnFail),
            _ => None,
        }
    }
}

/// Keys of the grammar, as written in the QEMU TOML (suite files also accept `-` for `_`).
pub const GRAMMAR_KEYS: &[&str] = &[
    "steps",
    "shell_check_steps",
    "milestones",
    "testcases",
    "extract",
    "fail_sets",
    "pattern_sets",
    "timeout",
    "inactivity_timeout",
    "send_chunk",
    "send_delay",
    "retries",
    "retry_on",
    "max_log_size",
    "on_reset",
    "shell_prefix",
    "shell_init_cmd",
    "test_commands",
    "symbols",
    "core_dump",
    "max_core_size",
];

/// One expect/send step: wait for `expect` (also on the unfinished line), then type `send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepSpec {
    pub expect: PatternSpec,
    pub send: Option<String>,
    /// Counted from when the step becomes the current one.
    pub timeout: Option<Duration>,
    /// Patterns that fail the case while this step is waiting.
    pub fail: Vec<PatternSpec>,
    pub location: Location,
}

/// A named point the boot must reach, in order, optionally before `deadline` (since QEMU start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilestoneSpec {
    pub name: String,
    pub pattern: PatternSpec,
    pub deadline: Option<Duration>,
    /// `optional = true`: not reaching it does not fail the case (and its deadline does not
    /// end the boot).
    pub optional: bool,
    pub location: Location,
}

/// What an extracted test case's raw result word means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CaseStatus {
    Pass,
    Fail,
    Skip,
}

impl CaseStatus {
    /// Parses `pass`, `fail` or `skip`.
    pub fn parse(word: &str) -> Option<CaseStatus> {
        match word {
            "pass" => Some(CaseStatus::Pass),
            "fail" => Some(CaseStatus::Fail),
            "skip" => Some(CaseStatus::Skip),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CaseStatus::Pass => "pass",
            CaseStatus::Fail => "fail",
            CaseStatus::Skip => "skip",
        }
    }
}

/// One LAVA-style test-case extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtractSpec {
    /// Needs named groups `test_case_id` and `result`; may have `measurement` and `units`.
    pub pattern: PatternSpec,
    /// Raw result text → status, consulted before the built-in words.
    pub results: Vec<(String, CaseStatus)>,
    /// Status of a raw result that neither `results` nor the built-in words know.
    pub otherwise: CaseStatus,
    /// Case ids that must appear (missing ⇒ fail; others ⇒ fail as unexpected).
    pub expected: Vec<(String, Location)>,
    /// Whether a failed, missing or unexpected case fails the verdict (default true).
    pub affects_verdict: bool,
    pub location: Location,
}

/// The grammar as written; every field empty/`None` when not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrammarSpec {
    pub steps: Vec<StepSpec>,
    pub milestones: Vec<MilestoneSpec>,
    pub extract: Vec<ExtractSpec>,
    /// Names of built-in fail pattern sets, each with where it was written.
    pub fail_sets: Vec<(String, Location)>,
    /// Whole-boot deadline (ostool's `timeout`, seconds there; ostool 0.24.1, tgoskits' lock,
    /// has it).
    pub timeout: Option<Duration>,
    pub inactivity_timeout: Option<Duration>,
    pub send_chunk: Option<usize>,
    pub send_delay: Option<Duration>,
    pub retries: Option<u32>,
    pub retry_on: Vec<String>,
    /// Bytes of console log kept on disk (head and tail; the judge sees everything).
    pub max_log_size: Option<u64>,
    /// `on_reset = "pass"` (true) or `"fail"` (false, the default), with where it was written.
    pub on_reset_pass: Option<(bool, Location)>,
    /// Symbol files (ELF or `System.map`) that name the vCPUs' addresses when a boot fails,
    /// absolute (`symbols` is relative to the file it is written in; `--symbols` to the
    /// current directory).
    pub symbols: Vec<std::path::PathBuf>,
    /// `core_dump = "on-fail"`: a failed boot leaves the guest's memory as a core file.
    pub core_dump: Option<CoreDump>,
    /// The largest guest RAM dumped (`max_core_size`).
    pub max_core_size: Option<u64>,
    /// axbuild's prompt keys, until [`GrammarSpec::finish`] turns them into steps.
    pub shell: ShellKeys,
}

/// axbuild's `shell_prefix`, `shell_init_cmd` and `test_commands`, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShellKeys {
    pub prefix: Option<(String, Location)>,
    pub init_cmd: Option<(String, Location)>,
    pub test_commands: Vec<(String, Location)>,
}

impl GrammarSpec {
    /// `self` over `lower`, key by key (a suite case over the QEMU TOML).
    pub fn over(&self, lower: &GrammarSpec) -> GrammarSpec {
        fn list<T: Clone>(top: &[T], low: &[T]) -> Vec<T> {
            if top.is_empty() { low } else { top }.to_vec()
        }
        GrammarSpec {
            steps: list(&self.steps, &lower.steps),
            milestones: list(&self.milestones, &lower.milestones),
            extract: list(&self.extract, &lower.extract),
            fail_sets: list(&self.fail_sets, &lower.fail_sets),
            timeout: self.timeout.or(lower.timeout),
            inactivity_timeout: self.inactivity_timeout.or(lower.inactivity_timeout),
            send_chunk: self.send_chunk.or(lower.send_chunk),
            send_delay: self.send_delay.or(lower.send_delay),
            retries: self.retries.or(lower.retries),
            retry_on: list(&self.retry_on, &lower.retry_on),
            max_log_size: self.max_log_size.or(lower.max_log_size),
            on_reset_pass: self.on_reset_pass.clone().or(lower.on_reset_pass.clone()),
            symbols: list(&self.symbols, &lower.symbols),
            core_dump: self.core_dump.or(lower.core_dump),
            max_core_size: self.max_core_size.or(lower.max_core_size),
            shell: ShellKeys::default(),
        }
    }

    /// Turns `shell_prefix` + `shell_init_cmd` + `test_commands` into steps placed before the
    /// explicit ones: wait for the prompt, type the init command (none when empty); then for each
    /// test command wait for the prompt again (searched after the previous match, so it is the
    /// prompt that comes back) and type it. A command without a prompt is an error.
    pub fn finish(&mut self) -> Result<(), Error> {
        let shell = std::mem::take(&mut self.shell);
        if let (Some((cmd, _)), Some((_, at))) = (&shell.init_cmd, shell.test_commands.first())
            && !cmd.is_empty()
        {
            return Err(Error::config(
                "`test_commands` and `shell_init_cmd` are both set: axbuild refuses such a config \
                 (one command typed at the prompt, or the list)",
            )
            .at(at.clone())
            .help("put the init command first in `test_commands` and remove `shell_init_cmd`"));
        }
        let Some((prefix, prefix_at)) = shell.prefix.filter(|(p, _)| !p.is_empty()) else {
            let orphan = shell
                .init_cmd
                .as_ref()
                .filter(|(c, _)| !c.is_empty())
                .map(|(_, at)| ("shell_init_cmd", at))
                .or_else(|| {
                    shell
                        .test_commands
                        .first()
                        .map(|(_, at)| ("test_commands", at))
                });
            if let Some((key, at)) = orphan {
                return Err(Error::config(format!(
                    "`{key}` needs `shell_prefix`: the prompt to wait for before typing"
                ))
                .at(at.clone())
                .help(
                    "add `shell_prefix = \"~ #\"` (the guest shell's prompt, matched literally)",
                ));
            }
            return Ok(());
        };
        let prompt = |send: Option<String>, at: &Location| StepSpec {
            expect: PatternSpec {
                regex: regex::escape(&prefix),
                location: Some(prefix_at.clone()),
            },
            send,
            timeout: None,
            fail: Vec::new(),
            location: at.clone(),
        };
        // Each command is typed at a prompt: the first at the first one (axbuild's grouped
        // cases have `test_commands` and no `shell_init_cmd`; it refuses both), and with no
        // command at all the prompt is only waited for.
        let init = shell.init_cmd.filter(|(c, _)| !c.is_empty());
        let mut steps: Vec<StepSpec> = init
            .iter()
            .chain(&shell.test_commands)
            .map(|(cmd, at)| prompt(Some(format!("{cmd}\n")), at))
            .collect();
        if steps.is_empty() {
            steps.push(prompt(None, &prefix_at));
        }
        steps.append(&mut self.steps);
        self.steps = steps;
        Ok(())
    }

    /// Reads one grammar key; `Ok(false)` when `key` is not a grammar key.
    pub fn read_key(&mut self, key: &str, item: &Item, src: &SourceText) -> Result<bool, Error> {
        let r = TomlReader { src };
        match key.replace('-', "_").as_str() {
            "steps" => self
                .steps
                .extend(r.tables(item, key, |t, at| r.step(t, at))?),
            "shell_check_steps" => {
                let mut prompt: Option<PatternSpec> = None;
                for entry in r.tables(item, key, |t, at| r.shell_step(t, at))? {
                    self.steps.extend(entry.steps(&mut prompt)?);
                }
            }
            // ostool trims both and reads a blank one as unset; axbuild trims each test
            // command and refuses an empty one.
            "shell_prefix" => {
                self.shell.prefix = Some((r.string(item, key)?.trim().to_string(), r.at(item)))
            }
            "shell_init_cmd" => {
                self.shell.init_cmd = Some((r.string(item, key)?.trim().to_string(), r.at(item)))
            }
            "test_commands" => {
                self.shell.test_commands = r
                    .strings(item, key)?
                    .into_iter()
                    .map(|(cmd, at)| non_empty_command(cmd, at))
                    .collect::<Result<_, _>>()?
            }
            "milestones" => self.milestones = r.tables(item, key, |t, at| r.milestone(t, at))?,
            "testcases" | "extract" => self
                .extract
                .extend(r.tables(item, key, |t, at| r.extractor(t, at))?),
            "fail_sets" | "pattern_sets" => self.fail_sets = r.strings(item, key)?,
            "timeout" if item.as_integer() == Some(0) => {
                return Err(Error::config(
                    "`timeout = 0` is no deadline to ostool, but a qemu-test boot always has one",
                )
                .at(r.at(item))
                .help(
                    "give the longest the boot may take (`timeout = 600`, in seconds), or remove \
                     the key for the default",
                ));
            }
            "timeout" => self.timeout = Some(r.duration(item, key)?),
            "inactivity_timeout" => self.inactivity_timeout = Some(r.duration(item, key)?),
            "send_chunk" => self.send_chunk = Some(r.integer(item, key, 1, 4096)? as usize),
            "send_delay" => self.send_delay = Some(r.duration(item, key)?),
            "retries" => {
                self.retries = Some(r.integer(item, key, 0, MAX_RETRIES.into())? as u32);
            }
            "max_log_size" => self.max_log_size = Some(r.size(item, key)?),
            "max_core_size" => self.max_core_size = Some(r.size(item, key)?),
            "core_dump" => {
                let at = r.at(item);
                let text = r.string(item, key)?;
                self.core_dump = Some(CoreDump::parse(&text).ok_or_else(|| {
                    Error::config(format!(
                        "`core_dump = \"{text}\"`: expected \"on-fail\" or \"off\""
                    ))
                    .at(at)
                    .help("`core_dump = \"on-fail\"` writes the guest's memory as `<case>.core.gz` next to the console log when a boot fails")
                })?);
            }
            "symbols" => {
                let dir = src.path.parent().unwrap_or(std::path::Path::new("."));
                for (file, at) in r.strings(item, key)? {
                    let path = dir.join(&file);
                    if !path.is_file() {
                        return Err(Error::config(format!(
                            "symbol file `{file}` not found ({})",
                            path.display()
                        ))
                        .at(at)
                        .help("`symbols = [\"kernel.elf\", \"System.map\"]`: ELF or System.map files, relative to this file; they name the vCPUs' addresses when a boot fails"));
                    }
                    self.symbols.push(path);
                }
            }
            "retry_on" => {
                let classes = r.strings(item, key)?;
                for (c, at) in &classes {
                    if !RETRY_CLASSES.contains(&c.as_str()) {
                        return Err(Error::config(format!("unknown retry class `{c}`"))
                            .at(at.clone())
                            .help("use `retry_on = [\"infra\", \"timeout\"]` (any of: infra, timeout, fail)"));
                    }
                }
                self.retry_on = classes.into_iter().map(|(c, _)| c).collect();
            }
            "on_reset" => {
                let at = r.at(item);
                self.on_reset_pass = match r.string(item, key)?.as_str() {
                    "pass" => Some((true, at)),
                    "fail" => Some((false, at)),
                    other => {
                        return Err(Error::config(format!(
                            "`on_reset = \"{other}\"`: expected \"pass\" or \"fail\""
                        ))
                        .at(at)
                        .help("`on_reset = \"pass\"` when the test reboots the guest on purpose; the default \"fail\" treats a guest reset as a failure"));
                    }
                };
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// One `shell_check_steps` entry as written.
struct ShellCheck {
    prefix: Option<PatternSpec>,
    cmd: Option<String>,
    success: Vec<PatternSpec>,
    fail: Vec<PatternSpec>,
    timeout: Option<Duration>,
    at: Location,
}

impl ShellCheck {
    /// The entry as steps: wait for the prompt (its own `shell_prefix`, else the latest earlier
    /// one, matched literally) and type `shell_cmd`; then wait for `success_regex` (several
    /// patterns: any of them) with `fail_regex` active. Both share `timeout`.
    fn steps(self, prompt: &mut Option<PatternSpec>) -> Result<Vec<StepSpec>, Error> {
        if let Some(p) = self.prefix {
            *prompt = Some(p);
        }
        let mut steps = Vec::new();
        if let Some(cmd) = self.cmd {
            let Some(expect) = prompt.clone() else {
                return Err(Error::config(
                    "the first shell_check_steps entry with `shell_cmd` needs `shell_prefix`",
                )
                .at(self.at)
                .help("add `shell_prefix = \"~ #\"`: later entries inherit it"));
            };
            // `fail_regex` guards the command's output, not the wait for the prompt (text
            // before the command was typed is not its result).
            steps.push(StepSpec {
                expect,
                send: Some(format!("{cmd}\n")),
                timeout: self.timeout,
                fail: Vec::new(),
                location: self.at.clone(),
            });
        }
        if let Some(first) = self.success.first() {
            let expect = if self.success.len() == 1 {
                first.clone()
            } else {
                let alternatives: Vec<String> = self
                    .success
                    .iter()
                    .map(|p| format!("(?:{})", p.regex))
                    .collect();
                PatternSpec {
                    regex: alternatives.join("|"),
                    location: first.location.clone(),
                }
            };
            steps.push(StepSpec {
                expect,
                send: None,
                timeout: self.timeout,
                fail: self.fail,
                location: self.at,
            });
        }
        Ok(steps)
    }
}

/// One `test_commands` entry, trimmed as axbuild trims it; an empty one is an error, as there.
fn non_empty_command(cmd: String, at: Location) -> Result<(String, Location), Error> {
    let cmd = cmd.trim();
    if cmd.is_empty() {
        return Err(Error::config("`test_commands` has an empty command")
            .at(at)
            .help("remove the empty entry (axbuild refuses it too)"));
    }
    Ok((cmd.to_string(), at))
}

/// Verdict classes a retry may be allowed for.
pub const RETRY_CLASSES: &[&str] = &["infra", "timeout", "fail"];

/// Reads of the grammar's own tables, on top of the shared typed reader.
impl TomlReader<'_> {
    /// A byte size: an integer or a string with a binary unit (`"64MiB"`).
    fn size(&self, item: &Item, key: &str) -> Result<u64, Error> {
        let text = match item.as_integer() {
            Some(n) => n.to_string(),
            None => self.string(item, key)?,
        };
        parse_size(&text).map_err(|e| {
            Error::config(format!("`{key}`: {e}"))
                .at(self.at(item))
                .help(format!(
                    "write it as `{key} = \"64MiB\"` (K, M, G) or a number of bytes"
                ))
        })
    }

    fn pattern(&self, item: &Item, key: &str) -> Result<PatternSpec, Error> {
        Ok(PatternSpec {
            regex: self.string(item, key)?,
            location: Some(self.at(item)),
        })
    }

    fn patterns(&self, item: &Item, key: &str) -> Result<Vec<PatternSpec>, Error> {
        Ok(self
            .strings(item, key)?
            .into_iter()
            .map(|(regex, at)| PatternSpec {
                regex,
                location: Some(at),
            })
            .collect())
    }

    fn step(&self, t: &dyn TableLike, at: Location) -> Result<StepSpec, Error> {
        self.only(t, &["expect", "send", "timeout", "fail"], "a step")?;
        Ok(StepSpec {
            expect: self.pattern(self.required(t, "expect", "a step", &at)?, "expect")?,
            send: self
                .field(t, "send")
                .map(|i| self.string(i, "send"))
                .transpose()?,
            timeout: self.opt_duration(t, "timeout")?,
            fail: match self.field(t, "fail") {
                Some(i) => self.patterns(i, "fail")?,
                None => Vec::new(),
            },
            location: at,
        })
    }

    /// One `shell_check_steps` entry (ostool 0.29), read; see [`ShellCheck::steps`].
    fn shell_step(&self, t: &dyn TableLike, at: Location) -> Result<ShellCheck, Error> {
        let what = "a shell_check_steps entry";
        self.only(
            t,
            &[
                "shell_prefix",
                "shell_cmd",
                "success_regex",
                "fail_regex",
                "timeout",
            ],
            what,
        )?;
        let prefix = match self.field(t, "shell_prefix") {
            Some(i) => Some(PatternSpec {
                regex: regex::escape(&self.string(i, "shell_prefix")?),
                location: Some(self.at(i)),
            }),
            None => None,
        };
        let cmd = self
            .field(t, "shell_cmd")
            .map(|i| self.string(i, "shell_cmd"))
            .transpose()?;
        let success = match self.field(t, "success_regex") {
            Some(i) => self.patterns(i, "success_regex")?,
            None => Vec::new(),
        };
        if cmd.is_none() && success.is_empty() {
            return Err(Error::config(format!(
                "{what} needs `shell_cmd` or `success_regex`"
            ))
            .at(at)
            .help("add `shell_cmd = \"...\"` (typed at the prompt) and/or `success_regex = \"...\"`"));
        }
        Ok(ShellCheck {
            prefix,
            cmd,
            success,
            fail: match self.field(t, "fail_regex") {
                Some(i) => self.patterns(i, "fail_regex")?,
                None => Vec::new(),
            },
            timeout: self.opt_duration(t, "timeout")?,
            at,
        })
    }

    fn milestone(&self, t: &dyn TableLike, at: Location) -> Result<MilestoneSpec, Error> {
        let what = "a milestone";
        self.only(t, &["name", "pattern", "deadline", "optional"], what)?;
        Ok(MilestoneSpec {
            name: self.string(self.required(t, "name", what, &at)?, "name")?,
            pattern: self.pattern(self.required(t, "pattern", what, &at)?, "pattern")?,
            deadline: self.opt_duration(t, "deadline")?,
            optional: match self.field(t, "optional") {
                Some(i) => self.boolean(i, "optional")?,
                None => false,
            },
            location: at,
        })
    }

    fn extractor(&self, t: &dyn TableLike, at: Location) -> Result<ExtractSpec, Error> {
        let what = "a test-case extractor";
        self.only(
            t,
            &[
                "pattern",
                "results",
                "otherwise",
                "expected",
                "affects_verdict",
            ],
            what,
        )?;
        let pattern = self.pattern(self.required(t, "pattern", what, &at)?, "pattern")?;
        Ok(ExtractSpec {
            pattern,
            results: match self.field(t, "results") {
                Some(i) => self.results(i)?,
                None => Vec::new(),
            },
            otherwise: match self.field(t, "otherwise") {
                Some(i) => self.status(i, "otherwise")?,
                None => CaseStatus::Fail,
            },
            expected: match self.field(t, "expected") {
                Some(i) => self.strings(i, "expected")?,
                None => Vec::new(),
            },
            affects_verdict: match self.field(t, "affects_verdict") {
                Some(i) => self.boolean(i, "affects_verdict")?,
                None => true,
            },
            location: at,
        })
    }

    fn status(&self, item: &Item, key: &str) -> Result<CaseStatus, Error> {
        let word = self.string(item, key)?;
        CaseStatus::parse(&word).ok_or_else(|| {
            self.wrong(
                self.at(item),
                key,
                "one of pass, fail, skip",
                &format!("`{key} = \"fail\"`"),
            )
        })
    }

    /// `results = { "0" = "pass", PASSED = "pass", "not ok" = "fail" }`.
    fn results(&self, item: &Item) -> Result<Vec<(String, CaseStatus)>, Error> {
        let Some(t) = item.as_table_like() else {
            return Err(self.wrong(
                self.at(item),
                "results",
                "a table from raw result text to pass, fail or skip",
                "`results = { PASSED = \"pass\", FAILED = \"fail\" }`",
            ));
        };
        t.iter()
            .map(|(raw, v)| Ok((raw.to_string(), self.status(v, raw)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert!(
            parse_size("12 parsecs")
                .unwrap_err()
                .contains("is not a size")
        );
        assert!(parse_size("1K").unwrap_err().contains("below the smallest"));
    }

    #[test]
    fn core_dump_is_on_fail_or_off_and_a_bad_word_is_located() {
        let g = read("core_dump = \"on-fail\"\nmax-core-size = \"256MiB\"\n").unwrap();
        assert_eq!(g.core_dump, Some(CoreDump::OnFail));
        assert_eq!(g.max_core_size, Some(256 << 20));
        assert_eq!(
            read("core-dump = \"off\"\n").unwrap().core_dump,
            Some(CoreDump::Off)
        );
        let e = read("\ncore_dump = \"always\"\n").unwrap_err();
        assert!(
            e.message.contains("expected \"on-fail\" or \"off\""),
            "{e:?}"
        );
        assert_eq!(e.location.as_ref().unwrap().line, 2, "{e:?}");
    }

    #[test]
    fn max_log_size_takes_bytes_or_a_unit_and_names_a_bad_value() {
        assert_eq!(
            read("max_log_size = 1048576\n").unwrap().max_log_size,
            Some(1 << 20)
        );
        assert_eq!(
            read("max-log-size = \"64MiB\"\n").unwrap().max_log_size,
            Some(64 << 20)
        );
        let e = read("\nmax_log_size = \"lots\"\n").unwrap_err();
        assert!(
            e.message
                .starts_with("`max_log_size`: \"lots\" is not a size"),
            "{e}"
        );
        assert_eq!(e.location.unwrap().line, 2);
    }

    fn read(text: &str) -> Result<GrammarSpec, Error> {
        let src = SourceText::new(Path::new("g.toml"), text.to_string());
        let doc = toml_edit::Document::parse(text.to_string()).expect("toml");
        let mut g = GrammarSpec::default();
        for (k, item) in doc.iter() {
            assert!(g.read_key(k, item, &src)?, "{k}");
        }
        Ok(g)
    }

    #[test]
    fn reads_steps_milestones_and_extractors_with_locations() {
        let g = read(
            "timeout = 60\nfail_sets = [\"linux\"]\n\
             [[steps]]\nexpect = \">> \"\nsend = \"usertests\\n\"\ntimeout = \"30s\"\n\
             [[milestones]]\nname = \"up\"\npattern = 'VM\\[1\\] boot success'\ndeadline = \"20s\"\n\
             [[testcases]]\npattern = \"x\"\nresults = { \"0\" = \"pass\" }\nexpected = [\"a\"]\n",
        )
        .unwrap();
        assert_eq!(g.timeout, Some(Duration::from_secs(60)));
        assert_eq!(g.steps[0].send.as_deref(), Some("usertests\n"));
        assert_eq!(g.steps[0].timeout, Some(Duration::from_secs(30)));
        assert_eq!(g.steps[0].expect.location.as_ref().unwrap().line, 4);
        assert_eq!(g.milestones[0].pattern.regex, r"VM\[1\] boot success");
        assert_eq!(g.extract[0].results, [("0".to_string(), CaseStatus::Pass)]);
        assert_eq!(g.extract[0].otherwise, CaseStatus::Fail);
        assert_eq!(g.fail_sets[0].0, "linux");
    }

    /// Each step as (expect, send).
    fn expect_send(g: &GrammarSpec) -> Vec<(&str, Option<&str>)> {
        g.steps
            .iter()
            .map(|s| (s.expect.regex.as_str(), s.send.as_deref()))
            .collect()
    }

    fn read_finished(text: &str) -> Result<GrammarSpec, Error> {
        let mut g = read(text)?;
        g.finish()?;
        Ok(g)
    }

    #[test]
    fn shell_prefix_init_cmd_and_test_commands_become_prompt_steps() {
        let g = read_finished(
            "shell_init_cmd = \"pwd && echo 'guest test pass!'\"\nshell_prefix = \"~ #\"\n\
             [[steps]]\nexpect = \"done\"\n",
        )
        .unwrap();
        assert_eq!(
            expect_send(&g),
            [
                ("\\~ \\#", Some("pwd && echo 'guest test pass!'\n")),
                ("done", None),
            ]
        );
        assert_eq!(g.steps[0].expect.location.as_ref().unwrap().line, 2);
        assert_eq!(g.steps[0].location.line, 1);
        let g = read_finished(
            "test_commands = [\"ls /\", \"for i in 1 2; do\\n echo $i\\ndone\"]\n\
             shell_prefix = \"~ #\"\n",
        )
        .unwrap();
        assert_eq!(
            expect_send(&g),
            [
                ("\\~ \\#", Some("ls /\n")),
                ("\\~ \\#", Some("for i in 1 2; do\n echo $i\ndone\n")),
            ]
        );
        assert_eq!(g.steps[1].location.line, 1);
        // Without an init command (axbuild's grouped cases), the first command is typed at
        // the first prompt: nothing waits for a prompt that only a typed line would bring back.
        let g = read_finished("shell_prefix = \"root@starry:\"\ntest_commands = [\"a\", \"b\"]\n")
            .unwrap();
        assert_eq!(
            expect_send(&g),
            [("root@starry:", Some("a\n")), ("root@starry:", Some("b\n"))]
        );
        // An empty init command only waits for the prompt (AxVisor's loongarch64 case).
        let g = read_finished("shell_prefix = \"axvisor:$\"\nshell_init_cmd = \"\"\n").unwrap();
        assert_eq!(g.steps.len(), 1);
        assert_eq!(
            (g.steps[0].expect.regex.as_str(), g.steps[0].send.as_deref()),
            ("axvisor:\\$", None)
        );
        let e = read_finished("shell_init_cmd = \"pwd\"\n").unwrap_err();
        assert_eq!(
            e.message,
            "`shell_init_cmd` needs `shell_prefix`: the prompt to wait for before typing"
        );
        assert_eq!(e.location.unwrap().line, 1);
    }

    /// The prompt keys as ostool 0.24 and axbuild read them: `shell_prefix` and
    /// `shell_init_cmd` trimmed (a blank one unset), each test command trimmed and none empty,
    /// `shell_init_cmd` and `test_commands` never both; `timeout = 0` (ostool: no deadline) is
    /// an error saying so, not a duration error.
    #[test]
    fn prompt_keys_are_read_as_ostool_and_axbuild_read_them() {
        let g = read_finished(
            "shell_prefix = \" root@starry:~# \"\nshell_init_cmd = \"  echo hi \\n\"\n",
        )
        .unwrap();
        assert_eq!(expect_send(&g), [("root@starry:\\~\\#", Some("echo hi\n"))]);
        let g =
            read_finished("shell_prefix = \"~ #\"\ntest_commands = [\" a \", \"b\\n\"]\n").unwrap();
        assert_eq!(
            expect_send(&g),
            [("\\~ \\#", Some("a\n")), ("\\~ \\#", Some("b\n"))]
        );
        // A blank init command without a prompt is no command (ostool: unset).
        assert!(
            read_finished("shell_init_cmd = \" \"\n")
                .unwrap()
                .steps
                .is_empty()
        );
        // A blank prompt is none: the command has nothing to wait for.
        let e = read_finished("shell_prefix = \" \"\nshell_init_cmd = \"pwd\"\n").unwrap_err();
        assert!(
            e.message
                .starts_with("`shell_init_cmd` needs `shell_prefix`"),
            "{e}"
        );
        let e =
            read_finished("shell_prefix = \"~ #\"\ntest_commands = [\"a\", \" \"]\n").unwrap_err();
        assert_eq!(e.message, "`test_commands` has an empty command");
        assert_eq!(e.location.map(|l| (l.line, l.column)), Some((2, 23)));
        let e = read_finished(
            "shell_prefix = \"~ #\"\nshell_init_cmd = \"pwd\"\ntest_commands = [\"a\"]\n",
        )
        .unwrap_err();
        assert!(
            e.message
                .starts_with("`test_commands` and `shell_init_cmd` are both set: axbuild refuses"),
            "{e}"
        );
        assert_eq!(e.location.map(|l| l.line), Some(3));
        // An empty init command with the list is what axbuild accepts (it is unset there).
        let g = read_finished(
            "shell_prefix = \"~ #\"\nshell_init_cmd = \"\"\ntest_commands = [\"a\"]\n",
        )
        .unwrap();
        assert_eq!(expect_send(&g), [("\\~ \\#", Some("a\n"))]);
        let e = read("timeout = 0\n").unwrap_err();
        assert_eq!(
            e.message,
            "`timeout = 0` is no deadline to ostool, but a qemu-test boot always has one"
        );
        assert_eq!(
            read("timeout = 300\n").unwrap().timeout,
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn ostool_029_shell_check_steps_inherit_the_prompt() {
        let g = read(
            "[[shell_check_steps]]\nshell_prefix = \"~ #\"\nshell_cmd = \"a\"\n\
             success_regex = [\"(?m)^A$\", \"AA\"]\nfail_regex = [\"bad\"]\ntimeout = 7\n\
             [[shell_check_steps]]\nshell_cmd = \"b\"\nsuccess_regex = \"B\"\n",
        )
        .unwrap();
        let shown = expect_send(&g);
        assert_eq!(
            shown,
            [
                ("\\~ \\#", Some("a\n")),
                ("(?:(?m)^A$)|(?:AA)", None),
                ("\\~ \\#", Some("b\n")),
                ("B", None),
            ]
        );
        assert_eq!(g.steps[1].fail[0].regex, "bad");
        assert_eq!(g.steps[0].timeout, Some(Duration::from_secs(7)));
        assert_eq!(g.steps[3].timeout, None);
        let e = read("[[shell_check_steps]]\nshell_cmd = \"a\"\n").unwrap_err();
        assert!(e.message.contains("needs `shell_prefix`"), "{e}");
        let e = read("[[shell_check_steps]]\nshell_prefx = \"a\"\n").unwrap_err();
        assert!(e.message.contains("did you mean `shell_prefix`"), "{e}");
    }

    #[test]
    fn shell_check_steps_become_two_steps() {
        let g = read(
            "shell_check_steps = [{ shell_prefix = \">> \", shell_cmd = \"usertests\", \
             success_regex = \"passed!\", fail_regex = \"FAIL\", timeout = 5 }]\n",
        )
        .unwrap();
        assert_eq!(g.steps.len(), 2);
        assert_eq!(g.steps[0].expect.regex, ">> ");
        assert_eq!(g.steps[0].send.as_deref(), Some("usertests\n"));
        assert_eq!(g.steps[1].expect.regex, "passed!");
        assert_eq!(g.steps[1].fail[0].regex, "FAIL");
        assert_eq!(g.steps[1].timeout, Some(Duration::from_secs(5)));
    }

    #[test]
    fn mistakes_name_the_place_and_fix() {
        let e = read("[[steps]]\nexpct = \"x\"\n").unwrap_err();
        assert!(e.message.contains("did you mean `expect`"), "{e}");
        assert_eq!(e.location.unwrap().line, 2);
        let e = read("[[steps]]\nsend = \"x\"\n").unwrap_err();
        assert!(e.message.contains("a step needs `expect`"), "{e}");
        let e = read("retry_on = [\"timeout\", \"oops\"]\n").unwrap_err();
        assert!(e.message.contains("unknown retry class `oops`"), "{e}");
        let e = read("[[testcases]]\npattern = \"x\"\notherwise = \"maybe\"\n").unwrap_err();
        assert!(e.message.contains("one of pass, fail, skip"), "{e}");
        let e = read("inactivity_timeout = \"soon\"\n").unwrap_err();
        assert!(e.message.starts_with("`inactivity_timeout`"), "{e}");
    }

    #[test]
    fn on_reset_and_optional_milestones() {
        let g = read(
            "on_reset = \"pass\"\n[[milestones]]\nname = \"m\"\npattern = \"x\"\noptional = true\n",
        )
        .unwrap();
        let (pass, at) = g.on_reset_pass.clone().unwrap();
        assert!(pass);
        assert_eq!((at.line, at.column), (1, 12));
        assert!(g.milestones[0].optional);
        assert!(
            !read("on_reset = \"fail\"\n")
                .unwrap()
                .on_reset_pass
                .unwrap()
                .0
        );
        let e = read("\non_reset = \"reboot\"\n").unwrap_err();
        assert_eq!(
            e.message,
            "`on_reset = \"reboot\"`: expected \"pass\" or \"fail\""
        );
        let at = e.location.unwrap();
        assert_eq!((at.line, at.column), (2, 12));
        assert!(e.help.unwrap().contains("on_reset = \"pass\""));
    }
}

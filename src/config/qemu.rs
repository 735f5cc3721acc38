//! The QEMU TOML, read exactly as ostool 0.8 reads it (`args`, `uefi`, `to_bin`,
//! `success_regex`, `fail_regex`), with defaults for missing keys and a warning for unknown ones.
//!
//! Differences from ostool, all in the direction of catching mistakes earlier:
//! - every key is optional (ostool requires all five): `args = []`, `uefi = false`,
//!   `to_bin = false`, empty pattern lists;
//! - an unknown key close to a known one (`succes_regex`, `timout`) is an error at its
//!   line:column with a did-you-mean suggestion (ostool silently ignores it, so the typo would
//!   disable the check unnoticed); any other unknown key is a [`Warning`];
//! - a `${...}` in `args` that is neither `${workspaceFolder}` nor `${env:NAME}` is a warning
//!   (it reaches QEMU as written, as with ostool);
//! - our extension key `no_reboot` (default `true`): see [`crate::qemu::command`];
//! - our extension key `qemu`: the QEMU binary to run instead of `qemu-system-<arch>` from
//!   `PATH` (e.g. a build with LoongArch LVZ), `${workspace}` substituted;
//! - the console grammar keys (`steps`, `milestones`, `testcases`, `fail_sets`, `timeout`, …):
//!   see [`crate::config::grammar`].
//!
//! Keys are described by the [`KEYS`] table; a later key (a timeout, expect steps) is one more
//! row and one reader function.

use std::path::{Path, PathBuf};

use crate::config::field::{self, Field};
use crate::config::grammar::{GRAMMAR_KEYS, GrammarSpec, PatternSpec};
use crate::config::host_http::HostHttpSpec;
use crate::config::source::SourceText;
use crate::config::vars;
use crate::error::{Error, Location};

/// One QEMU argument and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgSpec {
    pub value: String,
    pub location: Option<Location>,
}

/// A non-fatal finding about a config file (an unknown key, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub location: Location,
    pub message: String,
}

impl std::fmt::Display for Warning {
    /// `file:line:col: warning: message`, the shape compilers use, so editors can jump to it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: warning: {}", self.location, self.message)
    }
}

/// A parsed QEMU TOML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuConfig {
    pub path: PathBuf,
    pub args: Vec<ArgSpec>,
    pub uefi: bool,
    pub to_bin: bool,
    pub success_regex: Vec<PatternSpec>,
    pub fail_regex: Vec<PatternSpec>,
    /// Where `fail_regex` is written, when it is (`fail_regex = []` then means "none", and the
    /// built-in default fail set does not apply).
    pub fail_regex_at: Option<Location>,
    /// Our extension: add `-no-reboot` (default true) so a reset ends QEMU instead of looping.
    pub no_reboot: bool,
    /// Our extension: the QEMU binary (path or name) instead of `qemu-system-<arch>`.
    pub qemu: Option<ArgSpec>,
    /// Console grammar extension keys (steps, milestones, extraction, …).
    pub grammar: GrammarSpec,
    /// tgoskits' `[host_http_server]`: served to the guest while the case runs.
    pub host_http_server: Option<HostHttpSpec>,
    pub warnings: Vec<Warning>,
}

/// A key the QEMU TOML may contain and how its value is stored.
struct KeySpec {
    name: &'static str,
    read: fn(&mut QemuConfig, &Field<'_>) -> Result<(), Error>,
}

/// Every key we understand, in the order of the docs.
const KEYS: &[KeySpec] = &[
    KeySpec {
        name: "args",
        read: read_args,
    },
    KeySpec {
        name: "uefi",
        read: read_uefi,
    },
    KeySpec {
        name: "to_bin",
        read: read_to_bin,
    },
    KeySpec {
        name: "success_regex",
        read: read_success,
    },
    KeySpec {
        name: "fail_regex",
        read: read_fail,
    },
    KeySpec {
        name: "no_reboot",
        read: read_no_reboot,
    },
    KeySpec {
        name: "qemu",
        read: read_qemu,
    },
    KeySpec {
        name: "host_http_server",
        read: read_host_http,
    },
];

impl QemuConfig {
    /// Reads and parses a QEMU TOML file.
    pub fn load(path: &Path) -> Result<QemuConfig, Error> {
        let text = crate::config::source::read_input(path, "QEMU config")?;
        Self::parse(path, &text)
    }

    /// Parses QEMU TOML text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<QemuConfig, Error> {
        let source = SourceText::new(path, text.to_string());
        let doc = toml_edit::Document::parse(text).map_err(|e| syntax_error(&source, &e))?;
        let mut config = QemuConfig::defaults(path);
        for (key, item) in doc.iter() {
            let key_location = doc
                .key(key)
                .and_then(|k| k.span())
                .map_or_else(|| source.location(0), |s| source.location(s.start));
            match KEYS.iter().find(|k| k.name == key) {
                Some(spec) => (spec.read)(
                    &mut config,
                    &Field {
                        key,
                        item,
                        key_location,
                        source: &source,
                    },
                )?,
                None => {
                    if !config.grammar.read_key(key, item, &source)? {
                        config.warnings.push(unknown_key(key, key_location)?);
                    }
                }
            }
        }
        config.grammar.finish()?;
        config
            .warnings
            .extend(unknown_variable_warnings(&config.args));
        Ok(config)
    }

    /// The configuration of an empty file.
    fn defaults(path: &Path) -> QemuConfig {
        QemuConfig {
            path: path.to_path_buf(),
            args: Vec::new(),
            uefi: false,
            to_bin: false,
            success_regex: Vec::new(),
            fail_regex: Vec::new(),
            fail_regex_at: None,
            no_reboot: true,
            qemu: None,
            grammar: GrammarSpec::default(),
            host_http_server: None,
            warnings: Vec::new(),
        }
    }
}

fn read_args(config: &mut QemuConfig, field: &Field<'_>) -> Result<(), Error> {
    let example = r#"`args = ["-m", "512M"]` (one element per QEMU argument)"#;
    config.args = field
        .strings(example)?
        .into_iter()
        .map(|(value, location)| ArgSpec {
            value,
            location: Some(location),
        })
        .collect();
    Ok(())
}

fn read_uefi(config: &mut QemuConfig, field: &Field<'_>) -> Result<(), Error> {
    config.uefi = field.boolean("`uefi = true` or `uefi = false` (no quotes)")?;
    Ok(())
}

fn read_to_bin(config: &mut QemuConfig, field: &Field<'_>) -> Result<(), Error> {
    config.to_bin = field.boolean("`to_bin = true` or `to_bin = false` (no quotes)")?;
    Ok(())
}

fn read_no_reboot(config: &mut QemuConfig, field: &Field<'_>) -> Result<(), Error> {
    config.no_reboot = field.boolean("`no_reboot = true` or `no_reboot = false` (no quotes)")?;
    Ok(())
}

fn read_qemu(config: &mut QemuConfig, field: &Field<'_>) -> Result<(), Error> {
    let example = r#"`qemu = "/opt/qemu/bin/qemu-system-loongarch64"`"#;
    match field.item.as_str() {
        Some(s) if !s.trim().is_empty() => {
            config.qemu = Some(ArgSpec {
                value: s.to_string(),
                location: Some(field.key_location.clone()),
            })
        }
        _ => return Err(field.wrong_type("a non-empty string", example)),
    }
    Ok(())
}

fn read_host_http(config: &mut QemuConfig, field: &Field<'_>) -> Result<(), Error> {
    config.host_http_server = Some(HostHttpSpec::read(field.item, field.source)?);
    Ok(())
}

fn read_success(config: &mut QemuConfig, field: &Field<'_>) -> Result<(), Error> {
    config.success_regex = patterns(field, r#"`success_regex = ["Hello, world!"]`"#)?;
    Ok(())
}

fn read_fail(config: &mut QemuConfig, field: &Field<'_>) -> Result<(), Error> {
    config.fail_regex = patterns(field, r#"`fail_regex = ["panicked at"]`"#)?;
    config.fail_regex_at = Some(field.key_location.clone());
    Ok(())
}

fn patterns(field: &Field<'_>, example: &str) -> Result<Vec<PatternSpec>, Error> {
    Ok(field
        .strings(example)?
        .into_iter()
        .map(|(regex, location)| PatternSpec {
            regex,
            location: Some(location),
        })
        .collect())
}

/// A TOML syntax error at its place (every config reader's).
pub(crate) fn syntax_error(source: &SourceText, err: &toml_edit::TomlError) -> Error {
    let offset = err.span().map_or(0, |s| s.start);
    let mut message = err.message().trim().replace('\n', "; ");
    if let Some(key) = err
        .span()
        .and_then(|s| source.text.get(s))
        .filter(|k| message == "duplicate key" && !k.is_empty())
    {
        message = format!("duplicate key `{key}`");
    }
    Error::config(format!("invalid TOML: {message}"))
        .at(source.location(offset))
        .help(
            "fix the TOML syntax at this place (strings need double quotes, arrays [\"a\", \"b\"])",
        )
}

/// An unknown top-level key: an error when it is close to a known key, else a warning (the one
/// policy, [`field::unknown_key`]).
fn unknown_key(key: &str, location: Location) -> Result<Warning, Error> {
    // A key of one of the tables written at the top level (before its header, or without it).
    let table = if crate::config::host_http::KEYS.contains(&key) {
        Some(("`[host_http_server]`", "`[host_http_server]`"))
    } else if key == "shell_cmd" {
        Some((
            "a `[[shell_check_steps]]` entry",
            "a `[[shell_check_steps]]` entry (or use `shell_init_cmd` for one command at the prompt)",
        ))
    } else {
        None
    };
    if let Some((table, fix)) = table {
        return Err(Error::config(format!(
            "`{key}` is a key of {table}, not of the QEMU config's top level"
        ))
        .at(location)
        .help(format!(
            "move it into {fix}; a table's keys follow its header, top-level keys come before \
             the first header"
        )));
    }
    let known = known_keys();
    let message = field::unknown_key(
        key,
        &known,
        location.clone(),
        "the QEMU config",
        &format!("ostool ignores it too (known keys: {})", known.join(", ")),
    )?;
    Ok(Warning { location, message })
}

/// The QEMU TOML's one key table: ostool's keys and ours ([`KEYS`]), then the console grammar's.
pub fn known_keys() -> Vec<&'static str> {
    KEYS.iter()
        .map(|k| k.name)
        .chain(GRAMMAR_KEYS.iter().copied())
        .collect()
}

/// The known key a typo most likely meant.
#[cfg(test)]
fn closest_key(key: &str) -> Option<&'static str> {
    crate::config::source::did_you_mean(key, &known_keys())
}

fn unknown_variable_warnings(args: &[ArgSpec]) -> Vec<Warning> {
    args.iter()
        .filter_map(|arg| Some((arg, arg.location.clone()?)))
        .flat_map(|(arg, location)| {
            vars::unknown_variables(&arg.value)
                .into_iter()
                .map(move |var| {
                    // ostool 0.24 (tgoskits' runner) also knows these two; we do not.
                    let ostools = match var.as_str() {
                        "${package}" => " (ostool's package directory, not substituted here)",
                        "${tmpDir}" => " (ostool's temporary directory, not substituted here)",
                        _ => "",
                    };
                    Warning {
                        location: location.clone(),
                        message: format!(
                            "`{var}` is not a known variable{ostools} and reaches QEMU as \
                             written; only ${{workspaceFolder}} (or ${{workspace}}) and \
                             ${{env:NAME}} are substituted"
                        ),
                    }
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn parse(text: &str) -> Result<QemuConfig, Error> {
        QemuConfig::parse(Path::new("q.toml"), text)
    }

    fn at(loc: &Option<Location>) -> (usize, usize) {
        let l = loc.as_ref().expect("has a location");
        (l.line, l.column)
    }

    #[test]
    fn all_ostool_keys_are_read_with_locations() {
        let c = parse(
            "args = [\"-m\", \"1G\"]\nuefi = true\nto_bin = true\n\
             success_regex = [\"ok\"]\nfail_regex = [\"panicked at\", \"x\"]\nno_reboot = false\n",
        )
        .unwrap();
        assert_eq!(
            c.args.iter().map(|a| a.value.as_str()).collect::<Vec<_>>(),
            ["-m", "1G"]
        );
        assert_eq!(at(&c.args[1].location), (1, 15));
        assert!(c.uefi && c.to_bin && !c.no_reboot);
        assert_eq!(c.success_regex[0].regex, "ok");
        assert_eq!(at(&c.fail_regex[1].location), (5, 30));
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn missing_keys_take_defaults() {
        let c = parse("# nothing\n").unwrap();
        assert!(c.args.is_empty() && c.success_regex.is_empty() && c.fail_regex.is_empty());
        assert!(!c.uefi && !c.to_bin && c.no_reboot);
        assert_eq!(c.path, Path::new("q.toml"));
    }

    #[test]
    fn syntax_error_is_a_config_error_at_line_and_column() {
        let err = parse("args = [\"-m\",\n  \"1G\"\nuefi = false\n").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config);
        assert!(err.message.starts_with("invalid TOML: "), "{err}");
        assert_eq!(err.location.as_ref().unwrap().line, 3, "{err}");
        let err = parse("uefi = false\nuefi = true\n").unwrap_err();
        assert_eq!(at(&err.location), (2, 1), "{err}");
        assert_eq!(err.message, "invalid TOML: duplicate key `uefi`");
    }

    #[test]
    fn wrong_types_name_key_expected_and_found() {
        let err = parse("to_bin = \"true\"\n").unwrap_err();
        assert_eq!(err.message, "`to_bin` must be a boolean; found a string");
        assert_eq!(at(&err.location), (1, 10));
        assert!(err.help.unwrap().contains("no quotes"));
        let err = parse("args = \"-nographic\"\n").unwrap_err();
        assert_eq!(
            err.message,
            "`args` must be an array of strings; found a string"
        );
        let err = parse("success_regex = [\"a\", 1.5]\n").unwrap_err();
        assert_eq!(
            err.message,
            "`success_regex` must be an array of strings; element 2 is a float"
        );
        assert_eq!(at(&err.location), (1, 23));
    }

    #[test]
    fn unknown_keys_close_to_known_ones_are_errors() {
        for (text, meant, col) in [
            ("sucess_regex = [\"x\"]\n", "success_regex", 1),
            ("args = []\n  timout = \"30s\"\n", "timeout", 3),
            ("To-Bin = true\n", "to_bin", 1),
            ("fail_regexp = []\n", "fail_regex", 1),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Config, "{text}");
            let key = text.trim_start_matches("args = []\n").trim_start();
            let key = &key[..key.find(' ').unwrap()];
            assert_eq!(
                err.message,
                format!("unknown key `{key}` in the QEMU config (did you mean `{meant}`?)")
            );
            assert_eq!(at(&err.location), (text.lines().count(), col), "{text}");
        }
    }

    #[test]
    fn debugging_keys_say_they_are_command_line_flags() {
        for (text, flag) in [
            ("gdb = true\n", "--gdb [ADDR]"),
            ("args = []\npause_on_fail = true\n", "--pause-on-fail"),
        ] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Config, "{text}");
            assert!(
                err.message.ends_with(&format!(
                    "in the QEMU config is a command-line flag only: `qemu-test run {flag}`"
                )),
                "{err}"
            );
            assert_eq!(at(&err.location).0, text.lines().count(), "{text}");
        }
    }

    #[test]
    fn other_unknown_keys_warn() {
        let c = parse("baud_rate = 1\n[net]\na = 1\n").unwrap();
        let messages: Vec<&str> = c.warnings.iter().map(|w| w.message.as_str()).collect();
        assert!(
            messages[0].starts_with(
                "unknown key `baud_rate` in the QEMU config; ostool ignores it too (known keys: \
                 args, uefi"
            ),
            "{messages:?}"
        );
        assert!(messages[1].starts_with("unknown key `net`"), "{messages:?}");
        assert_eq!(messages.len(), 2);
        assert_eq!(c.warnings[1].location.line, 2);
    }

    #[test]
    fn unknown_variables_in_args_warn() {
        let c = parse("args = [\"-x\", \"a=${workspaceFolder}/${workspaceRoot}\"]\n").unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert!(
            c.warnings[0]
                .message
                .starts_with("`${workspaceRoot}` is not a known variable")
        );
        assert_eq!(
            (c.warnings[0].location.line, c.warnings[0].location.column),
            (1, 15)
        );
        // `${workspace}` is known (axbuild's spelling); ostool's `${package}` is named as such.
        let c = parse("args = [\"${workspace}/a\", \"${package}/b\"]\n").unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert_eq!(
            c.warnings[0].message,
            "`${package}` is not a known variable (ostool's package directory, not substituted \
             here) and reaches QEMU as written; only ${workspaceFolder} (or ${workspace}) and \
             ${env:NAME} are substituted"
        );
    }

    /// A table's key written at the top level says where it belongs (it would be ignored).
    #[test]
    fn table_keys_at_the_top_level_name_their_table() {
        let e = parse("args = []\nport = 18281\n[host_http_server]\nbind = \"127.0.0.1\"\n")
            .unwrap_err();
        assert_eq!(
            e.message,
            "`port` is a key of `[host_http_server]`, not of the QEMU config's top level"
        );
        assert_eq!(e.location.map(|l| l.line), Some(2));
        let e = parse("shell_cmd = \"ls\"\n").unwrap_err();
        assert!(
            e.message
                .starts_with("`shell_cmd` is a key of a `[[shell_check_steps]]` entry"),
            "{e}"
        );
    }

    #[test]
    fn closest_keys_are_a_single_edit_away() {
        assert_eq!(closest_key("succes_regex"), Some("success_regex"));
        // a swap of two adjacent letters is one edit
        assert_eq!(closest_key("ufei"), Some("uefi"));
        assert_eq!(closest_key("arg"), Some("args"));
        assert_eq!(closest_key("timeot"), Some("timeout"));
        assert_eq!(closest_key("baud_rate"), None);
    }

    #[test]
    fn load_reports_missing_and_non_utf8_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let err = QemuConfig::load(&missing).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Usage);
        assert!(err.message.contains("nope.toml"), "{err}");
        let latin1 = dir.path().join("latin1.toml");
        std::fs::write(&latin1, b"args = []\n# caf\xe9\n").unwrap();
        let err = QemuConfig::load(&latin1).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config);
        assert_eq!(at(&err.location), (2, 6));
        assert!(err.message.contains("not valid UTF-8"));
    }
}

//! AxVisor's board config (`configs/board/*.toml`), read exactly as its xtask reads it
//! (axvisor.md §3.3), with every error and warning at file:line:column.
//!
//! Two shapes, told apart by their keys:
//! - **xtask** (the older arceos-hypervisor/axvisor): `target`, `features`, `log`, `cargo_args`,
//!   `to_bin`, `smp`, `vm_configs`, the first five required;
//! - **axbuild** (tgoskits, `test-suit/**/build-<target>.toml` and `os/axvisor/configs/board/`):
//!   no `cargo_args`/`to_bin`; `features`, `log`, optional `target` (else the file name's
//!   `build-<target>[-<variant>].toml`), `vm_configs`, `max_cpu_num`, `env = { … }` and the
//!   legacy `plat_dyn`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{Document, Item, Table};

use crate::config::qemu::Warning;
use crate::config::source::SourceText;
use crate::error::{Error, Location};

/// The log levels AxVisor's board config accepts, spelled with this exact case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `"Trace"`
    Trace,
    /// `"Debug"`
    Debug,
    /// `"Info"`
    Info,
    /// `"Warn"`
    Warn,
    /// `"Error"`
    Error,
}

impl LogLevel {
    const ALL: [(&'static str, LogLevel); 5] = [
        ("Trace", LogLevel::Trace),
        ("Debug", LogLevel::Debug),
        ("Info", LogLevel::Info),
        ("Warn", LogLevel::Warn),
        ("Error", LogLevel::Error),
    ];

    /// The lower-case name used in `AX_LOG` and in the `log/…max_level_<lvl>` feature.
    pub fn lower(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.lower())
    }
}

/// A path written in the board config, with where it was written (for "does not exist" errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardPath {
    /// As written: relative to the workspace root.
    pub path: PathBuf,
    /// The array element that holds it.
    pub location: Location,
}

/// A name written in the board config, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardName {
    pub name: String,
    pub location: Location,
}

/// A parsed board config: what to pass to cargo to build the hypervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// Rust target triple (`--target`).
    pub target: String,
    /// Cargo features, possibly of dependencies (`axstd/bus-mmio`).
    pub features: Vec<String>,
    /// Sets `AX_LOG` and the `log` crate's max-level feature.
    pub log: Option<LogLevel>,
    /// Appended after `--bin <bin>`.
    pub cargo_args: Vec<String>,
    /// Whether the ELF must be turned into a flat binary (ignored by AxVisor's `xtask qemu`).
    pub to_bin: bool,
    /// Sets `AXVISOR_SMP`.
    pub smp: Option<u64>,
    /// VM configs to embed, relative to the workspace, before those given on the command line.
    pub vm_configs: Vec<BoardPath>,
    /// The axbuild shape (tgoskits): its environment (`SMP`, `AX_ARCH`, `AX_TARGET`) and the
    /// `smp` feature for `max_cpu_num > 1`.
    pub axbuild: bool,
    /// axbuild's `max_cpu_num`: sets `SMP`.
    pub max_cpu_num: Option<u64>,
    /// axbuild's `env = { … }`: set for cargo, in file order.
    pub env: Vec<(String, String)>,
    /// axbuild's `package` (ArceOS' build files): the workspace member to build when nothing
    /// else names one, with where it is written.
    pub package: Option<BoardName>,
    /// Unknown keys, reported but not fatal.
    pub warnings: Vec<Warning>,
}

const KNOWN_KEYS: [&str; 7] = [
    "target",
    "features",
    "log",
    "cargo_args",
    "to_bin",
    "smp",
    "vm_configs",
];

/// Keys of the axbuild shape.
const AXBUILD_KEYS: [&str; 7] = [
    "package",
    "target",
    "features",
    "log",
    "vm_configs",
    "max_cpu_num",
    "env",
];

/// Keys of older build files that axbuild now rejects, with its reason.
const REMOVED_KEYS: [(&str, &str); 3] = [
    (
        "plat_dyn",
        "dynamic platform builds are now the only platform mode (axbuild removed `plat_dyn`)",
    ),
    (
        "std",
        "std-aware Rust builds are now the default (axbuild removed `std`)",
    ),
    (
        "app-c",
        "`app-c` is ArceOS' C-app build, not a build of this kernel",
    ),
];

/// The target triples axbuild builds for, by architecture (the file name's `build-<target>`).
pub const AXBUILD_TARGETS: [&str; 4] = [
    "aarch64-unknown-none-softfloat",
    "riscv64gc-unknown-none-elf",
    "x86_64-unknown-none",
    "loongarch64-unknown-none-softfloat",
];

impl BoardConfig {
    /// Reads and parses a board config file.
    pub fn load(path: &Path) -> Result<BoardConfig, Error> {
        let text = crate::config::source::read_input(path, "board config")?;
        Self::parse(path, &text)
    }

    /// Parses board config text; `path` is used in messages and locations only.
    pub fn parse(path: &Path, text: &str) -> Result<BoardConfig, Error> {
        let source = SourceText::new(path, text.to_string());
        let doc = Document::parse(text).map_err(|e| {
            let at = source.location(e.span().map_or(0, |s| s.start));
            Error::config(format!(
                "invalid TOML in board config: {}",
                e.message().trim()
            ))
            .at(at)
            .help("fix the TOML syntax at this position")
        })?;
        let reader = Reader {
            source: &source,
            table: doc.as_table(),
        };
        let table = doc.as_table();
        if !table.contains_key("cargo_args") && !table.contains_key("to_bin") {
            return reader.axbuild(path);
        }
        Ok(BoardConfig {
            path: path.to_path_buf(),
            target: reader.required_string("target")?,
            features: reader.string_array("features", true)?,
            log: reader.log()?,
            cargo_args: reader.string_array("cargo_args", true)?,
            to_bin: reader.required_bool("to_bin")?,
            smp: reader.smp()?,
            vm_configs: reader.paths("vm_configs")?,
            axbuild: false,
            max_cpu_num: None,
            env: Vec::new(),
            package: None,
            warnings: reader.unknown_keys(&KNOWN_KEYS)?,
        })
    }

    /// The VM configs to build with: the board's own, then `extra`, resolved against
    /// `workspace`; a missing file is an error naming where it was written.
    pub fn resolve_vm_configs(
        &self,
        workspace: &Path,
        extra: &[PathBuf],
    ) -> Result<Vec<PathBuf>, Error> {
        let from_board = self
            .vm_configs
            .iter()
            .map(|p| (p.path.clone(), Some(p.location.clone())));
        let from_cli = extra.iter().map(|p| (p.clone(), None));
        from_board
            .chain(from_cli)
            .map(|(path, location)| {
                let full = workspace.join(&path);
                if full.is_file() {
                    return Ok(full);
                }
                let generated = is_generated(&path);
                let help = if generated {
                    "this VM config is one tgoskits' axbuild generates under tmp/ before it builds; \
                     generate it there (or name the source config in vm_configs / --vmconfigs)"
                } else {
                    "VM config paths are relative to the workspace root; fix the path or create the file"
                };
                let e = Error::config(format!("VM config file '{}' does not exist", path.display()))
                    .help(help);
                Err(match location {
                    Some(at) => e.at(at),
                    None => e,
                })
            })
            .collect()
    }
}

/// A VM config path under `tmp/`: one tgoskits' axbuild generates before it builds.
pub fn is_generated(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "tmp")
}

/// Typed access to the top-level table, turning every mismatch into a located error.
struct Reader<'a> {
    source: &'a SourceText,
    table: &'a Table,
}

/// `build-<target>.toml` or `build-<target>-<variant>.toml` → the target, when it is one of
/// axbuild's.
pub fn target_from_file_name(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix("build-")?.strip_suffix(".toml")?;
    AXBUILD_TARGETS
        .iter()
        .find(|t| rest == **t || rest.strip_prefix(**t).is_some_and(|v| v.starts_with('-')))
        .copied()
}

impl Reader<'_> {
    /// The axbuild shape (no `cargo_args`, no `to_bin`; `features` and `log` required as
    /// axbuild's `BuildInfo` requires them).
    fn axbuild(&self, path: &Path) -> Result<BoardConfig, Error> {
        let target = match self.table.get("target") {
            Some(_) => self.required_string("target")?,
            None => target_from_file_name(path)
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::config(
                        "the build config has no `target` and its file name is not \
                         build-<target>.toml",
                    )
                    .at(self.at(None))
                    .help(format!(
                        "add `target = \"aarch64-unknown-none-softfloat\"` or name the file \
                         build-<target>.toml (one of {})",
                        AXBUILD_TARGETS.join(", ")
                    ))
                })?,
        };
        // Keys axbuild refuses outright (tgoskits scripts/axbuild/src/build/config_file.rs):
        // an error here too, at the key, rather than a build that differs from theirs.
        for (key, why) in REMOVED_KEYS {
            if let Some(item) = self.table.get(key) {
                let at = self.at(self.table.key(key).and_then(|k| k.span()).or(item.span()));
                return Err(Error::config(format!("`{key}` is not accepted: {why}"))
                    .at(at)
                    .help(format!(
                        "remove `{key} = …` (tgoskits' axbuild rejects it too)"
                    )));
            }
        }
        let warnings = self.unknown_keys(&AXBUILD_KEYS)?;
        let max_cpu_num = match self.table.get("max_cpu_num") {
            None => None,
            Some(item) => match item.as_integer() {
                Some(n) if n > 0 => Some(n as u64),
                _ => return Err(self.wrong_type("max_cpu_num", item, "an integer greater than 0")),
            },
        };
        let mut features = self.string_array("features", true)?;
        if max_cpu_num.is_some_and(|n| n > 1) {
            features.push("smp".into());
        }
        features.sort();
        features.dedup();
        Ok(BoardConfig {
            path: path.to_path_buf(),
            target,
            features,
            log: self.log()?,
            cargo_args: Vec::new(),
            to_bin: false,
            smp: None,
            vm_configs: match self.table.get("vm_configs") {
                Some(_) => self.paths("vm_configs")?,
                None => Vec::new(),
            },
            axbuild: true,
            max_cpu_num,
            env: self.env()?,
            package: self.package()?,
            warnings,
        })
    }

    /// `env = { NAME = "value", … }` (inline or `[env]`), every value a string.
    fn env(&self) -> Result<Vec<(String, String)>, Error> {
        let Some(item) = self.table.get("env") else {
            return Ok(Vec::new());
        };
        let t = item
            .as_table_like()
            .ok_or_else(|| self.wrong_type("env", item, "a table of strings"))?;
        t.iter()
            .map(|(k, v)| match v.as_str() {
                Some(s) => Ok((k.to_string(), s.to_string())),
                None => Err(Error::config(format!(
                    "`env.{k}` must be a string, found {}",
                    v.type_name()
                ))
                .at(self.at(v.span()))
                .help(format!("quote the value: `{k} = \"...\"`"))),
            })
            .collect()
    }

    /// `package = "…"`: a non-empty string (axbuild's `ArceosBuildFile::package`).
    fn package(&self) -> Result<Option<BoardName>, Error> {
        let Some(item) = self.table.get("package") else {
            return Ok(None);
        };
        match item.as_str() {
            Some(s) if !s.is_empty() => Ok(Some(BoardName {
                name: s.to_string(),
                location: self.at(item.span()),
            })),
            Some(_) => Err(Error::config("`package` must not be empty")
                .at(self.at(item.span()))
                .help("name the workspace package to build, or remove `package`")),
            None => Err(self.wrong_type("package", item, "a string")),
        }
    }

    fn at(&self, span: Option<Range<usize>>) -> Location {
        self.source.location(span.map_or(0, |s| s.start))
    }

    fn missing(&self, key: &str, example: &str) -> Error {
        Error::config(format!("board config is missing the required key `{key}`"))
            .at(self.at(None))
            .help(format!(
                "add `{key} = {example}` (see AxVisor's configs/board/*.toml)"
            ))
    }

    fn wrong_type(&self, key: &str, item: &Item, expected: &str) -> Error {
        Error::config(format!(
            "`{key}` must be {expected}, found {}",
            item.type_name()
        ))
        .at(self.at(item.span()))
        .help(format!("write `{key}` as {expected}"))
    }

    fn required_string(&self, key: &str) -> Result<String, Error> {
        let item = self
            .table
            .get(key)
            .ok_or_else(|| self.missing(key, "\"…\""))?;
        match item.as_str() {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            Some(_) => Err(Error::config(format!("`{key}` must not be empty"))
                .at(self.at(item.span()))
                .help(format!("set `{key}` to a Rust target triple"))),
            None => Err(self.wrong_type(key, item, "a string")),
        }
    }

    fn required_bool(&self, key: &str) -> Result<bool, Error> {
        let item = self
            .table
            .get(key)
            .ok_or_else(|| self.missing(key, "false"))?;
        item.as_bool()
            .ok_or_else(|| self.wrong_type(key, item, "a boolean (true or false)"))
    }

    fn string_array(&self, key: &str, required: bool) -> Result<Vec<String>, Error> {
        let Some(item) = self.table.get(key) else {
            return if required {
                Err(self.missing(key, "[]"))
            } else {
                Ok(Vec::new())
            };
        };
        let array = item
            .as_array()
            .ok_or_else(|| self.wrong_type(key, item, "an array of strings"))?;
        array
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    Error::config(format!(
                        "every element of `{key}` must be a string, found {}",
                        v.type_name()
                    ))
                    .at(self.at(v.span()))
                    .help("quote the element")
                })
            })
            .collect()
    }

    fn paths(&self, key: &str) -> Result<Vec<BoardPath>, Error> {
        let strings = self.string_array(key, true)?;
        let spans = self
            .table
            .get(key)
            .and_then(Item::as_array)
            .map(|a| a.iter().map(|v| v.span()).collect::<Vec<_>>())
            .unwrap_or_default();
        Ok(strings
            .into_iter()
            .zip(spans)
            .map(|(s, span)| BoardPath {
                path: PathBuf::from(s),
                location: self.at(span),
            })
            .collect())
    }

    fn log(&self) -> Result<Option<LogLevel>, Error> {
        let Some(item) = self.table.get("log") else {
            return Ok(None);
        };
        let text = item
            .as_str()
            .ok_or_else(|| self.wrong_type("log", item, "a string"))?;
        let names: Vec<&str> = LogLevel::ALL.iter().map(|(n, _)| *n).collect();
        match LogLevel::ALL.iter().find(|(n, _)| *n == text) {
            Some((_, level)) => Ok(Some(*level)),
            None => {
                let hint = LogLevel::ALL
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(text))
                    .map(|(n, _)| format!("write \"{n}\" (the case matters)"))
                    .unwrap_or_else(|| format!("use one of {}", names.join(", ")));
                Err(Error::config(format!(
                    "`log` must be one of {}, found \"{text}\"",
                    names.join(", ")
                ))
                .at(self.at(item.span()))
                .help(hint))
            }
        }
    }

    fn smp(&self) -> Result<Option<u64>, Error> {
        let Some(item) = self.table.get("smp") else {
            return Ok(None);
        };
        match item.as_integer() {
            Some(n) if n >= 0 => Ok(Some(n as u64)),
            _ => Err(self.wrong_type("smp", item, "a non-negative integer")),
        }
    }

    /// The unknown keys as warnings, by the one unknown-key rule: a key close to a known one
    /// (`vm_config`, `featurs`) is an error, because the key it meant would be missing.
    fn unknown_keys(&self, known: &[&str]) -> Result<Vec<Warning>, Error> {
        let ignored = format!("it is ignored (known keys: {})", known.join(", "));
        self.table
            .iter()
            .filter(|(k, _)| !known.contains(k))
            .map(|(k, _)| {
                let location = self.at(self.table.key(k).and_then(|key| key.span()));
                let message = crate::config::field::unknown_key(
                    k,
                    known,
                    location.clone(),
                    "the build config",
                    &ignored,
                )?;
                Ok(Warning { location, message })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<BoardConfig, Error> {
        BoardConfig::parse(Path::new("board.toml"), text)
    }

    const MINIMAL: &str = "target = \"x86_64-unknown-none\"\nfeatures = []\ncargo_args = []\nto_bin = false\nvm_configs = []\n";

    #[test]
    fn minimal_config_has_no_log_and_no_smp() {
        let b = parse(MINIMAL).unwrap();
        assert_eq!(b.target, "x86_64-unknown-none");
        assert_eq!((b.log, b.smp, b.to_bin), (None, None, false));
        assert!(b.warnings.is_empty());
    }

    #[test]
    fn log_level_needs_exact_case() {
        let e = parse(&format!("{MINIMAL}log = \"info\"\n")).unwrap_err();
        let at = e.location.clone().unwrap();
        assert_eq!((at.line, at.column), (6, 7));
        assert!(e.help.as_deref().unwrap().contains("\"Info\""), "{e}");
        let b = parse(&format!("{MINIMAL}log = \"Warn\"\nsmp = 4\n")).unwrap();
        assert_eq!((b.log, b.smp), (Some(LogLevel::Warn), Some(4)));
        assert_eq!(LogLevel::Warn.lower(), "warn");
    }

    #[test]
    fn missing_key_and_wrong_type_are_located() {
        let e =
            parse("target = \"x\"\nfeatures = []\ncargo_args = []\nto_bin = false\n").unwrap_err();
        assert!(e.message.contains("`vm_configs`"), "{e}");
        let e = parse(&MINIMAL.replace("features = []", "features = [\"a\", 3]")).unwrap_err();
        let at = e.location.unwrap();
        assert_eq!((at.line, at.column), (2, 18));
        let e = parse(&MINIMAL.replace("to_bin = false", "to_bin = \"no\"")).unwrap_err();
        assert_eq!(e.location.unwrap().line, 4);
        assert!(e.message.contains("boolean"));
    }

    #[test]
    fn unknown_keys_are_warnings() {
        let b = parse(&format!("{MINIMAL}plat = \"q35\"\n")).unwrap();
        assert_eq!(b.warnings.len(), 1);
        assert_eq!(b.warnings[0].location.line, 6);
        assert!(b.warnings[0].message.contains("`plat`"));
        // A key close to a known one is an error at its line, in either shape.
        let e = parse(&format!("{MINIMAL}smpp = 2\n")).unwrap_err();
        assert_eq!(e.location.as_ref().unwrap().line, 6);
        assert!(e.message.contains("did you mean `smp`"), "{e}");
        let e = BoardConfig::parse(
            Path::new("build-x86_64-unknown-none.toml"),
            "features = []\nlog = \"Info\"\nmax_cpu_nun = 2\n",
        )
        .unwrap_err();
        assert_eq!(e.location.as_ref().unwrap().line, 3);
        assert!(e.message.contains("did you mean `max_cpu_num`"), "{e}");
        // Keys axbuild removed are errors at the key, whatever their value.
        for (line, why) in [
            ("plat_dyn = false", "only platform mode"),
            ("std = true", "default"),
        ] {
            let e = BoardConfig::parse(
                Path::new("build-x86_64-unknown-none.toml"),
                &format!("features = []\nlog = \"Info\"\n{line}\n"),
            )
            .unwrap_err();
            assert_eq!(
                e.location.as_ref().map(|l| (l.line, l.column)),
                Some((3, 1)),
                "{e}"
            );
            assert!(
                e.message.contains(why) && e.help.as_deref().unwrap().contains("remove"),
                "{e}"
            );
        }
    }

    #[test]
    fn axbuild_shape_takes_target_from_the_file_name_and_reads_env() {
        let b = BoardConfig::parse(
            Path::new("x/build-riscv64gc-unknown-none-elf.toml"),
            "features = [\"fs\", \"ax-driver/virtio-blk\"]\nlog = \"Info\"\nmax_cpu_num = 4\n\
             vm_configs = [\"os/axvisor/a.toml\"]\n[env]\nK = \"v\"\n",
        )
        .unwrap();
        assert!(b.axbuild && b.warnings.is_empty(), "{:?}", b.warnings);
        assert_eq!(b.target, "riscv64gc-unknown-none-elf");
        assert_eq!(b.features, ["ax-driver/virtio-blk", "fs", "smp"]);
        assert_eq!((b.max_cpu_num, b.log), (Some(4), Some(LogLevel::Info)));
        assert_eq!(b.env, [("K".to_string(), "v".to_string())]);
        let b = BoardConfig::parse(
            Path::new("build-x86_64-unknown-none-svm.toml"),
            "features = []\nlog = \"Info\"\nenv = { A = \"1\" }\n",
        )
        .unwrap();
        assert_eq!(b.target, "x86_64-unknown-none");
        let e = BoardConfig::parse(Path::new("b.toml"), "features = []\n").unwrap_err();
        assert!(e.message.contains("no `target`"), "{e}");
        let e = BoardConfig::parse(
            Path::new("b.toml"),
            "target = \"t\"\nfeatures = []\nenv = { A = 1 }\n",
        )
        .unwrap_err();
        assert_eq!(e.message, "`env.A` must be a string, found integer");
        let b = parse(&format!("{MINIMAL}max_cpu_num = 2\n")).unwrap();
        assert!(
            b.warnings[0].message.contains("`max_cpu_num`"),
            "{:?}",
            b.warnings
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = parse("target = \n").unwrap_err();
        assert_eq!(e.location.unwrap().line, 1);
        assert_eq!(e.kind, crate::error::ErrorKind::Config);
    }

    #[test]
    fn missing_vm_config_names_the_board_line() {
        let dir = tempfile::tempdir().unwrap();
        let b = parse(&MINIMAL.replace("vm_configs = []", "vm_configs = [\"nope.toml\"]")).unwrap();
        let e = b.resolve_vm_configs(dir.path(), &[]).unwrap_err();
        assert!(e.message.contains("'nope.toml' does not exist"), "{e}");
        assert_eq!(e.location.as_ref().unwrap().line, 5);
        std::fs::write(dir.path().join("nope.toml"), "").unwrap();
        let extra = [PathBuf::from("nope.toml")];
        assert_eq!(b.resolve_vm_configs(dir.path(), &extra).unwrap().len(), 2);
    }
}

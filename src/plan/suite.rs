//! Suite files: `[defaults]` plus `[[case]]` tables, each with the same keys as the
//! command-line flags (`kernel`, `qemu-config`, `build-config`, `vmconfigs`, `image`, …).
//! Relative paths resolve against the workspace root, like the QEMU config's own paths.

use std::path::{Path, PathBuf};

use toml_edit::{Document, Item};

use super::inputs::CaseInputs;
use crate::config::field::TomlReader;
use crate::config::grammar::GRAMMAR_KEYS;
use crate::config::source::SourceText;
use crate::error::{Error, Location};

/// The keys a case (or `[defaults]`) may set.
pub const CASE_KEYS: &[&str] = &[
    "name",
    "kernel",
    "qemu-config",
    "uboot-config",
    "build-config",
    "vmconfigs",
    "image",
    "registry",
    "build-command",
    "artifact",
    "arch",
    "accel",
    "requires",
    "on-unsupported",
    "timeout",
    "success-regex",
    "fail-regex",
    "firmware",
    "runner",
];

/// The top-level keys of a suite file.
const TOP_KEYS: &[&str] = &["defaults", "case"];

/// The suite format's one key table for a case: [`CASE_KEYS`], then the console grammar's keys
/// as suite files spell them (with `-`; `_` is accepted too).
pub fn known_keys() -> Vec<String> {
    CASE_KEYS
        .iter()
        .map(|k| k.to_string())
        .chain(GRAMMAR_KEYS.iter().map(|k| k.replace('_', "-")))
        .collect()
}

/// A parsed suite file.
#[derive(Debug, Clone)]
pub struct Suite {
    pub path: PathBuf,
    pub defaults: CaseInputs,
    /// Cases in file order; each has a name.
    pub cases: Vec<CaseInputs>,
    /// Unknown keys and similar findings.
    pub warnings: Vec<(Location, String)>,
}

impl Suite {
    pub fn load(path: &Path) -> Result<Suite, Error> {
        let text = crate::config::source::read_input(path, "suite file")?;
        Suite::parse(path, text)
    }

    pub fn parse(path: &Path, text: String) -> Result<Suite, Error> {
        let src = SourceText::new(path, text);
        let doc = Document::parse(src.text.as_str()).map_err(|e| {
            let loc = src.location(e.span().map_or(0, |s| s.start));
            Error::config(format!("invalid TOML: {}", e.message())).at(loc)
        })?;
        let mut reader = Reader {
            src: &src,
            warnings: Vec::new(),
        };
        let mut defaults = CaseInputs::default();
        let mut cases = Vec::new();
        for (key, item) in doc.as_table().iter() {
            match key {
                "defaults" => defaults = reader.case(item, "[defaults]")?,
                "case" => {
                    let arr = item.as_array_of_tables().ok_or_else(|| {
                        reader.err(
                            item,
                            "`case` must be an array of tables: write each case as [[case]]",
                        )
                    })?;
                    for t in arr.iter() {
                        let c = reader.table(t, "[[case]]")?;
                        cases.push(c);
                    }
                }
                other => {
                    let at = reader.loc(doc.key(other).and_then(|k| k.span()).or(item.span()));
                    let message = crate::config::field::unknown_key(
                        other,
                        TOP_KEYS,
                        at.clone(),
                        "the suite file",
                        "expected [defaults] or [[case]]; it is ignored",
                    )?;
                    reader.warnings.push((at, message));
                }
            }
        }
        check_names(&src, &cases)?;
        Ok(Suite {
            path: path.to_path_buf(),
            defaults,
            cases,
            warnings: reader.warnings,
        })
    }

    /// The cases named in `selected` (all when empty), in suite order; unknown names are an
    /// error listing the available ones.
    pub fn select(&self, selected: &[String]) -> Result<Vec<&CaseInputs>, Error> {
        for s in selected {
            if !self.cases.iter().any(|c| c.name.as_deref() == Some(s)) {
                let names: Vec<&str> = self
                    .cases
                    .iter()
                    .filter_map(|c| c.name.as_deref())
                    .collect();
                return Err(Error::usage(format!(
                    "no case named '{s}' in {}; available: {}",
                    self.path.display(),
                    names.join(", ")
                )));
            }
        }
        Ok(self
            .cases
            .iter()
            .filter(|c| {
                selected.is_empty() || selected.iter().any(|s| c.name.as_deref() == Some(s))
            })
            .collect())
    }
}

fn check_names(src: &SourceText, cases: &[CaseInputs]) -> Result<(), Error> {
    for (i, c) in cases.iter().enumerate() {
        let loc = c.location.clone().unwrap_or_else(|| src.location(0));
        let Some(name) = &c.name else {
            return Err(Error::config(format!("case {} has no `name`", i + 1)).at(loc));
        };
        if let Some((message, help)) = super::name_problem(name) {
            return Err(Error::config(message).at(loc).help(help));
        }
        if cases[..i].iter().any(|o| o.name.as_ref() == Some(name)) {
            return Err(Error::config(format!("duplicate case name '{name}'")).at(loc));
        }
    }
    Ok(())
}

struct Reader<'a> {
    src: &'a SourceText,
    warnings: Vec<(Location, String)>,
}

impl Reader<'_> {
    fn loc(&self, span: Option<std::ops::Range<usize>>) -> Location {
        self.src.location(span.map_or(0, |s| s.start))
    }

    fn err(&self, item: &Item, msg: impl Into<String>) -> Error {
        Error::config(msg).at(self.loc(item.span()))
    }

    fn case(&mut self, item: &Item, what: &str) -> Result<CaseInputs, Error> {
        let t = item
            .as_table()
            .ok_or_else(|| self.err(item, format!("{what} must be a table")))?;
        self.table(t, what)
    }

    fn table(&mut self, t: &toml_edit::Table, what: &str) -> Result<CaseInputs, Error> {
        let mut c = CaseInputs {
            location: Some(self.loc(t.span())),
            ..Default::default()
        };
        for (key, item) in t.iter() {
            let k = key.replace('_', "-");
            match k.as_str() {
                "name" => c.name = Some(self.string(item, key)?),
                "kernel" => c.kernel = Some(self.string(item, key)?.into()),
                "qemu-config" => c.qemu_config = Some(self.string(item, key)?.into()),
                "uboot-config" => c.uboot_config = Some(self.string(item, key)?.into()),
                "build-config" => c.build_config = Some(self.string(item, key)?.into()),
                "vmconfigs" => {
                    c.vmconfigs = self
                        .strings(item, key)?
                        .into_iter()
                        .map(PathBuf::from)
                        .collect()
                }
                "image" => c.image = Some(self.string(item, key)?),
                "registry" => c.registry = Some(self.string(item, key)?),
                "build-command" => c.build_command = Some(self.string(item, key)?),
                "artifact" => c.artifact = Some(self.string(item, key)?.into()),
                "arch" => {
                    let a = self.string(item, key)?;
                    c.arch = Some(a.parse().map_err(|e: String| self.err(item, e))?);
                }
                "accel" => c.accel = Some(self.string(item, key)?),
                "requires" => c.requires = self.strings(item, key)?,
                "on-unsupported" => c.on_unsupported = Some(self.string(item, key)?),
                "timeout" => c.timeout = Some(self.typed().duration(item, key)?),
                "success-regex" => c.success_regex = self.strings(item, key)?,
                "fail-regex" => c.fail_regex = self.strings(item, key)?,
                "firmware" => c.firmware = Some(self.string(item, key)?.into()),
                "runner" => c.runner = Some(self.runner(item, key)?),
                _ if c.grammar.read_key(key, item, self.src)? => {}
                _ => {
                    let loc = self.loc(t.key(key).and_then(|k| k.span()).or_else(|| item.span()));
                    let known = known_keys();
                    let known: Vec<&str> = known.iter().map(String::as_str).collect();
                    let message = crate::config::field::unknown_key(
                        key,
                        &known,
                        loc.clone(),
                        what,
                        "it is ignored",
                    )?;
                    self.warnings.push((loc, message));
                }
            }
        }
        c.grammar.finish()?;
        Ok(c)
    }

    fn typed(&self) -> TomlReader<'_> {
        TomlReader { src: self.src }
    }

    fn string(&self, item: &Item, key: &str) -> Result<String, Error> {
        self.typed().string(item, key)
    }

    /// A list of strings; a single string is accepted as a list of one.
    fn strings(&self, item: &Item, key: &str) -> Result<Vec<String>, Error> {
        let list = self.typed().strings(item, key)?;
        Ok(list.into_iter().map(|(s, _)| s).collect())
    }

    fn runner(&self, item: &Item, key: &str) -> Result<serde_json::Value, Error> {
        if let Some(s) = item.as_str() {
            return Ok(serde_json::Value::String(s.into()));
        }
        Ok(serde_json::Value::from(self.strings(item, key)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUITE: &str = r#"
[defaults]
timeout = "2m"
fail-regex = ["panicked at"]

[[case]]
name = "a"
kernel = "a.elf"
success-regex = "A"

[[case]]
name = "b"
kernel = "b.elf"
timeout = 30
runner = ["self-hosted", "intel"]
serial-baud = 3
"#;

    #[test]
    fn parses_defaults_cases_and_warns_on_unknown_keys() {
        let s = Suite::parse(Path::new("s.toml"), SUITE.into()).unwrap();
        assert_eq!(s.cases.len(), 2);
        assert_eq!(
            s.defaults.timeout,
            Some(std::time::Duration::from_secs(120))
        );
        assert_eq!(s.cases[0].success_regex, vec!["A"]);
        assert_eq!(s.cases[1].timeout, Some(std::time::Duration::from_secs(30)));
        assert_eq!(
            s.cases[1].runner,
            Some(serde_json::json!(["self-hosted", "intel"]))
        );
        assert_eq!(s.warnings.len(), 1);
        let (loc, msg) = &s.warnings[0];
        assert_eq!((loc.line, loc.column), (16, 1));
        assert_eq!(msg, "unknown key `serial-baud` in [[case]]; it is ignored");
        let merged = s.cases[0].over(&s.defaults);
        assert_eq!(merged.fail_regex, vec!["panicked at"]);
    }

    #[test]
    fn misspelt_keys_are_errors_with_the_key_meant() {
        for (text, key, meant, line) in [
            (
                "[[case]]\nname = 'a'\nkernal = 'k'\n",
                "kernal",
                "kernel",
                3,
            ),
            ("[defaults]\ntimout = 3\n", "timout", "timeout", 2),
            (
                "[[case]]\nname = 'a'\nsucess-regex = 'x'\n",
                "sucess-regex",
                "success-regex",
                3,
            ),
            (
                "[[case]]\nname = 'a'\ninactivity_timout = 3\n",
                "inactivity_timout",
                "inactivity-timeout",
                3,
            ),
            ("[[cases]]\nname = 'a'\n", "cases", "case", 1), // [[ before the key
        ] {
            let e = Suite::parse(Path::new("s.toml"), text.into()).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Config);
            assert!(
                e.message.starts_with(&format!("unknown key `{key}` in "))
                    && e.message.ends_with(&format!("(did you mean `{meant}`?)")),
                "{e}"
            );
            let loc = e.location.unwrap();
            let col = if text.starts_with("[[cases") { 3 } else { 1 };
            assert_eq!((loc.line, loc.column), (line, col), "{text}");
        }
    }

    #[test]
    fn selection_and_errors_name_the_problem() {
        let s = Suite::parse(Path::new("s.toml"), SUITE.into()).unwrap();
        assert_eq!(s.select(&["b".into()]).unwrap().len(), 1);
        assert!(
            s.select(&["zz".into()])
                .unwrap_err()
                .message
                .contains("available: a, b")
        );
        let e = Suite::parse(Path::new("s.toml"), "[[case]]\nname = 3\n".into()).unwrap_err();
        assert_eq!(e.location.unwrap().line, 2);
        let e = Suite::parse(
            Path::new("s.toml"),
            "[[case]]\nname='x'\n[[case]]\nname='x'\n".into(),
        )
        .unwrap_err();
        assert!(e.message.contains("duplicate"));
        let e = Suite::parse(Path::new("s.toml"), "[[case]]\nkernel='k'\n".into()).unwrap_err();
        assert_eq!(e.message, "case 1 has no `name`");
        assert_eq!(e.location.as_ref().map(|l| l.line), Some(1));
    }
}

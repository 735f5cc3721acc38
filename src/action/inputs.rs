//! Typed reads of the composite action's `INPUT_*` variables, with the toolkit's rules: a boolean
//! input is `true`/`True`/`TRUE` or `false`/`False`/`FALSE` (YAML 1.2 core schema, as
//! `@actions/core`'s `getBooleanInput`), anything else is an error naming the input; an empty or
//! missing value means "not given".

use std::path::{Path, PathBuf};

use crate::error::Error;

/// A source of `INPUT_*` variables (the environment, or a map in tests).
pub trait Lookup {
    fn get(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// The process environment.
pub fn env() -> impl Lookup {
    |k: &str| std::env::var(k).ok()
}

/// Variables from `(name, value)` pairs (tests of the action's steps).
#[cfg(test)]
pub fn map(pairs: &[(&str, &str)]) -> impl Lookup + use<> {
    let m: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| m.get(k).cloned()
}

/// The variable that carries an input: `log-dir` → `INPUT_LOG_DIR`.
pub fn var_name(input: &str) -> String {
    format!("INPUT_{}", input.replace(['-', ' '], "_").to_uppercase())
}

/// The action's boolean inputs (each defaults to true). `qemu-test action prepare` checks them
/// all before anything is installed, so a bad value fails the job in its first second.
pub const BOOLEANS: [&str; 5] = [
    "summary",
    "annotations",
    "cache-images",
    "cache-build",
    "upload-logs",
];

/// The trimmed value of an input, `None` when missing or empty.
pub fn text(vars: &impl Lookup, input: &str) -> Option<String> {
    var(vars, &var_name(input))
}

/// The trimmed value of the environment variable `name` (`INPUT_LOG_DIR`), `None` when
/// missing or empty.
pub fn env_var(name: &str) -> Option<String> {
    var(&env(), name)
}

/// The trimmed value of the variable `name` (`INPUT_LOG_DIR`), `None` when missing or empty.
pub fn var(vars: &impl Lookup, name: &str) -> Option<String> {
    vars.get(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A boolean input: `default` when not given, an error for anything but the six spellings.
pub fn boolean(vars: &impl Lookup, input: &str, default: bool) -> Result<bool, Error> {
    match text(vars, input) {
        None => Ok(default),
        Some(v) => parse_boolean(&v).ok_or_else(|| not_boolean(input, &v)),
    }
}

/// `true`/`True`/`TRUE` and `false`/`False`/`FALSE`, nothing else.
pub fn parse_boolean(v: &str) -> Option<bool> {
    match v {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn not_boolean(input: &str, v: &str) -> Error {
    Error::usage(format!(
        "input `{input}`: '{v}' is not a boolean (the action accepts true, True, TRUE, false, \
         False or FALSE, as @actions/core's getBooleanInput)"
    ))
    .help(format!("write `{input}: true` or `{input}: false`"))
}

/// Words YAML 1.1 (and people) read as booleans but the toolkit does not: refused where an input
/// is a boolean *or* a path, so `junit: yes` is an error instead of a file named `yes`.
fn looks_boolean(v: &str) -> bool {
    matches!(
        v.to_ascii_lowercase().as_str(),
        "yes" | "no" | "on" | "off" | "y" | "n" | "1" | "0" | "true" | "false"
    )
}

/// Where the JUnit report goes: `junit` is `true` (`<out-dir>/junit.xml`), `false` or empty (no
/// report), or a path (relative to `cwd`). One rule for the prepare step and the run.
pub fn junit_path(
    value: Option<&str>,
    out_dir: &Path,
    cwd: &Path,
) -> Result<Option<PathBuf>, Error> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match parse_boolean(v) {
        Some(true) => Ok(Some(out_dir.join("junit.xml"))),
        Some(false) => Ok(None),
        None if looks_boolean(v) => Err(Error::usage(format!(
            "junit: '{v}' is neither a boolean nor a file path"
        ))
        .help(
            "write `true` (for <log-dir>/junit.xml), `false`, or a path such as `out/junit.xml`",
        )),
        None => Ok(Some(cwd.join(v))),
    }
}

/// Case names from a newline- or comma-separated input.
pub fn names(v: Option<&str>) -> Vec<String> {
    v.unwrap_or_default()
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Lookup {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn booleans_follow_get_boolean_input() {
        for (v, want) in [
            ("true", true),
            ("True", true),
            ("TRUE", true),
            ("false", false),
            ("False", false),
            ("FALSE", false),
            (" true ", true),
        ] {
            let get = move |_: &str| Some(v.to_string());
            assert_eq!(boolean(&get, "summary", !want).unwrap(), want, "{v}");
        }
        for v in ["yes", "no", "1", "0", "tRUE", "on", "enabled"] {
            let get = move |_: &str| Some(v.to_string());
            let e = boolean(&get, "upload-logs", true).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            let msg = e.to_string();
            assert!(
                msg.contains("input `upload-logs`") && msg.contains(&format!("'{v}'")),
                "{msg}"
            );
        }
        assert!(boolean(&vars(&[]), "summary", true).unwrap());
        assert!(!boolean(&vars(&[("INPUT_SUMMARY", "  ")]), "summary", false).unwrap());
    }

    #[test]
    fn junit_is_true_false_or_a_path_never_a_file_named_yes() {
        let (out, cwd) = (Path::new("/w/out"), Path::new("/w"));
        assert_eq!(
            junit_path(Some("TRUE"), out, cwd).unwrap(),
            Some(PathBuf::from("/w/out/junit.xml"))
        );
        assert_eq!(junit_path(Some("False"), out, cwd).unwrap(), None);
        assert_eq!(junit_path(None, out, cwd).unwrap(), None);
        assert_eq!(
            junit_path(Some("reports/j.xml"), out, cwd).unwrap(),
            Some(PathBuf::from("/w/reports/j.xml"))
        );
        for v in ["yes", "no", "on", "1"] {
            let e = junit_path(Some(v), out, cwd).unwrap_err();
            assert!(
                e.to_string().contains("neither a boolean nor a file path"),
                "{e}"
            );
        }
    }

    #[test]
    fn input_names_map_to_their_variables() {
        assert_eq!(var_name("log-dir"), "INPUT_LOG_DIR");
        assert_eq!(var_name("github-token"), "INPUT_GITHUB_TOKEN");
        assert_eq!(names(Some("a, b\nc,,")), ["a", "b", "c"]);
    }
}

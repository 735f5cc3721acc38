//! `${workspaceFolder}` (also spelt `${workspace}`, as tgoskits' axbuild writes it) and
//! `${env:NAME}` substitution in QEMU arguments and paths.
//!
//! ostool replaces `${workspaceFolder}` in every argument it passes to a child; we do the same
//! and also accept `${env:NAME}` (ostool knows it only in U-Boot configs) so a CI job can inject
//! paths without editing the file; `${env:NAME:-default}` (ostool's documented form) gives the
//! default when `NAME` is unset. The text is scanned once, left to right: a substituted value
//! is never scanned again. Any other `${...}` (an unknown name, a malformed `${env:}`, an
//! unterminated `${`) is left exactly as written, as ostool does; [`unknown_variables`] lists
//! those so the config loader can warn about them.

use std::ffi::OsString;
use std::path::Path;

use crate::error::{Error, Location};

/// Replaces `${workspaceFolder}` with `workspace` and `${env:NAME}` with the variable's value.
/// An unset `NAME` is a config error naming the variable and `location` (the argument's place in
/// its file); unknown `${...}` references are kept verbatim.
pub fn substitute(
    text: &str,
    workspace: &Path,
    location: Option<&Location>,
) -> Result<String, Error> {
    substitute_with(
        text,
        workspace,
        location,
        &crate::environment::config_variable,
    )
}

/// The `${...}` references in `text` that [`substitute`] leaves unchanged, as written
/// (`${workspaceFolder}` and well-formed `${env:NAME}` are not listed).
pub fn unknown_variables(text: &str) -> Vec<String> {
    references(text)
        .filter(|r| matches!(r.kind, Reference::Unknown))
        .map(|r| text[r.start..r.end].to_string())
        .collect()
}

/// The `${env:NAME}` references in `text` (without a `:-default`) whose variable `lookup` does
/// not have: what [`substitute_with`] would refuse, by name.
pub fn unset_variables(text: &str, lookup: &dyn Fn(&str) -> Option<OsString>) -> Vec<String> {
    references(text)
        .filter_map(|r| match r.kind {
            Reference::Env(name, None) if lookup(name).is_none() => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

/// One `${...}` found in a text.
struct Found<'a> {
    start: usize,
    end: usize,
    kind: Reference<'a>,
}

enum Reference<'a> {
    Workspace,
    /// The variable's name and the `:-default` text, if any.
    Env(&'a str, Option<&'a str>),
    Unknown,
}

/// Every `${...}` in `text`, in order, with byte ranges.
fn references(text: &str) -> impl Iterator<Item = Found<'_>> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let start = pos + text[pos..].find("${")?;
        let Some(len) = text[start + 2..].find('}') else {
            pos = text.len();
            return None;
        };
        let end = start + 2 + len + 1;
        pos = end;
        Some(Found {
            start,
            end,
            kind: classify(&text[start + 2..end - 1]),
        })
    })
}

fn classify(inner: &str) -> Reference<'_> {
    // `${workspace}` is what tgoskits' axbuild substitutes; ostool's name is `${workspaceFolder}`.
    if inner == "workspaceFolder" || inner == "workspace" {
        return Reference::Workspace;
    }
    let Some(rest) = inner.strip_prefix("env:") else {
        return Reference::Unknown;
    };
    let (name, default) = match rest.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (rest, None),
    };
    if is_env_name(name) {
        Reference::Env(name, default)
    } else {
        Reference::Unknown
    }
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// [`substitute`] with `lookup` in place of the process environment (for callers that read a
/// config against a given set of variables, and for tests).
pub fn substitute_with(
    text: &str,
    workspace: &Path,
    location: Option<&Location>,
    lookup: &dyn Fn(&str) -> Option<OsString>,
) -> Result<String, Error> {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for found in references(text) {
        let value = match found.kind {
            Reference::Workspace => workspace_text(workspace, location)?,
            Reference::Env(name, default) => {
                let fallback = |n: &str| lookup(n).or_else(|| default.map(OsString::from));
                env_value(name, location, &fallback)?
            }
            Reference::Unknown => continue,
        };
        out.push_str(&text[copied..found.start]);
        out.push_str(&value);
        copied = found.end;
    }
    out.push_str(&text[copied..]);
    Ok(out)
}

fn workspace_text(workspace: &Path, location: Option<&Location>) -> Result<String, Error> {
    workspace.to_str().map(str::to_string).ok_or_else(|| {
        with_location(
            Error::usage(format!(
                "the workspace path {} is not valid UTF-8, so ${{workspaceFolder}} cannot be put into a QEMU argument",
                workspace.display()
            ))
            .help("pass --workspace with a UTF-8 path"),
            location,
        )
    })
}

fn env_value(
    name: &str,
    location: Option<&Location>,
    lookup: &dyn Fn(&str) -> Option<OsString>,
) -> Result<String, Error> {
    let file = location.map_or_else(
        || "the argument".to_string(),
        |l| l.path.display().to_string(),
    );
    let Some(value) = lookup(name) else {
        let err = Error::config(format!(
            "environment variable `{name}` is not set (used as ${{env:{name}}})"
        ))
        .help(format!(
            "export {name} or remove ${{env:{name}}} from {file}"
        ));
        return Err(with_location(err, location));
    };
    value.into_string().map_err(|_| {
        let err = Error::config(format!(
            "environment variable `{name}` is not valid UTF-8 (used as ${{env:{name}}})"
        ))
        .help(format!(
            "set {name} to UTF-8 text or remove ${{env:{name}}} from {file}"
        ));
        with_location(err, location)
    })
}

fn with_location(err: Error, location: Option<&Location>) -> Error {
    match location {
        Some(l) => err.at(l.clone()),
        None => err,
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::error::ErrorKind;

    fn env(name: &str) -> Option<OsString> {
        match name {
            "IMG" => Some("/images/rootfs.img".into()),
            "EMPTY" => Some(OsString::new()),
            "LOOP" => Some("${env:IMG}".into()),
            _ => None,
        }
    }

    fn sub(text: &str) -> Result<String, Error> {
        substitute_with(text, Path::new("/ws"), None, &env)
    }

    fn loc() -> Location {
        Location {
            path: PathBuf::from("qemu.toml"),
            line: 12,
            column: 3,
        }
    }

    #[test]
    fn workspace_folder_is_replaced_everywhere() {
        assert_eq!(
            sub("file=${workspaceFolder}/tmp/a.img,x=${workspaceFolder}").unwrap(),
            "file=/ws/tmp/a.img,x=/ws"
        );
    }

    #[test]
    fn env_values_are_inserted_once_without_rescanning() {
        assert_eq!(sub("file=${env:IMG}").unwrap(), "file=/images/rootfs.img");
        assert_eq!(sub("[${env:EMPTY}]").unwrap(), "[]");
        assert_eq!(sub("${env:LOOP}").unwrap(), "${env:IMG}");
    }

    #[test]
    fn env_default_applies_only_when_unset() {
        assert_eq!(sub("${env:NOPE_X:-/dev/ttyUSB0}").unwrap(), "/dev/ttyUSB0");
        assert_eq!(sub("${env:IMG:-x}").unwrap(), "/images/rootfs.img");
        assert_eq!(sub("${env:EMPTY:-x}").unwrap(), "");
        assert_eq!(sub("b${env:NOPE_X:-}e").unwrap(), "be");
        assert_eq!(sub("${env:A-B:-x}").unwrap(), "${env:A-B:-x}");
    }

    #[test]
    fn unset_env_names_the_variable_the_place_and_the_fix() {
        let l = loc();
        let err =
            substitute_with("file=${env:NOPE_X}", Path::new("/ws"), Some(&l), &env).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config);
        assert_eq!(err.location, Some(l));
        assert!(err.message.contains("`NOPE_X` is not set"), "{err}");
        assert_eq!(
            err.help.as_deref(),
            Some("export NOPE_X or remove ${env:NOPE_X} from qemu.toml")
        );
    }

    #[test]
    fn unknown_and_malformed_references_stay_verbatim() {
        for text in [
            "${other}",
            "${env:}",
            "${env:A-B}",
            "a ${ unterminated",
            "$HOME",
            "${}",
        ] {
            assert_eq!(sub(text).unwrap(), text);
        }
        assert_eq!(sub("${other}/${workspaceFolder}").unwrap(), "${other}//ws");
        assert_eq!(
            sub("file=${workspace}/tmp/axbuild/rootfs/r.img").unwrap(),
            "file=/ws/tmp/axbuild/rootfs/r.img"
        );
        assert!(unknown_variables("${workspace}/x").is_empty());
    }

    #[test]
    fn unknown_variables_lists_what_is_left_alone() {
        assert_eq!(
            unknown_variables("${workspaceFolder}/${foo}:${env:X}:${env:}:${bar"),
            vec!["${foo}".to_string(), "${env:}".to_string()]
        );
        assert!(unknown_variables("file=${workspaceFolder}/tmp/rootfs.img").is_empty());
    }

    #[test]
    fn real_environment_is_consulted() {
        let path = crate::environment::config_variable("PATH").expect("PATH is set when tests run");
        let path = path.to_string_lossy();
        assert_eq!(
            substitute("${env:PATH}", Path::new("/ws"), None).unwrap(),
            path
        );
        let err =
            substitute("${env:QEMU_TEST_SURELY_UNSET_4f1c}", Path::new("/ws"), None).unwrap_err();
        assert!(err.help.unwrap().ends_with("from the argument"));
    }
}

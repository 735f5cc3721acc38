//! Step outputs, appended to the file named by `GITHUB_OUTPUT`.
//!
//! Single-line values are written as `name=value`. A value with CR or LF uses the heredoc form
//! `name<<ghadelimiter_<random>` … `ghadelimiter_<random>` with a fresh random delimiter per
//! value, as the toolkit does; a name or value that contains the delimiter is refused, so a
//! value can never end early and smuggle in other outputs.

use std::path::Path;
use std::time::Duration;

use crate::error::Error;
use crate::report::CaseResult;
use crate::verdict::Outcome;

/// Appends `outputs` to the `GITHUB_OUTPUT` file at `path` in one write.
pub fn write_outputs(path: &Path, outputs: &[(&str, String)]) -> Result<(), Error> {
    let mut text = String::new();
    for (name, value) in outputs {
        text.push_str(&format_output(name, value, &new_delimiter())?);
    }
    super::append(path, "the GITHUB_OUTPUT file", &text)
}

/// The outputs of a run, as `action.yml` declares them.
///
/// `verdict` is the run's worst outcome as `run::run_all` decided it
/// ([`crate::verdict::worst`]); `passed` is whether the run exits 0;
/// `duration` is the summed case time in seconds; `accel`, `log` and `qemu-version` list each
/// distinct value once (one per line for `log`).
pub fn run_outputs(
    results: &[CaseResult],
    outcome: Outcome,
    exit_code: i32,
    junit: Option<&Path>,
    results_json: Option<&Path>,
) -> Vec<(&'static str, String)> {
    let total: Duration = results.iter().map(|r| r.duration).sum();
    let path = |p: Option<&Path>| p.map(|p| p.display().to_string()).unwrap_or_default();
    vec![
        ("verdict", outcome.name().to_string()),
        ("passed", (exit_code == 0).to_string()),
        ("duration", format!("{:.3}", total.as_secs_f64())),
        (
            "accel",
            distinct(results.iter().map(|r| r.accel.clone()), ","),
        ),
        (
            "log",
            distinct(
                results
                    .iter()
                    .map(|r| r.log.as_ref().map(|p| p.display().to_string())),
                "\n",
            ),
        ),
        ("junit", path(junit)),
        (
            "qemu-version",
            distinct(results.iter().map(|r| r.qemu_version.clone()), ","),
        ),
        ("results-json", path(results_json)),
    ]
}

fn distinct(values: impl Iterator<Item = Option<String>>, sep: &str) -> String {
    let mut seen: Vec<String> = Vec::new();
    for v in values.flatten() {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join(sep)
}

fn new_delimiter() -> String {
    format!("ghadelimiter_{}", super::random_hex(16))
}

/// One output entry, in the single-line or heredoc form.
fn format_output(name: &str, value: &str, delimiter: &str) -> Result<String, Error> {
    check_name(name)?;
    if !value.contains(['\r', '\n']) {
        return Ok(format!("{name}={value}\n"));
    }
    if value.contains(delimiter) {
        return Err(Error::infra(format!(
            "the value of output '{name}' contains the heredoc delimiter '{delimiter}'"
        ))
        .help("this should be impossible with a random delimiter; please report it"));
    }
    Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"))
}

/// Output ids as `action.yml` allows them: a letter or `_`, then letters, digits, `-`, `_`.
/// This also keeps `=`, `<<`, line breaks and any delimiter out of names.
fn check_name(name: &str) -> Result<(), Error> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Ok(())
    } else {
        Err(Error::infra(format!("invalid step output name {name:?}"))
            .help("output names start with a letter or '_' and contain only letters, digits, '-' and '_'"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Verdict;

    #[test]
    fn single_line_and_multi_line_forms() {
        let d = "ghadelimiter_x";
        assert_eq!(
            format_output("verdict", "pass", d).unwrap(),
            "verdict=pass\n"
        );
        assert_eq!(format_output("a", "x=1<<y", d).unwrap(), "a=x=1<<y\n");
        assert_eq!(
            format_output("log", "a\nb", d).unwrap(),
            "log<<ghadelimiter_x\na\nb\nghadelimiter_x\n"
        );
        assert_eq!(
            format_output("cr", "a\rb", d).unwrap(),
            "cr<<ghadelimiter_x\na\rb\nghadelimiter_x\n"
        );
    }

    #[test]
    fn delimiter_in_value_or_bad_names_are_refused() {
        let d = "ghadelimiter_x";
        let err = format_output("log", "a\nghadelimiter_x\nevil=1", d).unwrap_err();
        assert!(err.message.contains("delimiter"), "{err}");
        for bad in ["", "a=b", "a<<ghadelimiter_x", "a\nb", "1st", "a b"] {
            assert!(format_output(bad, "v", d).is_err(), "{bad:?} accepted");
        }
        assert!(format_output("results-json", "v", d).is_ok());
    }

    #[test]
    fn delimiters_are_random() {
        let (a, b) = (new_delimiter(), new_delimiter());
        assert!(a.starts_with("ghadelimiter_") && a.len() == "ghadelimiter_".len() + 32);
        assert_ne!(a, b);
    }

    #[test]
    fn appends_to_the_output_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, "earlier=1\n").unwrap();
        write_outputs(&path, &[("verdict", "fail".into()), ("log", "a\nb".into())]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[..2], ["earlier=1", "verdict=fail"]);
        let delim = lines[2].strip_prefix("log<<").unwrap();
        assert_eq!(lines[3..], ["a", "b", delim]);
    }

    #[test]
    fn run_outputs_say_the_runs_outcome() {
        let case =
            |o| CaseResult::without_boot("c", Verdict::new(o, ""), Duration::from_millis(1500));
        let results = [
            case(Outcome::Pass),
            case(Outcome::Timeout),
            case(Outcome::Error),
        ];
        let out = run_outputs(
            &results,
            Outcome::Timeout,
            1,
            Some(Path::new("j.xml")),
            None,
        );
        let get = |k: &str| out.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("verdict"), "timeout");
        assert_eq!(get("passed"), "false");
        assert_eq!(get("duration"), "4.500");
        assert_eq!(get("junit"), "j.xml");
        assert_eq!(get("results-json"), "");
    }
}

//! Built-in fail pattern sets, opt-in by name (`fail_sets = ["linux"]`), kept as data in
//! `configs/pattern-sets.toml` and embedded in the binary.

use crate::config::PatternSpec;
use crate::error::{Error, Location};

/// The embedded sets file.
pub const SETS_TOML: &str = include_str!("../../configs/pattern-sets.toml");

/// One named set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternSet {
    pub name: String,
    pub description: String,
    pub patterns: Vec<String>,
}

/// All built-in sets in file order.
pub fn builtin() -> Vec<PatternSet> {
    let Ok(doc) = SETS_TOML.parse::<toml_edit::DocumentMut>() else {
        return Vec::new();
    };
    doc.iter()
        .filter_map(|(name, item)| {
            let t = item.as_table()?;
            Some(PatternSet {
                name: name.to_string(),
                description: t.get("description")?.as_str()?.to_string(),
                patterns: t
                    .get("patterns")?
                    .as_array()?
                    .iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect(),
            })
        })
        .collect()
}

/// The fail patterns of the named sets; each pattern carries the place its set was named.
pub fn expand(names: &[(String, Location)]) -> Result<Vec<PatternSpec>, Error> {
    let sets = builtin();
    let mut out = Vec::new();
    for (name, at) in names {
        let Some(set) = sets.iter().find(|s| s.name == *name) else {
            let known: Vec<&str> = sets.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::config(format!("unknown pattern set `{name}`"))
                .at(at.clone())
                .help(format!("use one of: {}", known.join(", "))));
        };
        out.extend(set.patterns.iter().map(|p| PatternSpec {
            regex: p.clone(),
            location: Some(at.clone()),
        }));
    }
    Ok(out)
}

/// The built-in set that applies when a case names no fail patterns.
pub const DEFAULT_SET: &str = "default";

/// `fail` as configured, or the [`DEFAULT_SET`]'s patterns when it is empty and the config did
/// not say "none" on purpose (`explicit`: a `fail_regex` key, `--fail-regex` or `fail_sets`).
/// The flag says whether the default applied.
pub fn or_default(fail: Vec<PatternSpec>, explicit: bool) -> (Vec<PatternSpec>, bool) {
    if !fail.is_empty() || explicit {
        return (fail, false);
    }
    let set = builtin().into_iter().find(|s| s.name == DEFAULT_SET);
    let specs = set
        .map(|s| {
            s.patterns
                .into_iter()
                .map(|regex| PatternSpec {
                    regex,
                    location: None,
                })
                .collect()
        })
        .unwrap_or_default();
    (specs, true)
}

/// One line per set for `--help` and the README: `name: description`.
pub fn help_text() -> String {
    builtin()
        .iter()
        .map(|s| format!("  {:<12} {}", s.name, s.description))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::Pattern;

    #[test]
    fn sets_compile_and_catch_their_messages() {
        let at = Location {
            path: "q.toml".into(),
            line: 1,
            column: 1,
        };
        let names: Vec<(String, Location)> = ["linux", "arceos", "axvisor-x86"]
            .iter()
            .map(|n| (n.to_string(), at.clone()))
            .collect();
        let specs = expand(&names).expect("known sets");
        let pats: Vec<Pattern> = specs
            .iter()
            .map(|s| Pattern::compile(s, "fail").expect("compiles"))
            .collect();
        for line in [
            "[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs",
            "[    2.0] ------------[ cut here ]------------",
            "BUG: KASAN: slab-out-of-bounds in foo",
            "traps: init[1] trap invalid opcode: ip:0",
            "panicked at src/main.rs:1:1",
            "System will reboot, press any key to continue ...",
        ] {
            assert!(
                pats.iter().any(|p| p.regex.is_match(line.as_bytes())),
                "{line}"
            );
        }
        assert!(!pats.iter().any(|p| p.regex.is_match(b"usertests passed!")));
        let e = expand(&[("linx".into(), at)]).unwrap_err();
        assert!(e.help.unwrap().contains("linux, arceos, axvisor-x86"));
    }

    #[test]
    fn the_default_set_applies_only_when_nothing_is_named() {
        let given = vec![PatternSpec {
            regex: "x".into(),
            location: None,
        }];
        assert_eq!(or_default(given.clone(), false), (given, false));
        assert_eq!(or_default(Vec::new(), true), (Vec::new(), false));
        let (set, applied) = or_default(Vec::new(), false);
        assert!(applied);
        let set: Vec<regex::Regex> = set
            .iter()
            .map(|p| regex::Regex::new(&p.regex).unwrap())
            .collect();
        let fails = |line: &str| set.iter().any(|r| r.is_match(line));
        for bad in [
            "[    1.23] Kernel panic - not syncing: VFS: Unable to mount root fs",
            "panicked at src/main.rs:1:1",
            "[ERROR] PANIC: something",
            "Internal error: Oops: 96000004 [#1] SMP",
            "BUG: unable to handle page fault",
            "kernel panic",
            "the system panicked",
        ] {
            assert!(fails(bad), "{bad}");
        }
        for fine in [
            "[    0.000000] Kernel command line: console=ttyAMA0 panic=-1",
            "sysctl kernel.panic_on_oops = 1",
            "Hello, world!",
        ] {
            assert!(!fails(fine), "{fine}");
        }
    }
}

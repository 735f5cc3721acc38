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
}

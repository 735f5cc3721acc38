//! The runner's environment files (GITHUB_OUTPUT, GITHUB_ENV), read as the runner reads them.

use std::collections::BTreeMap;

/// Parses GITHUB_OUTPUT / GITHUB_ENV: `name=value` and `name<<DELIM` … `DELIM`.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            let mut closed = false;
            for l in lines.by_ref() {
                if l == delim {
                    closed = true;
                    break;
                }
                value.push(l);
            }
            assert!(closed, "heredoc for {name} never closed by {delim}");
            map.insert(name.to_string(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            map.insert(name.to_string(), value.to_string());
        } else {
            assert!(
                line.is_empty(),
                "malformed line in an environment file: {line:?}"
            );
        }
    }
    map
}

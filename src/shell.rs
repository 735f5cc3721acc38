//! Shell words as a person would paste them: how commands we run are shown (QEMU's command line,
//! a build's cargo call). Ground level: uses nothing of the crate.

/// Quotes `word` for a POSIX shell when it holds anything but plain characters.
pub fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./,:=+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

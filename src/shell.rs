//! Shell words as a person would paste them: how commands we run are shown (QEMU's command line,
//! a build's cargo call). Ground level: uses nothing of the crate.

/// Quotes `word` for a POSIX shell when it holds anything but plain characters. A word with
/// control characters other than newline and tab (cargo's `CARGO_ENCODED_RUSTFLAGS` separates
/// flags with 0x1f) is written in `$'…'` quotes with `\xHH` escapes, so the pasted text has no
/// invisible bytes.
pub fn quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./,:=+@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else if word
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        let mut out = String::from("$'");
        for c in word.chars() {
            match c {
                '\\' | '\'' => {
                    out.push('\\');
                    out.push(c);
                }
                // bash reads `\xHH` as a byte: C1 controls go as `\uHHHH` (UTF-8).
                c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        out
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn words_are_quoted_only_as_needed() {
        assert_eq!(quote("a/b-c.d"), "a/b-c.d");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("--cfg\x1faxtest"), r"$'--cfg\x1faxtest'");
        assert_eq!(quote("a'\\\tb\x1f"), r"$'a\'\\\x09b\x1f'");
        assert_eq!(quote("a\nb"), "'a\nb'");
    }
}

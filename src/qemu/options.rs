//! QEMU's option strings (`-drive file=a,,b.img,if=virtio`): `,` separates the options and `,,`
//! stands for a comma inside one. The one reader ([`split`]) and writer ([`escape`]) of that
//! rule, for every option string qemu-test reads or writes.

/// The options of `value`, each unescaped: `a=1,,2,b=3` → `a=1,2`, `b=3`.
pub fn split(value: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        if c != ',' {
            current.push(c);
        } else if chars.next_if_eq(&',').is_some() {
            current.push(',');
        } else {
            parts.push(std::mem::take(&mut current));
        }
    }
    parts.push(current);
    parts
}

/// `text` as it is written inside an option: each comma doubled.
pub fn escape(text: &str) -> String {
    text.replace(',', ",,")
}

/// The value of the first option `key=…` among `options` (as [`split`] gives them).
pub fn value<'a>(options: &'a [String], key: &str) -> Option<&'a str> {
    options
        .iter()
        .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubled_commas_are_commas_inside_an_option() {
        assert_eq!(split("a=1,,2,b=3"), ["a=1,2", "b=3"]);
        assert_eq!(split("a,,,b"), ["a,", "b"]);
        assert_eq!(split("x,"), ["x", ""]);
        assert_eq!(split(""), [""]);
        let parts = split("if=none,file=/a,,b.img,file=/c");
        assert_eq!(value(&parts, "file"), Some("/a,b.img"), "the first one");
        assert_eq!(value(&parts, "fil"), None);
        assert_eq!(escape("/a,b"), "/a,,b");
        for text in ["/a,b", ",", "a,,b", "plain"] {
            assert_eq!(split(&escape(text)), [text], "{text}");
        }
    }
}

//! Typed reads of one TOML key, so every config file reports a wrong type the same way: the key,
//! the expected type, what was found, and the value's line:column.

use std::time::Duration;

use toml_edit::{Item, TableLike, Value};

use crate::config::source::SourceText;
use crate::error::{Error, Location};

/// One `key = value` of a parsed document, with the source it came from.
pub struct Field<'a> {
    /// The key as written, for messages.
    pub key: &'a str,
    /// The parsed value, with spans into `source`.
    pub item: &'a Item,
    /// Where the key itself is written (used when the value has no span).
    pub key_location: Location,
    /// The file text, to turn spans into line:column.
    pub source: &'a SourceText,
}

impl Field<'_> {
    /// Where the value starts (the key's place when the value has no span).
    pub fn location(&self) -> Location {
        match self.item.span() {
            Some(span) => self.source.location(span.start),
            None => self.key_location.clone(),
        }
    }

    /// Reads a boolean; `example` is shown in the fix for a wrong type.
    pub fn boolean(&self, example: &str) -> Result<bool, Error> {
        match self.item.as_value() {
            Some(Value::Boolean(b)) => Ok(*b.value()),
            _ => Err(self.wrong_type("a boolean", example)),
        }
    }

    /// Reads an array of strings, each with its own location.
    pub fn strings(&self, example: &str) -> Result<Vec<(String, Location)>, Error> {
        let Some(Value::Array(array)) = self.item.as_value() else {
            return Err(self.wrong_type("an array of strings", example));
        };
        array
            .iter()
            .enumerate()
            .map(|(i, value)| {
                let location = value
                    .span()
                    .map_or_else(|| self.location(), |s| self.source.location(s.start));
                match value {
                    Value::String(s) => Ok((s.value().clone(), location)),
                    other => Err(Error::config(format!(
                        "`{}` must be an array of strings; element {} is {}",
                        self.key,
                        i + 1,
                        with_article(other.type_name())
                    ))
                    .at(location)
                    .help(format!("quote every element, e.g. {example}"))),
                }
            })
            .collect()
    }

    /// The error for a value of the wrong type, at the value.
    pub fn wrong_type(&self, expected: &str, example: &str) -> Error {
        Error::config(format!(
            "`{}` must be {expected}; found {}",
            self.key,
            with_article(item_type(self.item))
        ))
        .at(self.location())
        .help(format!("write it as {example}"))
    }
}

/// Debugging flags of `run` that no config may set, with how they are written.
const COMMAND_LINE_ONLY: &[(&str, &str)] = &[
    ("gdb", "--gdb [ADDR]"),
    ("pause_on_fail", "--pause-on-fail"),
    ("pause-on-fail", "--pause-on-fail"),
];

/// The one unknown-key rule for config files (QEMU TOML, suite files): a key that is close to a
/// known one (`sucess_regex`, `timout`, `kernal`) is an error, because the key it meant would be
/// silently missing and a check could turn into a pass; any other unknown key is returned as a
/// warning message (a key of another tool sharing the file, say). `known` is the format's one
/// key table; `what` names the place ("the QEMU config", "[[case]]"); `ignored` ends the
/// warning ("ostool ignores it too").
pub fn unknown_key(
    key: &str,
    known: &[&str],
    location: Location,
    what: &str,
    ignored: &str,
) -> Result<String, Error> {
    if let Some((_, flag)) = COMMAND_LINE_ONLY.iter().find(|(k, _)| *k == key) {
        return Err(Error::config(format!(
            "`{key}` in {what} is a command-line flag only: `qemu-test run {flag}`"
        ))
        .at(location)
        .help(
            "remove it from the config and pass the flag when you debug locally: it waits for a \
             person at a debugger, so no config (which CI reads too) can ask for it",
        ));
    }
    match crate::config::source::did_you_mean(key, known) {
        Some(meant) => Err(Error::config(format!(
            "unknown key `{key}` in {what} (did you mean `{meant}`?)"
        ))
        .at(location)
        .help(format!(
            "rename it to `{meant}`; a misspelt key would be ignored and its check silently skipped"
        ))),
        None => Ok(format!("unknown key `{key}` in {what}; {ignored}")),
    }
}

/// A TOML type name as users read it in `[table]`/`key = value` terms.
fn item_type(item: &Item) -> &'static str {
    match item {
        Item::Value(v) => v.type_name(),
        Item::Table(_) => "table",
        Item::ArrayOfTables(_) => "array of tables",
        Item::None => "nothing",
    }
}

fn with_article(type_name: &str) -> String {
    let article = if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_name}")
}

/// Typed reads of TOML values with their locations, shared by the config-file readers (the
/// QEMU TOML's grammar keys, suite files): one wording for wrong types, one duration syntax.
pub(crate) struct TomlReader<'a> {
    pub(crate) src: &'a SourceText,
}

impl TomlReader<'_> {
    pub(crate) fn at(&self, item: &Item) -> Location {
        self.src.location(item.span().map_or(0, |s| s.start))
    }

    pub(crate) fn at_value(&self, v: &Value) -> Location {
        self.src.location(v.span().map_or(0, |s| s.start))
    }

    pub(crate) fn wrong(&self, at: Location, key: &str, expected: &str, example: &str) -> Error {
        Error::config(format!("`{key}` must be {expected}"))
            .at(at)
            .help(format!("write it as {example}"))
    }

    /// `[[key]]` tables or `key = [{...}, ...]` (or one `[key]` table), each read by `f`.
    pub(crate) fn tables<T>(
        &self,
        item: &Item,
        key: &str,
        f: impl Fn(&dyn TableLike, Location) -> Result<T, Error>,
    ) -> Result<Vec<T>, Error> {
        let example = format!("`[[{key}]]` tables or `{key} = [{{ ... }}]`");
        match item {
            Item::ArrayOfTables(a) => a
                .iter()
                .map(|t| f(t, self.src.location(t.span().map_or(0, |s| s.start))))
                .collect(),
            Item::Table(t) => Ok(vec![f(t, self.at(item))?]),
            Item::Value(Value::Array(a)) => a
                .iter()
                .map(|v| match v.as_inline_table() {
                    Some(t) => f(t, self.at_value(v)),
                    None => Err(self.wrong(self.at_value(v), key, "a list of tables", &example)),
                })
                .collect(),
            Item::Value(Value::InlineTable(t)) => Ok(vec![f(t, self.at(item))?]),
            _ => Err(self.wrong(self.at(item), key, "a list of tables", &example)),
        }
    }

    pub(crate) fn field<'t>(&self, t: &'t dyn TableLike, key: &str) -> Option<&'t Item> {
        t.get(key)
    }

    pub(crate) fn required<'t>(
        &self,
        t: &'t dyn TableLike,
        key: &str,
        what: &str,
        at: &Location,
    ) -> Result<&'t Item, Error> {
        self.field(t, key).ok_or_else(|| {
            Error::config(format!("{what} needs `{key}`"))
                .at(at.clone())
                .help(format!("add `{key} = ...` to this entry"))
        })
    }

    /// Refuses keys a table does not know, so a typo is not silently ignored.
    pub(crate) fn only(&self, t: &dyn TableLike, known: &[&str], what: &str) -> Result<(), Error> {
        for (k, item) in t.iter() {
            if !known.contains(&k) {
                let hint = crate::config::source::did_you_mean(k, known)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_else(|| format!(" (known: {})", known.join(", ")));
                // At the key (where the typo is), as for top-level keys; else at its value.
                let at = t
                    .key(k)
                    .and_then(|key| key.span())
                    .map_or_else(|| self.at(item), |s| self.src.location(s.start));
                return Err(Error::config(format!("unknown key `{k}` in {what}{hint}"))
                    .at(at)
                    .help("fix or remove the key"));
            }
        }
        Ok(())
    }

    pub(crate) fn string(&self, item: &Item, key: &str) -> Result<String, Error> {
        item.as_str().map(String::from).ok_or_else(|| {
            self.wrong(
                self.at(item),
                key,
                "a string",
                &format!("`{key} = \"...\"`"),
            )
        })
    }

    /// A list of strings (a single string counts as a list of one).
    pub(crate) fn strings(&self, item: &Item, key: &str) -> Result<Vec<(String, Location)>, Error> {
        if let Some(s) = item.as_str() {
            return Ok(vec![(s.to_string(), self.at(item))]);
        }
        let Some(a) = item.as_array() else {
            return Err(self.wrong(
                self.at(item),
                key,
                "an array of strings",
                &format!("`{key} = [\"a\", \"b\"]`"),
            ));
        };
        a.iter()
            .map(|v| match v.as_str() {
                Some(s) => Ok((s.to_string(), self.at_value(v))),
                None => Err(self.wrong(
                    self.at_value(v),
                    key,
                    "an array of strings",
                    &format!("`{key} = [\"a\", \"b\"]`"),
                )),
            })
            .collect()
    }

    /// `"30s"`, `"1m30s"`, `"500ms"` or a number of seconds.
    pub(crate) fn duration(&self, item: &Item, key: &str) -> Result<Duration, Error> {
        let text = match item.as_value() {
            Some(Value::Integer(i)) => i.value().to_string(),
            Some(Value::Float(f)) => f.value().to_string(),
            _ => self.string(item, key)?,
        };
        crate::duration::parse(&text).map_err(|e| {
            Error::config(format!("`{key}`: {e}"))
                .at(self.at(item))
                .help(format!(
                    "write it as `{key} = \"30s\"` (ms, s, m, h) or a number of seconds"
                ))
        })
    }

    pub(crate) fn integer(&self, item: &Item, key: &str, min: i64, max: i64) -> Result<i64, Error> {
        match item.as_integer() {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.wrong(
                self.at(item),
                key,
                &format!("an integer from {min} to {max}"),
                &format!("`{key} = {max}`"),
            )),
        }
    }

    pub(crate) fn boolean(&self, item: &Item, key: &str) -> Result<bool, Error> {
        item.as_bool()
            .ok_or_else(|| self.wrong(self.at(item), key, "a boolean", &format!("`{key} = true`")))
    }

    pub(crate) fn opt_duration(
        &self,
        t: &dyn TableLike,
        key: &str,
    ) -> Result<Option<Duration>, Error> {
        self.field(t, key)
            .map(|i| self.duration(i, key))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn field_of<'a>(
        doc: &'a toml_edit::Document<String>,
        source: &'a SourceText,
        key: &'a str,
    ) -> Field<'a> {
        Field {
            key,
            item: doc.get(key).expect("key present"),
            key_location: source.location(0),
            source,
        }
    }

    fn parse(text: &str) -> (toml_edit::Document<String>, SourceText) {
        let doc = toml_edit::Document::parse(text.to_string()).expect("valid TOML");
        (doc, SourceText::new(Path::new("t.toml"), text.to_string()))
    }

    #[test]
    fn wrong_element_type_points_at_the_element() {
        let (doc, src) = parse("args = [\"-m\",\n  \"1G\", 3]\n");
        let err = field_of(&doc, &src, "args").strings("x").unwrap_err();
        assert_eq!(
            err.message,
            "`args` must be an array of strings; element 3 is an integer"
        );
        let loc = err.location.unwrap();
        assert_eq!((loc.line, loc.column), (2, 9));
    }

    #[test]
    fn wrong_value_type_names_expected_and_found() {
        let (doc, src) = parse("uefi = \"yes\"\n[args]\n");
        let err = field_of(&doc, &src, "uefi")
            .boolean("`uefi = true`")
            .unwrap_err();
        assert_eq!(err.message, "`uefi` must be a boolean; found a string");
        assert_eq!(err.location.unwrap().column, 8);
        let err = field_of(&doc, &src, "args").strings("x").unwrap_err();
        assert_eq!(
            err.message,
            "`args` must be an array of strings; found a table"
        );
    }
}

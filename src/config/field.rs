//! Typed reads of one TOML key, so every config file reports a wrong type the same way: the key,
//! the expected type, what was found, and the value's line:column.

use toml_edit::{Item, Value};

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

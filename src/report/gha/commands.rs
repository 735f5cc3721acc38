//! Workflow commands (`::name key=value::message` lines on stdout), escaped exactly as the
//! Actions toolkit escapes them, with the runner's per-step annotation caps and the
//! stop-commands window that keeps guest output from being obeyed as commands.

use std::fmt;
use std::io::{self, Write};

/// How many annotations of one level the runner keeps per step; later ones are dropped
/// silently. The runner (`ExecutionContext.AddIssue`, `_maxIssueCount = 10`) counts errors,
/// warnings and notices separately.
pub const ANNOTATIONS_PER_LEVEL: usize = 10;

/// Escapes a command's message (toolkit `escapeData`): `%` first, then CR and LF, so that the
/// message stays on one line and decodes back to the original text.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value (toolkit `escapeProperty`): as [`escape_data`] plus `:` and `,`,
/// which would otherwise end the property list or the value.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Annotation severity, i.e. the workflow command name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    /// The command name the runner knows.
    pub fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An annotation on the workflow run, optionally placed on a file line.
///
/// Its [`Display`](fmt::Display) form is the complete command line (without the newline),
/// with every part escaped, so it is safe whatever the message contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub level: Level,
    pub message: String,
    /// Path relative to the repository root; GitHub drops annotations on other paths.
    pub file: Option<String>,
    pub line: Option<usize>,
    pub end_line: Option<usize>,
    pub col: Option<usize>,
    pub end_column: Option<usize>,
    pub title: Option<String>,
}

impl Annotation {
    /// An annotation with only a message.
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Annotation {
            level,
            message: message.into(),
            file: None,
            line: None,
            end_line: None,
            col: None,
            end_column: None,
            title: None,
        }
    }

    /// Places the annotation at `file:line:col`.
    pub fn at(mut self, file: impl Into<String>, line: usize, col: usize) -> Self {
        self.file = Some(file.into());
        self.line = Some(line);
        self.col = Some(col);
        self
    }

    /// Sets the bold title GitHub shows above the message.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }

    fn properties(&self) -> Vec<(&'static str, String)> {
        let num = |n: Option<usize>| n.map(|n| n.to_string());
        [
            ("title", self.title.clone()),
            ("file", self.file.clone()),
            ("line", num(self.line)),
            ("endLine", num(self.end_line)),
            ("col", num(self.col)),
            ("endColumn", num(self.end_column)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect()
    }
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "::{}", self.level.command())?;
        for (i, (key, value)) in self.properties().iter().enumerate() {
            let sep = if i == 0 { ' ' } else { ',' };
            write!(f, "{sep}{key}={}", escape_property(value))?;
        }
        write!(f, "::{}", escape_data(&self.message))
    }
}

/// Emits annotations within the runner's per-step caps and keeps the rest, so the step
/// summary can list what the runner would have dropped silently.
#[derive(Debug, Default)]
pub struct Annotator {
    emitted: [usize; 3],
    overflow: Vec<Annotation>,
}

impl Annotator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the annotation if its level is still under the cap (counting it as emitted);
    /// otherwise keeps it in [`Annotator::overflow`] and returns `None`.
    pub fn admit(&mut self, annotation: Annotation) -> Option<Annotation> {
        let count = &mut self.emitted[annotation.level.index()];
        if *count < ANNOTATIONS_PER_LEVEL {
            *count += 1;
            Some(annotation)
        } else {
            self.overflow.push(annotation);
            None
        }
    }

    /// Writes the annotation as a command line if the cap allows; returns whether it did.
    pub fn annotate<W: Write + ?Sized>(&mut self, out: &mut W, a: Annotation) -> io::Result<bool> {
        match self.admit(a) {
            Some(a) => writeln!(out, "{a}").map(|()| true),
            None => Ok(false),
        }
    }

    /// Annotations beyond the caps, in the order they came.
    pub fn overflow(&self) -> &[Annotation] {
        &self.overflow
    }
}

/// Starts a collapsible log group (groups do not nest in the Actions log).
pub fn group<W: Write + ?Sized>(out: &mut W, title: &str) -> io::Result<()> {
    writeln!(out, "::group::{}", escape_data(title))
}

/// Ends the current log group.
pub fn end_group<W: Write + ?Sized>(out: &mut W) -> io::Result<()> {
    writeln!(out, "::endgroup::")
}

/// Masks `secret` in all later log output of the job (e.g. the `github-token` input).
pub fn add_mask<W: Write + ?Sized>(out: &mut W, secret: &str) -> io::Result<()> {
    writeln!(out, "::add-mask::{}", escape_data(secret))
}

/// The stop-commands window: while it is open the runner processes no workflow command except
/// the line `::<token>::`, which the guest cannot produce because it cannot know the token.
///
/// Guest bytes go through [`StopCommands::echo`], which opens the window first, so no guest
/// byte is ever written outside it. Our own commands must be written only while it is closed:
/// call [`StopCommands::end`] first; the next echo opens a new window with a fresh token.
#[derive(Debug)]
pub struct StopCommands {
    token: Option<String>,
    at_line_start: bool,
}

impl Default for StopCommands {
    fn default() -> Self {
        StopCommands {
            token: None,
            at_line_start: true,
        }
    }
}

impl StopCommands {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the window is open (guest text may be pending on the current line).
    pub fn is_open(&self) -> bool {
        self.token.is_some()
    }

    /// Opens the window with a fresh 128-bit random token; no-op when already open.
    pub fn begin<W: Write + ?Sized>(&mut self, out: &mut W) -> io::Result<()> {
        if self.token.is_none() {
            let token = super::random_hex(16);
            writeln!(out, "::stop-commands::{token}")?;
            self.token = Some(token);
            self.at_line_start = true;
        }
        Ok(())
    }

    /// Writes untrusted bytes verbatim, inside the window (opened first if needed).
    pub fn echo<W: Write + ?Sized>(&mut self, out: &mut W, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.begin(out)?;
        out.write_all(bytes)?;
        self.at_line_start = bytes.last() == Some(&b'\n');
        Ok(())
    }

    /// Closes the window; no-op when closed. An unfinished guest line is ended first, because
    /// the runner only resumes on a line that *starts* with `::<token>::`.
    pub fn end<W: Write + ?Sized>(&mut self, out: &mut W) -> io::Result<()> {
        if let Some(token) = self.token.take() {
            if !self.at_line_start {
                out.write_all(b"\n")?;
            }
            writeln!(out, "::{token}::")?;
            self.at_line_start = true;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_escapes_percent_first_then_cr_lf() {
        assert_eq!(escape_data("100%\r\nok"), "100%25%0D%0Aok");
        assert_eq!(escape_data("%0A"), "%250A");
        assert_eq!(escape_data("a:b,c"), "a:b,c");
    }

    #[test]
    fn properties_also_escape_colon_and_comma() {
        assert_eq!(escape_property("C:\\x,y%\n"), "C%3A\\x%2Cy%25%0A");
    }

    #[test]
    fn annotation_formats_like_the_toolkit() {
        let a = Annotation::new(Level::Error, "boom\nline 2")
            .at("configs/a,b.toml", 12, 3)
            .title("fail: x");
        assert_eq!(
            a.to_string(),
            "::error title=fail%3A x,file=configs/a%2Cb.toml,line=12,col=3::boom%0Aline 2"
        );
        assert_eq!(
            Annotation::new(Level::Notice, "hi").to_string(),
            "::notice::hi"
        );
        let mut w = Annotation::new(Level::Warning, "w");
        w.end_line = Some(4);
        w.end_column = Some(9);
        assert_eq!(w.to_string(), "::warning endLine=4,endColumn=9::w");
    }

    #[test]
    fn caps_apply_per_level_and_keep_the_overflow() {
        let mut ann = Annotator::new();
        let mut out = Vec::new();
        for i in 0..12 {
            assert_eq!(
                ann.annotate(&mut out, Annotation::new(Level::Error, format!("e{i}")))
                    .unwrap(),
                i < ANNOTATIONS_PER_LEVEL
            );
        }
        for i in 0..11 {
            ann.annotate(&mut out, Annotation::new(Level::Warning, format!("w{i}")))
                .unwrap();
        }
        assert!(
            ann.annotate(&mut out, Annotation::new(Level::Notice, "n"))
                .unwrap()
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.lines().filter(|l| l.starts_with("::error::")).count(),
            10
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("::warning::"))
                .count(),
            10
        );
        let over: Vec<&str> = ann.overflow().iter().map(|a| a.message.as_str()).collect();
        assert_eq!(over, ["e10", "e11", "w10"]);
    }

    #[test]
    fn window_ends_an_unfinished_line_and_renews_the_token() {
        let mut win = StopCommands::new();
        let mut out = Vec::new();
        win.end(&mut out).unwrap();
        assert!(out.is_empty(), "closing a closed window writes nothing");
        win.echo(&mut out, b"login: ").unwrap();
        assert!(win.is_open());
        win.end(&mut out).unwrap();
        win.echo(&mut out, b"ok\n").unwrap();
        win.end(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        let t1 = lines[0].strip_prefix("::stop-commands::").unwrap();
        assert_eq!(lines[1], "login: ");
        assert_eq!(lines[2], format!("::{t1}::"));
        let t2 = lines[3].strip_prefix("::stop-commands::").unwrap();
        assert_ne!(t1, t2);
        assert_eq!(lines[4], "ok");
        assert_eq!(lines[5], format!("::{t2}::"));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn group_and_mask_escape_their_text() {
        let mut out = Vec::new();
        group(&mut out, "boot a\n::error::x").unwrap();
        end_group(&mut out).unwrap();
        add_mask(&mut out, "s3cr%t").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "::group::boot a%0A::error::x\n::endgroup::\n::add-mask::s3cr%25t\n"
        );
    }
}

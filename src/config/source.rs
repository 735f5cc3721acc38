//! A loaded text file that maps byte offsets to line:column, so every config error and warning
//! can name the exact place; and [`read_input`], the one bounded reader for every config-like
//! file the user names (QEMU TOML, suite, registry, board, VM config, profiles, Cargo.toml), on
//! [`open_input`], the one way a file the user names is opened (also a console log that `check`
//! streams).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Location};

/// The largest config-like file read: real ones are a few KiB, so anything this big is a
/// mistake (`/dev/zero`, a disk image passed by accident) and must not be read into memory.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;

/// Reads the user's file `path` (`what` names its kind in messages, e.g. "QEMU config") as UTF-8
/// text: only a regular file of at most [`MAX_INPUT_BYTES`] is accepted.
///
/// The file is opened with `O_NONBLOCK` so that opening a FIFO with no writer returns at once
/// instead of hanging, and `O_NOCTTY` so a terminal device never becomes the controlling
/// terminal; the type is then checked on the open descriptor (`fstat`), so no rename between
/// check and read can swap in another file. The read itself is capped too, for files that grow
/// while being read.
pub fn read_input(path: &Path, what: &str) -> Result<String, Error> {
    let (file, meta) = open_input(path, what)?;
    let too_big = || {
        Error::usage(format!(
            "{what} {} is larger than {} MiB; it cannot be a {what}",
            path.display(),
            MAX_INPUT_BYTES >> 20
        ))
        .help(format!("check the path: a {what} is a small text file"))
    };
    if meta.len() > MAX_INPUT_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    (&file as &File)
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::input_io(path, what, &e))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| not_utf8(path, what, e))
}

/// Opens the user's file `path` for reading, refusing anything but a regular file (see
/// [`read_input`]: `O_NONBLOCK` so a FIFO never hangs the open, `O_NOCTTY`, the type checked on
/// the open descriptor); `what` names its kind in messages.
pub fn open_input(path: &Path, what: &str) -> Result<(File, std::fs::Metadata), Error> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| Error::input_io(path, what, &e))?;
    let meta = file
        .metadata()
        .map_err(|e| Error::input_io(path, what, &e))?;
    if !meta.is_file() {
        return Err(Error::usage(format!(
            "{what} {} is {}, not a regular file",
            path.display(),
            kind_of(&meta.file_type())
        ))
        .help("pass the path of the file itself, not a directory, pipe or device"));
    }
    Ok((file, meta))
}

/// "a directory", "a FIFO", … for messages about non-regular files.
fn kind_of(t: &std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Names the line and column of the first byte that is not UTF-8.
fn not_utf8(path: &Path, what: &str, err: std::string::FromUtf8Error) -> Error {
    let valid = err.utf8_error().valid_up_to();
    let bytes = err.into_bytes();
    let prefix = String::from_utf8_lossy(&bytes[..valid]).into_owned();
    let location = SourceText::new(path, prefix).location(valid);
    Error::config(format!(
        "the {what} is not valid UTF-8 text (TOML files must be UTF-8)"
    ))
    .at(location)
    .help("re-save the file as UTF-8")
}

/// The text of a user file plus the start offset of every line.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceText {
    pub fn new(path: &Path, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceText {
            path: path.to_path_buf(),
            text,
            line_starts,
        }
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = self.text[start..offset].chars().count() + 1;
        Location {
            path: self.path.clone(),
            line: line + 1,
            column,
        }
    }
}

/// The known name a typo most likely meant: equal up to case and `-`/`_`, or within a small
/// edit distance where swapping two adjacent characters counts as one edit (optimal string
/// alignment: transpositions are the commonest typo); the one rule for "did you mean" hints
/// (config keys, image names).
pub fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let edit_distance = strsim::osa_distance;
    let normal = |s: &str| s.to_ascii_lowercase().replace(['-', '_'], "");
    let lowered = word.to_ascii_lowercase();
    known
        .iter()
        .copied()
        .filter(|name| {
            normal(word) == normal(name) || edit_distance(&lowered, name) <= (name.len() / 4).max(1)
        })
        .min_by_key(|name| edit_distance(&lowered, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let s = SourceText::new(Path::new("q.toml"), "a = 1\nbé = 2\n".into());
        assert_eq!((s.location(0).line, s.location(0).column), (1, 1));
        assert_eq!((s.location(6).line, s.location(6).column), (2, 1));
        // 'é' is two bytes but one column
        assert_eq!(s.location(9).column, 3);
    }
}

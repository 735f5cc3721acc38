//! The GitHub Actions surface: workflow commands on stdout, the step summary, step outputs, and
//! check runs through the GitHub API ([`checks`]).
//!
//! This is our own small module rather than the `ghactions` crate: ghactions 0.20 has no step
//! summary, no `notice`, no `add-mask`, no `stop-commands`, no escaping of messages or
//! properties, no annotation caps and no multi-line outputs (it writes `name=value` with no
//! heredoc delimiter), and it pins octocrab 0.53, a second copy next to our octocrab 0.54.
//! What the runner expects is small and documented (workflow-commands reference, the toolkit's
//! `command.ts`, `summary.ts` and `file-command.ts`), so we implement exactly that here.
//!
//! Untrusted guest bytes only ever reach the Actions log inside a `::stop-commands::` window
//! ([`commands::StopCommands`]); summary text from the guest is HTML-escaped
//! ([`summary`]); outputs use random heredoc delimiters ([`outputs`]).

pub mod checks;
pub mod commands;
mod gantt;
mod held;
pub mod outputs;
mod reporter;
pub mod summary;

pub use reporter::{GithubEnv, GithubOptions, GithubReporter};

/// `bytes` random bytes from the thread-local CSPRNG, as lower-case hex.
///
/// Used for stop-commands tokens and heredoc delimiters, which must be unguessable by the
/// guest (16 bytes = 128 bits).
pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(buf.as_mut_slice());
    crate::image::stream::hex(&buf)
}

/// Appends `text` to the runner's file at `path` (`what`: "the step summary", "the
/// GITHUB_OUTPUT file") in one write, as the toolkit appends to its file commands.
fn append(path: &std::path::Path, what: &str, text: &str) -> Result<(), crate::error::Error> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| crate::error::Error::io(path, &format!("open {what}"), &e))?;
    file.write_all(text.as_bytes())
        .map_err(|e| crate::error::Error::io(path, &format!("append to {what}"), &e))
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_hex_is_fresh_and_128_bits() {
        let a = super::random_hex(16);
        let b = super::random_hex(16);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}

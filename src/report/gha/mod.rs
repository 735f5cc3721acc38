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
    use std::fmt::Write as _;
    let mut buf = vec![0u8; bytes];
    rand::fill(buf.as_mut_slice());
    let mut s = String::with_capacity(bytes * 2);
    for b in buf {
        let _ = write!(s, "{b:02x}");
    }
    s
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

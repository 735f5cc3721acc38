//! The image tests' pieces: fast deadlines, a one-image registry, what stays in the cache,
//! and a progress recorder.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qemu_test_action::http::Deadlines;
use qemu_test_action::image::progress::Progress;
use qemu_test_action::image::{FetchOptions, Registry};

use super::archives;
use super::scratch::entries;

/// Deadlines short enough that timeout tests take about a second.
pub fn fast_options() -> FetchOptions {
    FetchOptions {
        deadlines: Deadlines {
            connect: Duration::from_secs(2),
            read: Duration::from_secs(2),
            total: Duration::from_secs(10),
        },
        attempts: 4,
        backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        max_redirects: 5,
        ..FetchOptions::default()
    }
}

/// A one-image registry pointing at `url`.
pub fn one_image(name: &str, version: &str, sha: &str, url: &str) -> Registry {
    let text = archives::registry_text(&[(name, version, sha, url)]);
    Registry::from_text("test.toml", &text).expect("test registry parses")
}

/// Every file under the cache root except the lock files, relative: "nothing of it stays".
pub fn cache_files(root: &Path) -> Vec<PathBuf> {
    entries(root)
        .into_iter()
        .filter(|(p, is_dir)| !is_dir && !p.starts_with("locks"))
        .map(|(p, _)| p)
        .collect()
}

/// Records progress notes so tests can see retries and resumes.
#[derive(Clone, Default)]
pub struct Recorder {
    pub notes: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().unwrap().clone()
    }
}

impl Progress for Recorder {
    fn start(&mut self, _: &str, _: Option<u64>) {}
    fn update(&mut self, _: u64, _: Option<u64>) {}
    fn note(&mut self, message: &str) {
        self.notes.lock().unwrap().push(message.to_string());
    }
    fn finish(&mut self) {}
}

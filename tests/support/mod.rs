//! Shared pieces of the image tests: the loopback server, test archives, fast deadlines.
#![allow(dead_code)]

pub mod archives;
pub mod http_server;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qemu_test_action::image::progress::Progress;
use qemu_test_action::image::{FetchOptions, Registry};
use qemu_test_action::net::Deadlines;

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
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.retain(|p| !p.starts_with("locks"));
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(list) = std::fs::read_dir(dir) else {
        return;
    };
    for item in list.flatten() {
        let path = item.path();
        if item.file_type().is_ok_and(|t| t.is_dir()) {
            walk(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
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

//! `results.json`: every case with its verdict, stages and timings, for machines and for the
//! action's `results-json` output.

use std::path::PathBuf;

use serde::Serialize;

use super::{CaseResult, Event, Reporter};
use crate::error::Error;

/// Format version of `results.json`; bump on incompatible changes.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Serialize)]
struct Document<'a> {
    version: u32,
    tool: &'static str,
    tool_version: &'static str,
    exit_code: i32,
    /// Peak resident memory of this process (not QEMU's), to show memory stays bounded.
    max_rss_kib: u64,
    cases: &'a [CaseResult],
}

/// Peak resident set size of this process in KiB (`getrusage`), 0 if unavailable.
pub fn max_rss_kib() -> u64 {
    // SAFETY: getrusage only writes into the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) == 0 {
            usage.ru_maxrss.max(0) as u64
        } else {
            0
        }
    }
}

/// Writes `results.json` when the run finishes (cancelled runs included).
pub struct JsonReporter {
    path: PathBuf,
    error: Option<Error>,
}

impl JsonReporter {
    pub fn new(path: PathBuf) -> Self {
        JsonReporter { path, error: None }
    }

    fn write(&self, results: &[CaseResult], exit_code: i32) -> Result<(), Error> {
        let doc = Document {
            version: FORMAT_VERSION,
            tool: "qemu-test",
            tool_version: env!("CARGO_PKG_VERSION"),
            exit_code,
            max_rss_kib: max_rss_kib(),
            cases: results,
        };
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| Error::infra(format!("cannot encode results: {e}")))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create", &e))?;
        }
        crate::prepare::workdir::write_file(&self.path, (text + "\n").as_bytes())
    }
}

impl Reporter for JsonReporter {
    fn event(&mut self, event: &Event<'_>) {
        if let Event::RunFinished {
            results, exit_code, ..
        } = event
        {
            self.error = self.write(results, *exit_code).err();
        }
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.error.take().map_or(Ok(()), Err)
    }
}

//! The guest's memory after a failed boot (`core_dump = "on-fail"`): QEMU writes it as an ELF
//! core over QMP (`dump-guest-memory`, see `run::control`) into the case's work dir, and this
//! module compresses it to `<case>.core.gz` beside the console log.
//!
//! ELF rather than QEMU's `kdump-*` formats: gdb opens only ELF cores (`crash` reads both),
//! and the kdump formats compress page by page inside QEMU while the verdict waits. Guest RAM
//! is mostly zeros, so gzip (flate2, already used for image archives) at its fastest level
//! shrinks a 128 MiB dump of a small guest to well under a megabyte; `gunzip` gives gdb the
//! ELF back.

use std::io;
use std::path::PathBuf;

/// Compresses `raw` (QEMU's ELF core) to `gz` and removes `raw`, off the runtime's thread
/// (other cases' consoles keep flowing). `gz` appears whole or not at all.
pub async fn compress(raw: PathBuf, gz: PathBuf) -> Result<(), String> {
    let done = tokio::task::spawn_blocking(move || {
        let r = compress_file(&raw, &gz);
        let _ = std::fs::remove_file(&raw);
        r.map_err(|e| format!("cannot write {}: {e}", gz.display()))
    });
    done.await.map_err(|e| e.to_string())?
}

fn compress_file(raw: &std::path::Path, gz: &std::path::Path) -> io::Result<()> {
    let dir = gz.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::Builder::new()
        .prefix(".qemu-test-core-")
        .tempfile_in(dir)?;
    let mut encoder = flate2::write::GzEncoder::new(
        io::BufWriter::new(tmp.as_file()),
        flate2::Compression::fast(),
    );
    io::copy(&mut std::fs::File::open(raw)?, &mut encoder)?;
    encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
    tmp.persist(gz).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[tokio::test(flavor = "current_thread")]
    async fn the_core_is_gzipped_beside_the_log_and_the_raw_file_removed() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("work/core.elf");
        std::fs::create_dir_all(raw.parent().unwrap()).unwrap();
        let mut bytes = crate::magic::ELF.to_vec();
        bytes.resize(1 << 20, 0);
        std::fs::write(&raw, &bytes).unwrap();
        let gz = dir.path().join("case.core.gz");
        compress(raw.clone(), gz.clone()).await.unwrap();
        assert!(!raw.exists());
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, bytes);
        assert!(std::fs::metadata(&gz).unwrap().len() < 16 << 10);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 2, "no temporary file left: {left:?}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_missing_dump_is_an_error_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let gz = dir.path().join("case.core.gz");
        let err = compress(dir.path().join("none.elf"), gz.clone())
            .await
            .unwrap_err();
        assert!(err.contains("case.core.gz"), "{err}");
        assert!(!gz.exists());
    }
}

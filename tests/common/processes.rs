//! Proof that nothing the tool started outlived it.

use std::path::Path;

/// Panics if any process whose command line mentions `marker` is alive (zombies excluded).
pub fn assert_no_qemu_left(marker: &Path) {
    let left = processes_mentioning(&marker.to_string_lossy());
    assert!(left.is_empty(), "processes left running: {left:?}");
}

/// (pid, cmdline) of live, non-zombie processes whose command line contains `needle`.
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        let state = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = state
            .rsplit(") ")
            .next()
            .is_some_and(|s| s.starts_with('Z'));
        if cmd.contains(needle) && !zombie && !cmd.contains("cargo") {
            found.push((pid, cmd));
        }
    }
    found
}

//! The real validators on the real files: `scripts/action/validate.sh` runs action-validator
//! (installed into target/tools from crates.io when missing) on action.yml and every workflow,
//! and shellcheck on the step scripts. A broken copy of action.yml must be rejected, so a
//! validator that accepts anything cannot make this test pass.

use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn validator() -> PathBuf {
    let local = repo().join("target/tools/bin/action-validator");
    if local.is_file() {
        local
    } else {
        PathBuf::from("action-validator")
    }
}

#[test]
fn action_and_workflows_pass_the_validators_and_a_broken_action_does_not() {
    let out = Command::new("bash")
        .arg(repo().join("scripts/action/validate.sh"))
        .output()
        .expect("run validate.sh");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "validators failed:\n{log}");
    for file in [
        "action.yml",
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
        "examples/axvisor/test-qemu.yml",
        "examples/axvisor/test-board.yml",
    ] {
        assert!(
            log.contains(&format!("ok: action-validator {file}")),
            "{file} not validated:\n{log}"
        );
    }
    assert!(log.contains("ok: shellcheck"), "{log}");

    let text = std::fs::read_to_string(repo().join("action.yml")).expect("read action.yml");
    let broken = text.replacen("      shell: bash\n", "", 1);
    assert_ne!(broken, text);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("action.yml"), broken).expect("write broken copy");
    let out = Command::new(validator())
        .arg("action.yml")
        .current_dir(dir.path())
        .output()
        .expect("run action-validator");
    assert!(
        !out.status.success(),
        "a run step without shell must be rejected"
    );
}

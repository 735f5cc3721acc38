//! QEMU-CPU facts: whether a QEMU CPU model offers a guest a feature (riscv64's H extension,
//! loongarch64's LVZ), learnt by asking that very QEMU binary. Which feature an architecture's
//! hypervisor needs is the requirement table's business ([`crate::profile::hypervisor`]); this
//! module only asks.
//!
//! How: `<qemu> -machine none -cpu <model[,features]> -accel tcg -qmp stdio` creates the one CPU
//! (as `/machine/unattached/device[0]`) and nothing else; QMP `qom-get` reads the property.
//! `query-cpu-model-expansion` would be the documented route, but QEMU 10 answers it for
//! riscv64 without the single-letter extensions (no `h`) and refuses the `full` expansion for
//! loongarch64; `qom-get` on a created CPU includes the user's `,h=off`-style overrides too.
//! About 50 ms per question.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::arch::Arch;

use super::model::{CpuFeature, Status};

/// Longest a QEMU may take to answer (it answers in ~50 ms; a hung one is killed).
pub const ASK_TIMEOUT: Duration = Duration::from_secs(5);

impl CpuFeature {
    /// Asks `program` (a `qemu-system-<arch>`) under TCG whether its `cpu` has `feature` on.
    pub fn ask(arch: Arch, program: &str, cpu: &str, feature: &str) -> CpuFeature {
        CpuFeature {
            arch,
            program: program.to_string(),
            cpu: cpu.to_string(),
            feature: feature.to_string(),
            status: ask(program, cpu, feature, ASK_TIMEOUT),
        }
    }
}

/// The QMP exchange: negotiate, read the property, quit. Ids tie the reply to the question.
fn script(feature: &str) -> String {
    let get = serde_json::json!({
        "execute": "qom-get",
        "arguments": { "path": "/machine/unattached/device[0]", "property": feature },
        "id": "feature",
    });
    format!("{{\"execute\":\"qmp_capabilities\"}}\n{get}\n{{\"execute\":\"quit\"}}\n")
}

fn ask(program: &str, cpu: &str, feature: &str, timeout: Duration) -> Status {
    let spawned = Command::new(program)
        .args(["-machine", "none", "-cpu", cpu, "-accel", "tcg"])
        .args(["-nodefaults", "-display", "none", "-qmp", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return Status::not_checked(format!("cannot run {program}: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // QEMU may already have exited (a bad -cpu); its stderr says why, below.
        let _ = stdin.write_all(script(feature).as_bytes());
    }
    let (tx, rx) = mpsc::channel();
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    std::thread::spawn(move || {
        let mut out = String::new();
        let mut err = String::new();
        if let Some(s) = stdout {
            let _ = s.take(1 << 20).read_to_string(&mut out);
        }
        if let Some(s) = stderr {
            let _ = s.take(1 << 16).read_to_string(&mut err);
        }
        let _ = tx.send((out, err));
    });
    let answer = rx.recv_timeout(timeout);
    if answer.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    match answer {
        Ok((out, err)) => judge(program, cpu, feature, &out, &err),
        Err(_) => Status::not_checked(format!(
            "{program} did not answer within {} s",
            timeout.as_secs()
        )),
    }
}

/// Reads QEMU's replies (one JSON object per line) into the answer.
fn judge(program: &str, cpu: &str, feature: &str, out: &str, err: &str) -> Status {
    let reply = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["id"] == "feature");
    let model = cpu.split(',').next().unwrap_or(cpu);
    match reply {
        Some(v) if v["return"] == true => Status::Yes,
        Some(v) if v["return"] == false => {
            Status::no(format!("QEMU's CPU `{cpu}` has {feature}=off ({program})"))
        }
        Some(v)
            if v["error"]["desc"]
                .as_str()
                .is_some_and(|d| d.contains("not found")) =>
        {
            Status::no(format!(
                "QEMU's CPU model `{model}` has no `{feature}` property: this QEMU ({program}) \
                 does not emulate it"
            ))
        }
        Some(v) => Status::not_checked(format!(
            "{program} answered `qom-get {feature}` with {}",
            v["error"]
        )),
        None => {
            let why = err.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            Status::not_checked(format!(
                "{program} -cpu {cpu} could not be asked: {}",
                if why.is_empty() {
                    "no QMP answer"
                } else {
                    why.trim()
                }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read_by_id() {
        let greeting = "{\"QMP\": {}}\n{\"return\": {}}\n";
        let yes =
            format!("{greeting}{{\"id\": \"feature\", \"return\": true}}\n{{\"return\": {{}}}}\n");
        assert_eq!(judge("q", "rv64", "h", &yes, ""), Status::Yes);
        let off = format!("{greeting}{{\"id\": \"feature\", \"return\": false}}\n");
        assert_eq!(
            judge("q", "rv64,h=false", "h", &off, "").reason(),
            Some("QEMU's CPU `rv64,h=false` has h=off (q)")
        );
        let missing = format!(
            "{greeting}{{\"id\": \"feature\", \"error\": {{\"class\": \"GenericError\", \
             \"desc\": \"Property 'la464-loongarch-cpu.lvz' not found\"}}}}\n"
        );
        let s = judge("qemu-system-loongarch64", "la464", "lvz", &missing, "");
        assert!(matches!(s, Status::No { .. }), "{s:?}");
        assert!(
            s.reason()
                .unwrap()
                .contains("`la464` has no `lvz` property"),
            "{s:?}"
        );
        let bad = judge(
            "q",
            "nope",
            "h",
            "",
            "qemu-system-riscv64: unable to find CPU model 'nope'\n",
        );
        assert!(matches!(bad, Status::NotChecked { .. }), "{bad:?}");
        assert!(
            bad.reason()
                .unwrap()
                .contains("unable to find CPU model 'nope'")
        );
    }

    #[test]
    fn a_missing_binary_is_not_checked() {
        let s = ask("/nonexistent/qemu-system-riscv64", "rv64", "h", ASK_TIMEOUT);
        assert!(matches!(s, Status::NotChecked { .. }), "{s:?}");
    }
}

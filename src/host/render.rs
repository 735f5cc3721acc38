//! The probe as aligned, readable text for `qemu-test probe`.

use std::fmt::Write;

use super::model::{HostProbe, Severity, Status};

const LABEL: usize = 10;
const KEY: usize = 12;
const STATE: usize = 9;

impl HostProbe {
    /// Human-readable report: one section per fact, findings with their fixes last.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_host(&mut out);
        self.render_qemu(&mut out);
        self.render_kvm(&mut out);
        self.render_cpu_features(&mut out);
        self.render_findings(&mut out);
        let _ = writeln!(out, "Probed in {:.2} s", self.duration_seconds);
        out
    }

    fn render_host(&self, out: &mut String) {
        let h = &self.host;
        line(
            out,
            "Host",
            &format!("{} · {} · kernel {}", h.machine, h.os, h.kernel),
        );
        let cpu = match (&h.cpu_model, &h.cpu_vendor) {
            (Some(model), Some(vendor)) => format!("{} × {model} ({vendor})", h.cpus),
            (Some(name), None) | (None, Some(name)) => format!("{} × {name}", h.cpus),
            (None, None) => format!("{}", h.cpus),
        };
        line(out, "CPU", &cpu);
        let memory = match (h.memory_total_bytes, h.memory_available_bytes) {
            (Some(t), Some(a)) => format!("{} total, {} available", gib(t), gib(a)),
            (Some(t), None) => format!("{} total", gib(t)),
            _ => "unknown".to_string(),
        };
        line(out, "Memory", &memory);
        if let Some(disk) = &self.disk {
            let free = match (disk.free_bytes, &disk.error) {
                (Some(f), _) => format!("{} free for {}", gib(f), disk.path.display()),
                (None, Some(e)) => format!("unknown for {} ({e})", disk.path.display()),
                (None, None) => format!("unknown for {}", disk.path.display()),
            };
            line(out, "Disk", &free);
        }
    }

    fn render_qemu(&self, out: &mut String) {
        let mut label = "QEMU";
        for q in &self.qemu {
            let (state, detail) = match (&q.path, &q.version, &q.error) {
                (None, _, _) => ("missing", format!("sudo apt-get install {}", q.package)),
                (Some(p), Some(v), _) => (v.as_str(), p.display().to_string()),
                (Some(p), None, Some(e)) => ("?", format!("{} ({e})", p.display())),
                (Some(p), None, None) => ("?", p.display().to_string()),
            };
            row(out, label, q.arch.name(), state, &detail);
            label = "";
        }
        let mut label = "Firmware";
        for fw in &self.firmware {
            let (state, detail) = match (&fw.pflash, &fw.package) {
                (Some(p), _) => (
                    "found",
                    format!("{} + {}", p.code.display(), p.vars.display()),
                ),
                (None, Some(package)) => ("missing", format!("sudo apt-get install {package}")),
                (None, None) => ("missing", String::new()),
            };
            row(out, label, fw.arch.name(), state, &detail);
            label = "";
        }
    }

    /// What QEMU said about the CPU extensions a guest hypervisor needs (riscv64's H,
    /// loongarch64's LVZ), for each CPU it was asked about.
    fn render_cpu_features(&self, out: &mut String) {
        let mut label = "Hypervisor";
        for f in &self.cpu_features {
            let state = match &f.status {
                Status::Yes => "yes",
                Status::No { .. } => "no",
                Status::NotChecked { .. } => "?",
            };
            let detail = match f.status.reason() {
                Some(why) => format!("-cpu {}: {why}", f.cpu),
                None => format!("-cpu {} has {}=on ({})", f.cpu, f.feature, f.program),
            };
            row(out, label, f.arch.name(), state, &detail);
            label = "";
        }
    }

    fn render_kvm(&self, out: &mut String) {
        let k = &self.kvm;
        let opened = format!("{} opens read-write", k.device.display());
        let api = format!(
            "version {}; VM, guest memory and vCPU created",
            k.api_version.unwrap_or(0)
        );
        status_row(out, "KVM", "present", &k.present, &opened);
        status_row(out, "", "api", &k.api, &api);
        let ran = match &k.guest {
            Some(g) => format!(
                "64-bit guest: lock cmpxchg16b ok, 1M-iteration loop in {:.1} ms",
                g.loop_seconds.unwrap_or(0.0) * 1e3
            ),
            None => "a test guest ran".to_string(),
        };
        status_row(out, "", "runs guests", &k.runs_guests, &ran);
        status_row(out, "", "vmx", &k.nested.vmx, "KVM offers VT-x to guests");
        status_row(out, "", "svm", &k.nested.svm, "KVM offers AMD-V to guests");
    }

    fn render_findings(&self, out: &mut String) {
        let mut label = "Findings";
        if self.findings.is_empty() {
            line(out, label, "none");
        }
        for f in &self.findings {
            let severity = match f.severity {
                Severity::Info => "info",
                Severity::Warning => "warning",
                Severity::Error => "error",
            };
            let _ = writeln!(out, "{label:<LABEL$} {severity:<8} {}", f.message);
            if let Some(fix) = &f.fix {
                let _ = writeln!(out, "{:<LABEL$} {:<8} fix: {fix}", "", "");
            }
            label = "";
        }
    }
}

fn line(out: &mut String, label: &str, text: &str) {
    let _ = writeln!(out, "{label:<LABEL$} {text}");
}

fn row(out: &mut String, label: &str, key: &str, state: &str, detail: &str) {
    let text = format!("{label:<LABEL$} {key:<KEY$} {state:<STATE$} {detail}");
    let _ = writeln!(out, "{}", text.trim_end());
}

fn status_row(out: &mut String, label: &str, key: &str, status: &Status, yes_detail: &str) {
    match status {
        Status::Yes => row(out, label, key, "yes", yes_detail),
        Status::No { reason } => row(out, label, key, "no", reason),
        Status::NotChecked { reason } => row(
            out,
            label,
            key,
            "unknown",
            &format!("not checked: {reason}"),
        ),
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::host::model::{Finding, KvmProbe};

    #[test]
    fn columns_line_up_and_reasons_show() {
        let mut probe = HostProbe::with_kvm(
            Arch::X86_64,
            KvmProbe::unusable("emulation failure at lock cmpxchg16b"),
        );
        probe.findings.push(Finding {
            severity: Severity::Warning,
            message: "KVM is present but cannot run guests".to_string(),
            fix: Some("use accel=tcg".to_string()),
        });
        let text = probe.render();
        assert!(
            text.contains("KVM        present      yes       /dev/kvm opens read-write"),
            "{text}"
        );
        assert!(
            text.contains("           runs guests  no        emulation failure at lock cmpxchg16b"),
            "{text}"
        );
        assert!(
            text.contains("Findings   warning  KVM is present but cannot run guests\n"),
            "{text}"
        );
        assert!(
            text.contains("                    fix: use accel=tcg\n"),
            "{text}"
        );
        let absent = HostProbe::with_kvm(Arch::X86_64, KvmProbe::absent()).render();
        assert!(
            absent.contains("api          unknown   not checked: /dev/kvm does not exist"),
            "{absent}"
        );
    }
}

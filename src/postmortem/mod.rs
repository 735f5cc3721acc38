//! Where the guest was when a boot failed: each vCPU's state read over QMP before QEMU is
//! stopped ([`registers`] parses what QEMU prints), its addresses named against the ELFs the
//! case knows ([`symbols`]), in one line for the verdict and in full for the reports.
//!
//! Reading happens in `run::control` (it owns the QMP connection); everything here is pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Serialize, Serializer};

pub mod backtrace;
pub mod registers;
pub mod symbols;

pub use backtrace::GuestBacktrace;
pub use symbols::{Location, Symbolizer};

/// The vCPUs' state when the verdict was reached, and what could not be read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Postmortem {
    pub vcpus: Vec<VcpuState>,
    /// Why some or all of the state is missing ("QMP did not answer within 2s", …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Time spent reading it, in milliseconds (the verdict waited this long for it).
    pub took_ms: u64,
    /// Backtraces the guest printed in its last console lines, their addresses named.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backtraces: Vec<GuestBacktrace>,
    /// The guest's memory as a gzip'd ELF core (`core_dump = "on-fail"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core_dump: Option<std::path::PathBuf>,
}

/// One vCPU, stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VcpuState {
    /// QEMU's cpu index (vCPU0, vCPU1, …).
    pub index: u32,
    /// QEMU's target name: `aarch64`, `x86_64`, `riscv64`, …
    pub arch: String,
    #[serde(serialize_with = "hex")]
    pub pc: u64,
    #[serde(serialize_with = "hex_opt", skip_serializing_if = "Option::is_none")]
    pub sp: Option<u64>,
    /// The link register (aarch64 X30, riscv `ra`); x86 has none.
    #[serde(serialize_with = "hex_opt", skip_serializing_if = "Option::is_none")]
    pub lr: Option<u64>,
    /// Exception level or privilege mode: `EL2`, `CPL0 long mode`, `S-mode`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Waiting for an interrupt (x86 `HLT`; Arm and RISC-V: the instruction before the PC is
    /// a `WFI`). `None` when it cannot be told.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halted: Option<bool>,
    /// Where the PC and LR are, when a symbol file covers them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pc_at: Option<Location>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr_at: Option<Location>,
    /// Every general-purpose and control register QEMU printed, as `0x…` strings.
    pub registers: BTreeMap<String, String>,
}

/// Most vCPUs named in the one-line summary; the reports list them all.
const LINE_VCPUS: usize = 4;

impl Postmortem {
    /// One line for the verdict reason and the annotation: `vCPU0 at EL2 in main+0x10
    /// (main.c:41), vCPU1 halted at EL2 in 0x40080000 (no symbols)`; the note when nothing
    /// was read.
    pub fn one_line(&self) -> String {
        if self.vcpus.is_empty() {
            return match self.notes.first() {
                Some(n) => format!("vCPU state not read: {n}"),
                None => "vCPU state not read".to_string(),
            };
        }
        let mut s = String::new();
        for (i, v) in self.vcpus.iter().take(LINE_VCPUS).enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&v.one_line());
        }
        if self.vcpus.len() > LINE_VCPUS {
            let _ = write!(s, " (+{} more vCPUs)", self.vcpus.len() - LINE_VCPUS);
        }
        s
    }

    /// Names every PC and LR, and every address of the guest's backtraces, with
    /// `symbolizer`.
    pub fn symbolize(&mut self, symbolizer: &Symbolizer) {
        for v in &mut self.vcpus {
            let mode = v.mode.as_deref();
            v.pc_at = symbolizer.locate_in(v.pc, mode);
            v.lr_at = v.lr.and_then(|lr| symbolizer.locate_in(lr, mode));
        }
        backtrace::symbolize(&mut self.backtraces, symbolizer);
    }

    /// The full text for a report body (JUnit's failure, the step summary): one line per
    /// vCPU with PC, LR, SP; each guest backtrace with its frames named; the notes.
    pub fn report_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for v in &self.vcpus {
            let mut l = format!("vCPU{}", v.index);
            if let Some(m) = &v.mode {
                let _ = write!(l, " {m}");
            }
            if v.halted == Some(true) {
                l.push_str(" halted");
            }
            match &v.pc_at {
                Some(at) => {
                    let _ = write!(l, ": pc {:#x} {at}", v.pc);
                }
                None => {
                    let _ = write!(l, ": pc {}", v.where_pc());
                }
            }
            if let Some(lr) = v.lr {
                let at = v
                    .lr_at
                    .as_ref()
                    .map(|a| format!(" {a}"))
                    .unwrap_or_default();
                let _ = write!(l, "; lr {lr:#x}{at}");
            }
            if let Some(sp) = v.sp {
                let _ = write!(l, "; sp {sp:#x}");
            }
            out.push(l);
        }
        for b in &self.backtraces {
            let mut head = format!("guest backtrace ({}", b.format);
            if let Some(k) = &b.kind {
                let _ = write!(head, " kind={k}");
            }
            if let Some(a) = &b.arch {
                let _ = write!(head, " arch={a}");
            }
            head.push_str("):");
            out.push(head);
            for f in &b.frames {
                out.push(match &f.at {
                    Some(at) => format!("  {} {at}", f.text),
                    None => format!("  {}", f.text),
                });
            }
            for e in &b.errors {
                out.push(format!("  BT_ERROR {e}"));
            }
        }
        if let Some(core) = &self.core_dump {
            out.push(format!(
                "core dump: {} (the guest's memory as a gzip'd ELF core: gunzip it, then gdb <kernel ELF> <core>)",
                core.display()
            ));
        }
        out.extend(self.notes.iter().map(|n| format!("note: {n}")));
        out
    }
}

impl VcpuState {
    /// `vCPU0 halted at EL2 in main+0x10 (main.c:41)`.
    pub fn one_line(&self) -> String {
        let mut s = format!("vCPU{}", self.index);
        if self.halted == Some(true) {
            s.push_str(" halted");
        }
        if let Some(m) = &self.mode {
            let _ = write!(s, " at {m}");
        }
        let _ = write!(s, " in {}", self.where_pc());
        s
    }

    /// The PC's function and line, else its address with "user space" (EL0, CPL3, U-mode)
    /// or "no symbols".
    pub fn where_pc(&self) -> String {
        match &self.pc_at {
            Some(l) => l.to_string(),
            None if self.in_user_space() => format!("{:#x} (user space)", self.pc),
            None => format!("{:#x} (no symbols)", self.pc),
        }
    }

    fn in_user_space(&self) -> bool {
        matches!(
            self.mode.as_deref(),
            Some("EL0" | "U-mode" | "VU-mode") | Some("CPL3 long mode" | "CPL3 protected mode")
        )
    }
}

fn hex<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:#x}"))
}

fn hex_opt<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => hex(v, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vcpu(index: u32, halted: Option<bool>) -> VcpuState {
        VcpuState {
            index,
            arch: "aarch64".into(),
            pc: 0x4008_0090,
            sp: Some(0x4008_40a0),
            lr: Some(0x4008_0030),
            mode: Some("EL2".into()),
            halted,
            pc_at: None,
            lr_at: None,
            registers: BTreeMap::new(),
        }
    }

    #[test]
    fn one_line_names_each_vcpu_and_caps_the_count() {
        let mut p = Postmortem {
            vcpus: vec![vcpu(0, Some(false)), vcpu(1, Some(true))],
            ..Default::default()
        };
        p.vcpus[0].pc_at = Some(Location {
            function: Some("main".into()),
            offset: 0x10,
            file: Some("main.c".into()),
            line: Some(41),
            object: "hang.elf".into(),
        });
        assert_eq!(
            p.one_line(),
            "vCPU0 at EL2 in main+0x10 (main.c:41), vCPU1 halted at EL2 in 0x40080090 (no symbols)"
        );
        p.vcpus = (0..6).map(|i| vcpu(i, None)).collect();
        assert!(
            p.one_line()
                .ends_with("vCPU3 at EL2 in 0x40080090 (no symbols) (+2 more vCPUs)")
        );
        let none = Postmortem {
            notes: vec!["QMP did not answer within 2s".into()],
            ..Default::default()
        };
        assert_eq!(
            none.one_line(),
            "vCPU state not read: QMP did not answer within 2s"
        );
    }

    #[test]
    fn addresses_are_hex_strings_in_json() {
        let j = serde_json::to_value(vcpu(0, Some(true))).unwrap();
        assert_eq!(j["pc"], "0x40080090");
        assert_eq!(j["lr"], "0x40080030");
        assert_eq!(j["halted"], true);
    }
}

//! Reads a vCPU's state out of QEMU's `info registers` text (HMP, through QMP's
//! `human-monitor-command`). QMP has no register query of its own (`query-cpus-fast` lists the
//! vCPUs only); the HMP text is the interface `gdb`-less tools use, and its shape has been
//! stable for years per target. The gdbstub would give raw register packets instead, but
//! needs each target's register XML to lay them out: more code for the same facts.
//!
//! Parsed here, per QEMU target:
//! - `aarch64`: `PC=`, `X00=`…`X30=` (X30 is the LR), `SP=`, `PSTATE=… EL2h`.
//! - `x86_64`/`i386`: `RIP=`/`EIP=`, `RSP=`/`ESP=`, `CPL=`, `HLT=`, `CS64` on the CS line
//!   (long mode), `CR0`'s PE bit (protected or real mode).
//! - `riscv64`/`riscv32`: ` pc  …`, `x1/ra`, `x2/sp`, and `priv` when QEMU prints it (QEMU
//!   10.0 does not: its dump has `V` and the CSRs, so no mode is given).
//!
//! Other targets (32-bit `arm`, `loongarch64`) are named as not read, not guessed.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

use super::VcpuState;

/// Longest register dump read (QEMU prints a few KiB per vCPU).
pub const MAX_DUMP: usize = 64 * 1024;
/// Most registers kept per vCPU.
const MAX_REGISTERS: usize = 96;

/// `NAME=hex` pairs, as aarch64 and x86 print them (`R8 =…` has a space before `=`).
static EQ_PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b([A-Z][A-Z0-9]{0,7}) ?=([0-9a-fA-F]{1,16})\b").expect("valid regex")
});
/// riscv's ` name  hex` lines and `x1/ra hex` columns.
static SPACED_PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|\s)([a-z][a-z0-9]{0,9}(?:/[a-z0-9]{1,6})?)\s+([0-9a-f]{8,16})\b")
        .expect("valid regex")
});

/// The targets whose dump [`parse`] reads.
pub fn supported(target: &str) -> bool {
    matches!(
        target,
        "aarch64" | "x86_64" | "i386" | "riscv64" | "riscv32"
    )
}

/// The state of vCPU `index` of QEMU target `target` from its `info registers` dump; `None`
/// when the target is not supported or the dump has no program counter.
pub fn parse(target: &str, index: u32, dump: &str) -> Option<VcpuState> {
    let dump = &dump[..floor_char_boundary(dump, MAX_DUMP)];
    match target {
        "aarch64" => aarch64(index, dump),
        "x86_64" | "i386" => x86(target, index, dump),
        "riscv64" | "riscv32" => riscv(target, index, dump),
        _ => None,
    }
}

/// The instruction that puts a vCPU to sleep until an interrupt, when the target has a fixed
/// 4-byte one: QEMU leaves the PC after it while the vCPU waits.
pub fn wait_instruction(target: &str) -> Option<u32> {
    match target {
        "aarch64" => Some(0xd503_207f),
        "riscv64" | "riscv32" => Some(0x1050_0073),
        _ => None,
    }
}

/// The word in the answer to `x /1wx ADDR` (`0000000040080090: 0xd503205f`).
pub fn memory_word(answer: &str) -> Option<u32> {
    let (_, word) = answer.trim().split_once(": ")?;
    u32::from_str_radix(word.trim().trim_start_matches("0x"), 16).ok()
}

fn aarch64(index: u32, dump: &str) -> Option<VcpuState> {
    let regs = pairs(&EQ_PAIR, dump, |name| {
        !(name.starts_with('Q') || name.starts_with("FP"))
    });
    let pc = value(&regs, "PC")?;
    // `PSTATE=600003c9 -ZC- EL2h`
    let mode = dump
        .split_whitespace()
        .find(|w| w.starts_with("EL") && w.len() >= 3 && w.as_bytes()[2].is_ascii_digit())
        .map(|w| w[..3].to_string());
    Some(VcpuState {
        index,
        arch: "aarch64".into(),
        pc,
        sp: value(&regs, "SP"),
        lr: value(&regs, "X30"),
        mode,
        halted: None,
        pc_at: None,
        lr_at: None,
        registers: hex_map(regs),
    })
}

fn x86(target: &str, index: u32, dump: &str) -> Option<VcpuState> {
    let regs = pairs(&EQ_PAIR, dump, |name| {
        !(name.starts_with("XMM")
            || name.starts_with("YMM")
            || name.starts_with("ZMM")
            || name.starts_with("FPR")
            || name.starts_with("DR")
            || name.starts_with("ST")
            || name.starts_with('F'))
    });
    let pc = value(&regs, "RIP").or_else(|| value(&regs, "EIP"))?;
    let sp = value(&regs, "RSP").or_else(|| value(&regs, "ESP"));
    let cs64 = dump
        .lines()
        .any(|l| l.starts_with("CS =") && l.contains(" CS64"));
    let cr0 = value(&regs, "CR0").unwrap_or(0);
    let efer = value(&regs, "EFER").unwrap_or(0);
    let kind = if cs64 {
        "long mode"
    } else if efer & 0x400 != 0 {
        "compatibility mode"
    } else if cr0 & 1 != 0 {
        "protected mode"
    } else {
        "real mode"
    };
    let mode = match value(&regs, "CPL") {
        Some(cpl) if kind != "real mode" => format!("CPL{cpl} {kind}"),
        _ => kind.to_string(),
    };
    Some(VcpuState {
        index,
        arch: target.into(),
        pc,
        sp,
        lr: None,
        mode: Some(mode),
        halted: value(&regs, "HLT").map(|h| h == 1),
        pc_at: None,
        lr_at: None,
        registers: hex_map(regs),
    })
}

fn riscv(target: &str, index: u32, dump: &str) -> Option<VcpuState> {
    let regs = pairs(&SPACED_PAIR, dump, |name| !name.starts_with('f'));
    let pc = value(&regs, "pc")?;
    let virt = dump
        .lines()
        .find_map(|l| l.trim().strip_prefix("V      ="))
        .is_some_and(|v| v.trim() == "1");
    let mode = value(&regs, "priv").and_then(|p| {
        let m = match p {
            0 => "U-mode",
            1 => "S-mode",
            3 => "M-mode",
            _ => return None,
        };
        Some(if virt { format!("V{m}") } else { m.to_string() })
    });
    Some(VcpuState {
        index,
        arch: target.into(),
        pc,
        sp: value(&regs, "x2/sp"),
        lr: value(&regs, "x1/ra"),
        mode,
        halted: None,
        pc_at: None,
        lr_at: None,
        registers: hex_map(regs),
    })
}

/// The `(name, value)` pairs `re` finds in `dump` whose name `keep` accepts, first wins.
fn pairs(re: &Regex, dump: &str, keep: impl Fn(&str) -> bool) -> BTreeMap<String, u64> {
    let mut regs = BTreeMap::new();
    for c in re.captures_iter(dump) {
        if regs.len() == MAX_REGISTERS {
            break;
        }
        let name = &c[1];
        if !keep(name) {
            continue;
        }
        if let Ok(v) = u64::from_str_radix(&c[2], 16) {
            regs.entry(name.to_string()).or_insert(v);
        }
    }
    regs
}

fn value(regs: &BTreeMap<String, u64>, name: &str) -> Option<u64> {
    regs.get(name).copied()
}

fn hex_map(regs: BTreeMap<String, u64>) -> BTreeMap<String, String> {
    regs.into_iter()
        .map(|(k, v)| (k, format!("{v:#x}")))
        .collect()
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU 10.0's dump of the `hang` fixture (trimmed of its Q registers).
    const AARCH64: &str = "CPU#0
 PC=0000000040080090 X00=0000000009000030 X01=0000000000000301
X02=00000000400800a0 X03=0000000000000000 X04=0000000000000000
X29=0000000000000000 X30=0000000040080030  SP=00000000400840a0
PSTATE=600003c9 -ZC- EL2h     FPCR=00000000 FPSR=00000000
Q00=0000000000000000:0000000000000000 Q01=0000000000000000:0000000000000000
";

    /// QEMU 10.0's dump of Debian's amd64 kernel idling (trimmed).
    const X86_64: &str = "CPU#0
RAX=000000000001ad40 RBX=0000000000000000 RCX=0000000000000000 RDX=4000000000000000
RSI=0000000000000083 RDI=0000000000000104 RBP=ffffffff82a1aa40 RSP=ffffffff82a03e98
R8 =0000000000023000 R9 =0000000000000007 R10=00000000fffffffb R11=0000000000000001
RIP=ffffffff81a592eb RFL=00000246 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=1
ES =0000 0000000000000000 00000000 00000000
CS =0010 0000000000000000 ffffffff 00af9b00 DPL=0 CS64 [-RA]
CR0=80050033 CR2=00000000005794a9 CR3=00000000060fc000 CR4=000006f0
DR0=0000000000000000 DR1=0000000000000000
EFER=0000000000000d01
FCW=037f FSW=0000 [ST=0] FTW=00 MXCSR=00001f80
XMM00=0000000000000000 0000000000000000 XMM01=0000000000000000 0000000000000000
";

    /// The reset state QEMU 10.0 prints before the firmware ran.
    const X86_RESET: &str = "EAX=00000000 EBX=00000000 ECX=00000000 EDX=00000663
ESI=00000000 EDI=00000000 EBP=00000000 ESP=00000000
EIP=0000fff0 EFL=00000002 [-------] CPL=0 II=0 A20=1 SMM=0 HLT=0
CS =f000 ffff0000 0000ffff 00009b00
CR0=60000010 CR2=00000000 CR3=00000000 CR4=00000000
EFER=0000000000000000
";

    #[test]
    fn aarch64_pc_sp_lr_and_exception_level() {
        let v = parse("aarch64", 0, AARCH64).unwrap();
        assert_eq!(v.pc, 0x4008_0090);
        assert_eq!(v.sp, Some(0x4008_40a0));
        assert_eq!(v.lr, Some(0x4008_0030));
        assert_eq!(v.mode.as_deref(), Some("EL2"));
        assert_eq!(v.registers["X01"], "0x301");
        assert!(
            !v.registers.contains_key("Q00"),
            "vector registers left out"
        );
        assert!(!v.registers.contains_key("FPCR"));
    }

    #[test]
    fn x86_long_mode_halted_and_real_mode() {
        let v = parse("x86_64", 1, X86_64).unwrap();
        assert_eq!(v.index, 1);
        assert_eq!(v.pc, 0xffff_ffff_81a5_92eb);
        assert_eq!(v.sp, Some(0xffff_ffff_82a0_3e98));
        assert_eq!(v.lr, None);
        assert_eq!(v.mode.as_deref(), Some("CPL0 long mode"));
        assert_eq!(v.halted, Some(true));
        assert_eq!(v.registers["R8"], "0x23000");
        assert!(!v.registers.contains_key("XMM00"));
        assert!(!v.registers.contains_key("DR0"));
        let r = parse("x86_64", 0, X86_RESET).unwrap();
        assert_eq!(r.pc, 0xfff0);
        assert_eq!(r.mode.as_deref(), Some("real mode"));
        assert_eq!(r.halted, Some(false));
    }

    #[test]
    fn riscv_pc_ra_sp_and_privilege() {
        let dump = " V      =   0
 pc       0000000080200040
 mhartid  0000000000000000
 mstatus  0000000a000000a0
 priv     0000000000000001
 x0/zero  0000000000000000 x1/ra    0000000080200010 x2/sp    0000000080210000 x3/gp    0000000000000000
 f0/ft0   0000000000000000
";
        let v = parse("riscv64", 0, dump).unwrap();
        assert_eq!(v.pc, 0x8020_0040);
        assert_eq!(v.lr, Some(0x8020_0010));
        assert_eq!(v.sp, Some(0x8021_0000));
        assert_eq!(v.mode.as_deref(), Some("S-mode"));
        assert!(!v.registers.contains_key("f0/ft0"));
    }

    #[test]
    fn unsupported_targets_and_garbage_are_not_guessed() {
        assert!(parse("loongarch64", 0, AARCH64).is_none());
        assert!(!supported("arm"));
        assert!(parse("aarch64", 0, "no registers here").is_none());
        // A huge dump is read only up to the cap.
        let big = format!("{}PC=0000000000000001", "X".repeat(MAX_DUMP));
        assert!(parse("aarch64", 0, &big).is_none());
    }

    #[test]
    fn memory_words_and_wait_instructions() {
        assert_eq!(
            memory_word("0000000040080090: 0xd503207f\r\n"),
            wait_instruction("aarch64")
        );
        assert_eq!(memory_word("Cannot access memory"), None);
        assert_eq!(wait_instruction("x86_64"), None);
    }
}

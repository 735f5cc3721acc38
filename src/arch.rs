//! Guest architectures: the `qemu-system-<arch>` binary to run and the Debian package that has it.

use std::fmt;
use std::str::FromStr;

/// A guest CPU architecture, named as QEMU names its system emulators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Aarch64,
    Arm,
    X86_64,
    I386,
    Riscv64,
    Riscv32,
    Loongarch64,
}

impl Arch {
    /// Every architecture, for help texts and probing.
    pub const ALL: [Arch; 7] = [
        Arch::Aarch64,
        Arch::Arm,
        Arch::X86_64,
        Arch::I386,
        Arch::Riscv64,
        Arch::Riscv32,
        Arch::Loongarch64,
    ];

    /// QEMU's name for the architecture (`qemu-system-<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Arch::Aarch64 => "aarch64",
            Arch::Arm => "arm",
            Arch::X86_64 => "x86_64",
            Arch::I386 => "i386",
            Arch::Riscv64 => "riscv64",
            Arch::Riscv32 => "riscv32",
            Arch::Loongarch64 => "loongarch64",
        }
    }

    /// The architecture of a Rust target triple's first component (`riscv64gc-unknown-none-elf`
    /// → riscv64, `i686-…` → i386, `aarch64-unknown-none-softfloat` → aarch64).
    pub fn from_triple(triple: &str) -> Option<Arch> {
        let first = triple.split('-').next().unwrap_or_default();
        let base = match first {
            f if f.starts_with("riscv64") => "riscv64",
            f if f.starts_with("riscv32") => "riscv32",
            f if f.starts_with("armv7") || f.starts_with("thumbv7") => "arm",
            "i586" => "i386",
            f => f,
        };
        base.parse().ok()
    }

    /// The system emulator binary for this architecture.
    pub fn qemu_binary(self) -> String {
        format!("qemu-system-{}", self.name())
    }

    /// The Debian/Ubuntu package that ships [`Arch::qemu_binary`], for "install it" hints.
    pub fn debian_package(self) -> &'static str {
        match self {
            Arch::Aarch64 | Arch::Arm => "qemu-system-arm",
            Arch::X86_64 | Arch::I386 => "qemu-system-x86",
            Arch::Riscv64 | Arch::Riscv32 | Arch::Loongarch64 => "qemu-system-misc",
        }
    }

    /// The default `-machine` when the config names none (ostool ≥ 0.8.13 behaviour).
    pub fn default_machine(self) -> &'static str {
        match self {
            Arch::X86_64 | Arch::I386 => "q35",
            _ => "virt",
        }
    }

    /// Whether KVM on a `host` machine runs guests of this architecture: its own, and i386
    /// guests on x86_64 (the CPU runs 32-bit code natively; `qemu-system-i386 -accel kvm`).
    pub fn kvm_runs_on(self, host: Arch) -> bool {
        self == host || (self == Arch::I386 && host == Arch::X86_64)
    }

    /// The architecture of the machine this process runs on, if it is one QEMU emulates.
    pub fn host() -> Option<Arch> {
        std::env::consts::ARCH.parse().ok()
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Arch {
    type Err = String;

    /// Accepts QEMU names plus the usual aliases (`arm64`, `amd64`, `x86`, `x64`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "aarch64" | "arm64" => Arch::Aarch64,
            "arm" | "armv7" => Arch::Arm,
            "x86_64" | "amd64" | "x64" => Arch::X86_64,
            "i386" | "i686" | "x86" => Arch::I386,
            "riscv64" => Arch::Riscv64,
            "riscv32" => Arch::Riscv32,
            "loongarch64" => Arch::Loongarch64,
            other => {
                let known: Vec<&str> = Arch::ALL.iter().map(|a| a.name()).collect();
                return Err(format!(
                    "unknown architecture '{other}' (expected one of: {})",
                    known.join(", ")
                ));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_triples_name_their_arch() {
        for (t, a) in [
            ("aarch64-unknown-none-softfloat", Some(Arch::Aarch64)),
            ("riscv64gc-unknown-none-elf", Some(Arch::Riscv64)),
            ("x86_64-unknown-none", Some(Arch::X86_64)),
            (
                "loongarch64-unknown-none-softfloat",
                Some(Arch::Loongarch64),
            ),
            ("i686-unknown-linux-gnu", Some(Arch::I386)),
            ("wasm32-unknown-unknown", None),
        ] {
            assert_eq!(Arch::from_triple(t), a, "{t}");
        }
    }

    #[test]
    fn aliases_parse_to_qemu_names() {
        assert_eq!("arm64".parse::<Arch>().unwrap(), Arch::Aarch64);
        assert_eq!("amd64".parse::<Arch>().unwrap(), Arch::X86_64);
        assert_eq!(Arch::X86_64.qemu_binary(), "qemu-system-x86_64");
        assert_eq!(Arch::Aarch64.debian_package(), "qemu-system-arm");
        assert!("sparc".parse::<Arch>().unwrap_err().contains("aarch64"));
        assert!(Arch::I386.kvm_runs_on(Arch::X86_64));
        assert!(Arch::X86_64.kvm_runs_on(Arch::X86_64));
        assert!(!Arch::X86_64.kvm_runs_on(Arch::I386));
        assert!(!Arch::Arm.kvm_runs_on(Arch::Aarch64));
    }
}

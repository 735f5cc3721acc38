//! Known setup problems, each with the fix a user can apply. Derived from the probe's facts only,
//! so that a hand-built [`HostProbe`] gets the same findings as a real one.

use std::collections::BTreeMap;

use crate::arch::Arch;

use super::model::{Finding, HostProbe, KvmAccess, Severity, Status};

/// Free space below which image downloads and rootfs copies are likely to fail.
const LOW_DISK_BYTES: u64 = 2 << 30;

/// The udev rule that opens `/dev/kvm` to every user (what GitHub-hosted runners need).
pub const KVM_UDEV_FIX: &str = "echo 'KERNEL==\"kvm\", GROUP=\"kvm\", MODE=\"0666\", \
     OPTIONS+=\"static_node=kvm\"' | sudo tee /etc/udev/rules.d/99-kvm4all.rules && \
     sudo udevadm control --reload-rules && sudo udevadm trigger --name-match=kvm \
     (or add the user to group kvm and log in again)";

/// Every finding about `probe`, most severe first.
pub fn derive(probe: &HostProbe) -> Vec<Finding> {
    let mut findings = Vec::new();
    kvm(probe, &mut findings);
    nested(probe, &mut findings);
    emulators(probe, &mut findings);
    firmware(probe, &mut findings);
    disk(probe, &mut findings);
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings
}

fn finding(severity: Severity, message: String, fix: impl Into<String>) -> Finding {
    Finding {
        severity,
        message,
        fix: Some(fix.into()),
    }
}

fn kvm(probe: &HostProbe, out: &mut Vec<Finding>) {
    let kvm = &probe.kvm;
    let device = kvm.device.display();
    let tcg = "cases run under TCG with accel=auto; cases that require kvm are skipped or fail";
    match kvm.access {
        KvmAccess::Missing => out.push(finding(
            Severity::Warning,
            format!("{device} does not exist: {tcg}"),
            "enable VT-x/AMD-V (on a cloud VM: nested virtualisation) and load kvm_intel or kvm_amd, \
             or use accel=tcg",
        )),
        KvmAccess::PermissionDenied => out.push(finding(
            Severity::Warning,
            format!("{device} exists but this user cannot open it read-write: {tcg}"),
            KVM_UDEV_FIX,
        )),
        KvmAccess::Failed => out.push(finding(
            Severity::Warning,
            format!("{}: {tcg}", kvm.present.reason().unwrap_or("KVM cannot be opened")),
            "check the KVM kernel modules (kvm, kvm_intel or kvm_amd), or use accel=tcg",
        )),
        KvmAccess::ReadWrite => {
            if let Some(reason) = kvm.api.reason() {
                out.push(finding(
                    Severity::Warning,
                    format!("KVM is present but its API fails: {reason}"),
                    "use accel=tcg or a runner with working KVM",
                ));
            } else if let Status::No { reason } = &kvm.runs_guests {
                out.push(finding(
                    Severity::Warning,
                    format!("KVM is present but cannot run guests on this host: {reason}"),
                    "use accel=tcg or a runner with working KVM (accel=auto picks TCG here)",
                ));
            }
        }
    }
}

fn nested(probe: &HostProbe, out: &mut Vec<Finding>) {
    if probe.host.arch != Some(Arch::X86_64) {
        return;
    }
    let n = &probe.kvm.nested;
    let intel_fix = "an Intel host (on a VM: with nested virtualisation enabled) and kvm_intel nested=Y, \
                     e.g. a self-hosted runner";
    if n.host_svm && !n.host_vmx {
        out.push(finding(
            Severity::Info,
            "the host CPU offers AMD-V (SVM) only: guests that need Intel VT-x (e.g. AxVisor x86_64) \
             cannot run here, and TCG never emulates VMX"
                .to_string(),
            format!("run those cases on {intel_fix}"),
        ));
    } else if let Status::No { reason } = &n.vmx {
        out.push(finding(
            Severity::Info,
            format!(
                "guests cannot use VT-x here ({reason}): cases that require vmx are skipped or fail"
            ),
            format!("run those cases on {intel_fix}"),
        ));
    }
    let reload = |module: &str, value: &str| {
        format!(
            "echo 'options {module} nested={value}' | sudo tee /etc/modprobe.d/{module}-nested.conf && \
             sudo modprobe -r {module} && sudo modprobe {module}"
        )
    };
    if n.host_vmx && n.kvm_intel_nested == Some(false) {
        out.push(finding(
            Severity::Warning,
            "nested virtualisation is off (kvm_intel nested=N): guests cannot run a hypervisor"
                .to_string(),
            reload("kvm_intel", "1"),
        ));
    }
    if n.host_svm && n.kvm_amd_nested == Some(false) {
        out.push(finding(
            Severity::Warning,
            "nested virtualisation is off (kvm_amd nested=0): guests cannot run a hypervisor"
                .to_string(),
            reload("kvm_amd", "1"),
        ));
    }
}

fn emulators(probe: &HostProbe, out: &mut Vec<Finding>) {
    if probe.qemu.is_empty() {
        return;
    }
    if probe.qemu.iter().all(|q| q.path.is_none()) {
        let mut packages: Vec<&str> = probe.qemu.iter().map(|q| q.package.as_str()).collect();
        packages.dedup();
        out.push(finding(
            Severity::Error,
            "no qemu-system-* emulator on PATH: no case can run".to_string(),
            format!("sudo apt-get install {}", packages.join(" ")),
        ));
        return;
    }
    let mut missing: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for q in probe.qemu.iter().filter(|q| q.path.is_none()) {
        missing
            .entry(q.package.as_str())
            .or_default()
            .push(q.binary.as_str());
    }
    for (package, binaries) in missing {
        out.push(finding(
            Severity::Info,
            format!(
                "{} not on PATH: cases for these architectures cannot run",
                binaries.join(", ")
            ),
            format!("sudo apt-get install {package}"),
        ));
    }
    for q in probe.qemu.iter().filter(|q| q.path.is_some()) {
        if let Some(err) = &q.error {
            out.push(finding(
                Severity::Warning,
                format!("{}: {err}", q.binary),
                format!(
                    "reinstall {} (sudo apt-get install --reinstall {})",
                    q.binary, q.package
                ),
            ));
        }
    }
}

fn firmware(probe: &HostProbe, out: &mut Vec<Finding>) {
    // what a run boots a kernel through (`pflash`: code and variable store), not any file
    // found: a split CODE image alone runs nothing
    for fw in probe.firmware.iter().filter(|f| f.pflash.is_none()) {
        if probe.qemu_for(fw.arch).is_none() {
            continue;
        }
        let fix = match &fw.package {
            Some(package) => format!("sudo apt-get install {package}"),
            None => format!(
                "install UEFI firmware for {} (edk2) and point the case at it",
                fw.arch
            ),
        };
        let only = match fw.found.first() {
            Some(p) => format!(
                " that boots a kernel (a code image with its variable store; only {})",
                p.display()
            ),
            None => " found".to_string(),
        };
        out.push(finding(
            Severity::Info,
            format!(
                "no UEFI firmware for {}{only}: cases with uefi = true cannot run",
                fw.arch
            ),
            fix,
        ));
    }
}

fn disk(probe: &HostProbe, out: &mut Vec<Finding>) {
    let Some(disk) = &probe.disk else { return };
    if let Some(free) = disk.free_bytes.filter(|&f| f < LOW_DISK_BYTES) {
        out.push(finding(
            Severity::Warning,
            format!(
                "only {} MiB free for the image cache {}: downloads and rootfs copies may fail",
                free >> 20,
                disk.path.display()
            ),
            "free some space or point the cache at a larger disk",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::model::{DiskSpace, Firmware, KvmProbe, QemuBinary};
    use std::path::PathBuf;

    fn qemu(arch: Arch, found: bool) -> QemuBinary {
        QemuBinary {
            arch,
            binary: arch.qemu_binary(),
            package: arch.debian_package().to_string(),
            path: found.then(|| PathBuf::from(format!("/usr/bin/{}", arch.qemu_binary()))),
            version: found.then(|| "10.0.2".to_string()),
            version_line: None,
            error: None,
        }
    }

    fn messages(probe: &HostProbe) -> Vec<String> {
        derive(probe)
            .into_iter()
            .map(|f| format!("{:?} {} | {}", f.severity, f.message, f.fix.unwrap()))
            .collect()
    }

    #[test]
    fn permission_denied_gets_the_udev_rule() {
        let mut kvm = KvmProbe::absent();
        kvm.access = KvmAccess::PermissionDenied;
        let all = messages(&HostProbe::with_kvm(Arch::X86_64, kvm));
        let found = all
            .iter()
            .find(|m| m.contains("cannot open it read-write"))
            .unwrap();
        assert!(
            found.contains("MODE=\"0666\"") && found.contains("udevadm trigger --name-match=kvm"),
            "{found}"
        );
        assert!(found.contains("group kvm"));
    }

    #[test]
    fn missing_and_unusable_kvm_say_what_to_do() {
        let absent = messages(&HostProbe::with_kvm(Arch::X86_64, KvmProbe::absent()));
        assert!(
            absent
                .iter()
                .any(|m| m.contains("does not exist") && m.contains("accel=tcg"))
        );
        let slow = messages(&HostProbe::with_kvm(
            Arch::X86_64,
            KvmProbe::unusable("guest loop took 1.2 s"),
        ));
        let found = slow
            .iter()
            .find(|m| m.contains("cannot run guests"))
            .unwrap();
        assert!(
            found.contains("1.2 s") && found.contains("use accel=tcg or a runner with working KVM")
        );
        let mut broken_api = KvmProbe::working();
        broken_api.api = Status::no("KVM_CREATE_VM failed");
        assert!(
            messages(&HostProbe::with_kvm(Arch::X86_64, broken_api))
                .iter()
                .any(|m| m.contains("API fails"))
        );
        assert!(
            messages(&HostProbe::fake_kvm_ok())
                .iter()
                .all(|m| !m.contains("KVM is present"))
        );
    }

    #[test]
    fn amd_only_hosts_and_nested_off() {
        let mut kvm = KvmProbe::working().with_svm();
        kvm.nested.kvm_amd_nested = Some(false);
        let all = messages(&HostProbe::with_kvm(Arch::X86_64, kvm));
        assert!(
            all.iter()
                .any(|m| m.contains("AMD-V (SVM) only") && m.contains("kvm_intel nested=Y"))
        );
        assert!(
            all.iter()
                .any(|m| m.contains("kvm_amd nested=0") && m.contains("options kvm_amd nested=1"))
        );

        let mut intel = KvmProbe::working().with_vmx();
        intel.nested.kvm_intel_nested = Some(false);
        let all = messages(&HostProbe::with_kvm(Arch::X86_64, intel));
        assert!(
            all.iter()
                .any(|m| m.contains("kvm_intel nested=N") && m.contains("modprobe kvm_intel"))
        );
        assert!(!all.iter().any(|m| m.contains("SVM) only")));

        let no_vmx = messages(&HostProbe::fake_kvm_ok());
        assert!(
            no_vmx
                .iter()
                .any(|m| m.starts_with("Info guests cannot use VT-x"))
        );
        let arm = messages(&HostProbe::with_kvm(Arch::Aarch64, KvmProbe::working()));
        assert!(
            !arm.iter().any(|m| m.contains("VT-x")),
            "no VMX talk on arm hosts: {arm:?}"
        );
    }

    #[test]
    fn missing_emulators_name_their_package() {
        let mut probe = HostProbe::fake_kvm_ok();
        probe.qemu = Arch::ALL.iter().map(|&a| qemu(a, false)).collect();
        let none = messages(&probe);
        assert!(none[0].starts_with("Error no qemu-system-*"), "{none:?}");
        assert!(none[0].contains("qemu-system-arm qemu-system-x86 qemu-system-misc"));

        probe.qemu = Arch::ALL
            .iter()
            .map(|&a| qemu(a, matches!(a, Arch::X86_64 | Arch::Aarch64)))
            .collect();
        probe.qemu[0].error = Some("no answer to --version within 1000 ms".to_string());
        let some = messages(&probe);
        assert!(some.iter().any(|m| {
            m.contains("qemu-system-riscv64, qemu-system-riscv32, qemu-system-loongarch64")
                && m.ends_with("sudo apt-get install qemu-system-misc")
        }));
        assert!(
            some.iter().any(
                |m| m.contains("qemu-system-i386 not on PATH") && m.contains("qemu-system-x86")
            )
        );
        assert!(
            some.iter()
                .any(|m| m.starts_with("Warning qemu-system-aarch64: no answer"))
        );
    }

    #[test]
    fn firmware_and_disk() {
        let mut probe = HostProbe::fake_kvm_ok();
        probe.qemu = vec![
            qemu(Arch::Aarch64, true),
            qemu(Arch::Riscv64, false),
            qemu(Arch::X86_64, true),
        ];
        probe.firmware = vec![
            Firmware {
                arch: Arch::Aarch64,
                found: vec![],
                bios: None,
                pflash: None,
                package: Some("qemu-efi-aarch64".to_string()),
            },
            Firmware {
                arch: Arch::Riscv64,
                found: vec![],
                bios: None,
                pflash: None,
                package: None,
            },
            Firmware {
                arch: Arch::X86_64,
                found: vec!["/usr/share/OVMF/OVMF_CODE.fd".into()],
                bios: None,
                pflash: None,
                package: Some("ovmf".to_string()),
            },
        ];
        probe.disk = Some(DiskSpace {
            path: PathBuf::from("/cache"),
            free_bytes: Some(100 << 20),
            error: None,
        });
        let all = messages(&probe);
        assert!(
            all.iter()
                .any(|m| m.contains("no UEFI firmware for aarch64")
                    && m.contains("qemu-efi-aarch64"))
        );
        assert!(
            !all.iter().any(|m| m.contains("firmware for riscv64")),
            "no QEMU for riscv64, no firmware talk"
        );
        assert!(
            all.iter().any(|m| m.contains(
                "no UEFI firmware for x86_64 that boots a kernel (a code image with its variable \
                 store; only /usr/share/OVMF/OVMF_CODE.fd)"
            )),
            "a run would not take a split CODE image: {all:?}"
        );
        assert!(all.iter().any(|m| m.contains("only 100 MiB free")));
    }
}

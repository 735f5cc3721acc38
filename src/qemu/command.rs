//! The QEMU command line, assembled as ostool does (axvisor.md §1.4) plus what the runner needs
//! to own the console.
//!
//! Order of the arguments:
//! 1. the config's `args`, in order, after `${workspaceFolder}`/`${env:NAME}` substitution;
//! 2. `-machine <default>` (`q35` for x86_64/i386, `virt` otherwise) when no argument is
//!    `-machine` or `-M` (ostool ≥ 0.8.13; we also accept QEMU's `--machine` spelling);
//! 3. when `uefi = true`, a kernel boots as ostool 0.24 boots it (`run/qemu_plan.rs`): `-drive
//!    if=pflash,format=raw,unit=0,readonly=on,file=<code>`, `-drive
//!    if=pflash,format=raw,unit=1,file=<vars copy>`, `-drive format=raw,file=fat:rw:<esp>`, the
//!    kernel as the ESP's `EFI/BOOT/BOOT<ARCH>.EFI`, no `-kernel` (the firmware from
//!    `--firmware` or Debian's packages; the ESP and the vars copy in the case's work dir, see
//!    [`firmware::EspBoot`]); a firmware-only guest gets `-bios <firmware>`;
//! 4. `-kernel <kernel>` (none for a firmware-only guest or a `uefi = true` boot);
//! 5. console ownership: `-nographic` when none of `-nographic`, `-serial`, `-display`,
//!    `-chardev` is given (serial on stdio, no window); `-display none` when `-serial` is given
//!    without `-nographic`/`-display` (no window in CI); `-serial stdio` when only `-display` is
//!    given (otherwise the serial console goes to an invisible virtual console);
//! 6. `-no-reboot` when `no_reboot` (default true) and neither `-no-reboot` nor `-action` is
//!    given: a guest reset or triple fault then ends QEMU, so a crash loop becomes an exit the
//!    judge sees instead of a silent reboot until the deadline.
//!
//! Steps 1–4 are ostool's; 5–6 are ours. Every addition is recorded in [`QemuCommand::notes`].

use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::config::{QemuConfig, vars};
use crate::error::Error;
use crate::qemu::firmware;
use crate::shell;

/// Everything needed to assemble a QEMU command line.
#[derive(Debug, Clone)]
pub struct CommandRequest<'a> {
    pub config: &'a QemuConfig,
    pub arch: Arch,
    /// The file to pass to `-kernel` (the flat binary when `to_bin`); `None` for a
    /// firmware-only guest, whose `-bios`/`-pflash`/`-drive` in the config is what boots.
    pub kernel: Option<&'a Path>,
    /// Value of `${workspaceFolder}`.
    pub workspace: &'a Path,
    /// UEFI firmware to use when the config says `uefi = true` (`None` = look in Debian's paths).
    pub firmware: Option<&'a Path>,
    /// The case's work dir: where a `uefi = true` boot's ESP and variable store copy go.
    pub work_dir: &'a Path,
}

/// A complete QEMU invocation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QemuCommand {
    /// Program name or path (`qemu-system-aarch64`).
    pub program: String,
    pub args: Vec<String>,
    /// What the runner added or changed and why, one sentence each.
    pub notes: Vec<String>,
    /// What this host lacks for the command, one reason each (UEFI firmware for `uefi = true`
    /// that no package put here): the case is skipped with them (or fails by policy), never
    /// started ([`crate::plan::apply_profiles`]).
    #[serde(skip)]
    pub host_gaps: Vec<String>,
    /// A `uefi = true` kernel's boot from an EFI system partition, which the prepare stage lays
    /// out before QEMU starts.
    #[serde(skip)]
    pub esp: Option<firmware::EspBoot>,
}

impl QemuCommand {
    /// Assembles the command line; a substitution error carries the argument's location.
    pub fn build(req: &CommandRequest<'_>) -> Result<QemuCommand, Error> {
        let mut cmd = QemuCommand {
            program: req.arch.qemu_binary(),
            args: Vec::new(),
            notes: Vec::new(),
            host_gaps: Vec::new(),
            esp: None,
        };
        if let Some(qemu) = &req.config.qemu {
            cmd.program = vars::substitute(&qemu.value, req.workspace, qemu.location.as_ref())?;
            cmd.notes.push(format!(
                "QEMU is {}, as the config's `qemu` key names (not {} from PATH)",
                cmd.program,
                req.arch.qemu_binary()
            ));
        }
        for arg in &req.config.args {
            cmd.args.push(vars::substitute(
                &arg.value,
                req.workspace,
                arg.location.as_ref(),
            )?);
        }
        let given = Given(cmd.args.clone());
        cmd.add_machine(&given, req.arch);
        match (req.config.uefi, req.kernel) {
            (true, Some(kernel)) => cmd.add_esp(req, kernel)?,
            (true, None) => cmd.add_firmware(req)?,
            _ => {}
        }
        if let Some(kernel) = req.kernel.filter(|_| !req.config.uefi) {
            let kernel = vars::substitute(&path_text(kernel, "kernel")?, req.workspace, None)?;
            // Always there (as in ostool) when there is a kernel, so not worth a note.
            cmd.args.extend(["-kernel".to_string(), kernel]);
        }
        cmd.add_console(&given);
        if req.config.no_reboot && !given.any(&["-no-reboot", "-action"]) {
            cmd.add(
                &["-no-reboot"],
                "a guest reset or triple fault then ends QEMU instead of rebooting in a loop \
                 (set `no_reboot = false` in the QEMU config to keep rebooting)",
            );
        }
        Ok(cmd)
    }

    /// The chardev id of the boot's QMP monitor (a config's own chardevs have other names).
    pub const QMP_CHARDEV: &str = "qemu-test-qmp";

    /// This command with a QMP monitor on QEMU's end of `link` (an inherited socket, never
    /// TCP) and the guest started paused (`-S`): the boot sends `cont` once QMP is
    /// negotiated, so every event of the guest's life (a reset, a panic) reaches the judge.
    pub fn with_qmp(&self, link: &crate::qemu::qmp::QmpLink) -> QemuCommand {
        let mut cmd = self.clone();
        cmd.add(
            &[
                "-chardev",
                &link.chardev_option(Self::QMP_CHARDEV),
                "-mon",
                &format!("chardev={},mode=control", Self::QMP_CHARDEV),
                "-S",
            ],
            "QMP tells how the guest ended (power-off, reset or panic); the guest starts \
             once it is connected",
        );
        let given = Given(self.args.clone());
        if let Some(device) = pvpanic_device(&self.program, self.machine())
            && !self.args.iter().any(|a| a.contains("pvpanic"))
            && !given.any(&["-nodefaults"])
        {
            cmd.add(
                &["-device", device],
                "a guest kernel that panics tells QEMU (GUEST_PANICKED), and the case fails \
                 with that reason",
            );
        }
        cmd
    }

    /// The machine type named by `-machine`/`-M` (`virt` of `virt,gic-version=3`).
    fn machine(&self) -> Option<&str> {
        let i = self
            .args
            .iter()
            .rposition(|a| matches!(a.as_str(), "-machine" | "--machine" | "-M"))?;
        let value = self.args.get(i + 1)?;
        let first = value.split(',').next()?;
        Some(first.strip_prefix("type=").unwrap_or(first))
    }

    /// The command as one shell-quoted line, copy-pasteable into a terminal.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .map(shell::quote)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Resolves the program on `PATH`.
    pub fn resolve_program(&self) -> Option<PathBuf> {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|d| d.join(&self.program))
            .find(|p| p.is_file())
    }

    /// Appends `args` and a note saying why.
    pub(crate) fn add(&mut self, args: &[&str], why: &str) {
        self.args.extend(args.iter().map(|a| a.to_string()));
        let shown: Vec<String> = args.iter().map(|a| shell::quote(a)).collect();
        self.notes
            .push(format!("added `{}`: {why}", shown.join(" ")));
    }

    fn add_machine(&mut self, given: &Given, arch: Arch) {
        if !given.any(&["-machine", "-M"]) {
            let machine = arch.default_machine();
            self.add(
                &["-machine", machine],
                &format!(
                    "the config names no machine and {machine} is ostool's default for {arch}"
                ),
            );
        }
    }

    /// The UEFI firmware of `req`: from `--firmware` (`given`, which must exist), else the
    /// packaged one `find` finds, with where it came from for the note. `None`: none here, a host
    /// gap recorded (the case cannot run here; the config is not wrong).
    fn uefi_firmware<T>(
        &mut self,
        req: &CommandRequest<'_>,
        given: impl FnOnce(&Path) -> Result<T, Error>,
        find: impl FnOnce(Arch) -> Result<T, Error>,
    ) -> Result<Option<(T, String)>, Error> {
        match req.firmware {
            Some(path) if path.is_file() => {
                Ok(Some((given(path)?, "given with --firmware".to_string())))
            }
            Some(path) => Err(Error::usage(format!(
                "firmware file {} does not exist",
                path.display()
            ))
            .help("check the path given with --firmware")),
            None => match find(req.arch) {
                Ok(found) => {
                    let package = firmware::UEFI
                        .iter()
                        .find(|u| u.arch == req.arch)
                        .and_then(|u| u.package)
                        .unwrap_or("");
                    Ok(Some((found, format!("from the Debian package {package}"))))
                }
                Err(e) => {
                    self.host_gaps.push(firmware::gap_reason(&e));
                    Ok(None)
                }
            },
        }
    }

    /// ostool 0.24's UEFI boot of `kernel`: pflash code and variable store, the ESP as a FAT
    /// drive ([`firmware::EspBoot`]).
    fn add_esp(&mut self, req: &CommandRequest<'_>, kernel: &Path) -> Result<(), Error> {
        let Some((pflash, source)) =
            self.uefi_firmware(req, firmware::given_pflash, firmware::find_pflash)?
        else {
            return Ok(());
        };
        let Some(esp) = firmware::EspBoot::new(pflash, req.arch, kernel, req.work_dir) else {
            return Err(Error::usage(format!(
                "`uefi = true` boots the kernel as the EFI system partition's removable-media \
                 file, and UEFI names none for {}",
                req.arch
            ))
            .help("set `uefi = false` for this architecture"));
        };
        let args = esp.args();
        let shown: Vec<&str> = args.iter().map(String::as_str).collect();
        self.add(
            &shown,
            &format!(
                "the config sets `uefi = true`: as ostool 0.24, the firmware {} ({source}) boots \
                 {} from the FAT drive, a copy of the kernel; its variable store is a copy of {}",
                esp.firmware.code.display(),
                esp.boot_file
                    .strip_prefix(&esp.esp_dir)
                    .unwrap_or(&esp.boot_file)
                    .display(),
                esp.firmware.vars.display()
            ),
        );
        self.esp = Some(esp);
        Ok(())
    }

    /// A firmware-only guest's UEFI firmware, with `-bios`.
    fn add_firmware(&mut self, req: &CommandRequest<'_>) -> Result<(), Error> {
        let Some((path, source)) =
            self.uefi_firmware(req, |p| Ok(p.to_path_buf()), firmware::find)?
        else {
            return Ok(());
        };
        let text = path_text(&path, "firmware")?;
        self.add(
            &["-bios", &text],
            &format!("the config sets `uefi = true` (firmware {source})"),
        );
        Ok(())
    }

    fn add_console(&mut self, given: &Given) {
        let graphics = given.any(&["-nographic", "-display"]);
        if !given.any(&["-nographic", "-serial", "-display", "-chardev"]) {
            self.add(
                &["-nographic"],
                "the serial console must reach qemu-test on stdout, and no window may open",
            );
        } else if given.any(&["-serial"]) && !graphics {
            self.add(
                &["-display", "none"],
                "the config routes the console with -serial, and no window may open",
            );
        } else if given.any(&["-display"]) && !given.any(&["-nographic", "-serial", "-chardev"]) {
            self.add(
                &["-serial", "stdio"],
                "with -display and no -serial the serial console would go to an invisible virtual console",
            );
        }
    }
}

/// The pvpanic device of `program`'s usual machines: the ISA one on x86 PCs, the PCI one on
/// the arm64 `virt` board (QEMU ≥ 6.0). Other machines get none.
fn pvpanic_device(program: &str, machine: Option<&str>) -> Option<&'static str> {
    let machine = machine?;
    let x86 = program.ends_with("x86_64") || program.ends_with("i386");
    if x86 && (machine == "q35" || machine.starts_with("pc")) {
        return Some("pvpanic");
    }
    (program.ends_with("aarch64") && machine == "virt").then_some("pvpanic-pci")
}

/// The user's arguments, for "is this option already given?" checks. QEMU accepts `-opt` and
/// `--opt` alike, so both count.
struct Given(Vec<String>);

impl Given {
    fn any(&self, options: &[&str]) -> bool {
        self.0.iter().any(|arg| {
            let single = arg
                .strip_prefix('-')
                .filter(|rest| rest.starts_with('-'))
                .unwrap_or(arg);
            options.contains(&single)
        })
    }
}

fn path_text(path: &Path, what: &str) -> Result<String, Error> {
    path.to_str().map(str::to_string).ok_or_else(|| {
        Error::usage(format!(
            "the {what} path {} is not valid UTF-8",
            path.display()
        ))
        .help(format!("rename or move the {what} to a UTF-8 path"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, Location};

    fn config(text: &str) -> QemuConfig {
        QemuConfig::parse(Path::new("q.toml"), text).unwrap()
    }

    fn build_for(text: &str, arch: Arch) -> Result<QemuCommand, Error> {
        QemuCommand::build(&CommandRequest {
            config: &config(text),
            arch,
            kernel: Some(Path::new("/k/kernel.bin")),
            workspace: Path::new("/ws"),
            work_dir: Path::new("/out/cases/c"),
            firmware: None,
        })
    }

    fn argv(text: &str, arch: Arch) -> String {
        build_for(text, arch).unwrap().args.join(" ")
    }

    #[test]
    fn empty_config_gets_machine_kernel_console_and_no_reboot() {
        let cmd = build_for("", Arch::Aarch64).unwrap();
        assert_eq!(cmd.program, "qemu-system-aarch64");
        assert_eq!(
            cmd.args.join(" "),
            "-machine virt -kernel /k/kernel.bin -nographic -no-reboot"
        );
        assert_eq!(cmd.notes.len(), 3);
        assert!(
            cmd.notes[0].starts_with("added `-machine virt`: "),
            "{:?}",
            cmd.notes
        );
        assert!(cmd.notes[2].contains("triple fault"));
    }

    #[test]
    fn machine_default_depends_on_arch_and_is_skipped_when_given() {
        assert!(argv("", Arch::X86_64).starts_with("-machine q35 "));
        assert!(argv("", Arch::I386).starts_with("-machine q35 "));
        assert!(argv("", Arch::Riscv64).starts_with("-machine virt "));
        for given in ["-M", "-machine", "--machine"] {
            let text = format!("args = [\"{given}\", \"pc\"]");
            assert!(!argv(&text, Arch::X86_64).contains("q35"), "{given}");
        }
        assert!(
            argv("args = [\"-append\", \"-machine=x\"]", Arch::X86_64).contains("-machine q35")
        );
    }

    #[test]
    fn user_args_keep_order_and_are_substituted() {
        let text = "args = [\"-m\", \"1G\", \"-drive\", \"file=${workspaceFolder}/r.img\", \"-nographic\"]";
        assert_eq!(
            argv(text, Arch::Aarch64),
            "-m 1G -drive file=/ws/r.img -nographic -machine virt -kernel /k/kernel.bin -no-reboot"
        );
    }

    #[test]
    fn unset_env_in_an_arg_points_at_the_arg() {
        let err = build_for(
            "args = [\"-m\",\n  \"${env:QEMU_TEST_UNSET_9d2e}\"]",
            Arch::Aarch64,
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Config);
        let loc: Location = err.location.unwrap();
        assert_eq!((loc.line, loc.column), (2, 3));
        assert_eq!(
            err.help.unwrap(),
            "export QEMU_TEST_UNSET_9d2e or remove ${env:QEMU_TEST_UNSET_9d2e} from q.toml"
        );
    }

    #[test]
    fn console_rules() {
        let tail = |text: &str| {
            argv(text, Arch::Aarch64).replace("-machine virt -kernel /k/kernel.bin ", "")
        };
        assert_eq!(
            tail("args = [\"-serial\", \"mon:stdio\"]"),
            "-serial mon:stdio -display none -no-reboot"
        );
        assert_eq!(
            tail("args = [\"-serial\", \"stdio\", \"-display\", \"none\"]"),
            "-serial stdio -display none -no-reboot"
        );
        assert_eq!(tail("args = [\"--nographic\"]"), "--nographic -no-reboot");
        assert_eq!(
            tail("args = [\"-display\", \"none\"]"),
            "-display none -serial stdio -no-reboot"
        );
        assert_eq!(
            tail("args = [\"-chardev\", \"stdio,id=c\", \"-serial\", \"chardev:c\"]"),
            "-chardev stdio,id=c -serial chardev:c -display none -no-reboot"
        );
        assert_eq!(
            tail("args = [\"-chardev\", \"stdio,id=c\"]"),
            "-chardev stdio,id=c -no-reboot"
        );
    }

    #[test]
    fn no_reboot_respects_config_and_user_choice() {
        assert!(!argv("no_reboot = false", Arch::Aarch64).contains("-no-reboot"));
        assert_eq!(
            argv("args = [\"-no-reboot\"]", Arch::Aarch64)
                .matches("-no-reboot")
                .count(),
            1
        );
        assert!(
            !argv("args = [\"-action\", \"reboot=shutdown\"]", Arch::Aarch64)
                .contains("-no-reboot")
        );
    }

    /// ostool 0.24's UEFI boot (`run/qemu_plan.rs` `QemuBootSource::UefiPflash`): after the
    /// machine, pflash code (read-only, unit 0), the variable store copy (unit 1), the ESP as a
    /// FAT drive; no `-kernel`, no `-bios`; the copies in the work dir named after the kernel.
    #[test]
    fn uefi_boots_the_kernel_from_an_esp_with_the_given_or_packaged_firmware() {
        let dir = tempfile::tempdir().unwrap();
        let code = dir.path().join("OVMF_CODE_4M.fd");
        std::fs::write(&code, b"code").unwrap();
        let vars = dir.path().join("OVMF_VARS_4M.fd");
        std::fs::write(&vars, b"vars").unwrap();
        let cfg = config("uefi = true");
        let req = |firmware| CommandRequest {
            config: &cfg,
            arch: Arch::X86_64,
            kernel: Some(Path::new("/k/kernel.bin")),
            workspace: Path::new("/ws"),
            firmware,
            work_dir: Path::new("/out/cases/c"),
        };
        let cmd = QemuCommand::build(&req(Some(&code))).unwrap();
        let drives = [
            "-machine".to_string(),
            "q35".into(),
            "-drive".into(),
            format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                code.display()
            ),
            "-drive".into(),
            "if=pflash,format=raw,unit=1,file=/out/cases/c/kernel.vars.fd".into(),
            "-drive".into(),
            "format=raw,file=fat:rw:/out/cases/c/kernel.esp".into(),
            "-nographic".into(),
            "-no-reboot".into(),
        ];
        assert_eq!(cmd.args, drives);
        let esp = cmd.esp.as_ref().unwrap();
        assert_eq!(
            esp.boot_file,
            Path::new("/out/cases/c/kernel.esp/EFI/BOOT/BOOTX64.EFI")
        );
        assert_eq!(esp.firmware.vars, vars);
        assert!(
            cmd.notes
                .iter()
                .any(|n| n.contains("uefi = true") && n.contains("--firmware"))
        );
        // --firmware without its variable store beside it, or missing: usage errors.
        std::fs::remove_file(&vars).unwrap();
        let e = QemuCommand::build(&req(Some(&code))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Usage);
        assert!(e.message.contains("OVMF_VARS_4M.fd is not there"), "{e}");
        let missing = dir.path().join("nope.fd");
        assert_eq!(
            QemuCommand::build(&req(Some(&missing))).unwrap_err().kind,
            ErrorKind::Usage
        );
        // Debian's packaged pair (the CI image installs ovmf).
        let packaged = QemuCommand::build(&req(None)).unwrap_or_else(|e| panic!("{e}"));
        let esp = packaged.esp.as_ref().unwrap();
        assert!(esp.firmware.code.is_file() && esp.firmware.vars.is_file());
        assert!(packaged.notes.iter().any(|n| n.contains("package ovmf")));
        assert!(!packaged.args.iter().any(|a| a == "-bios" || a == "-kernel"));
        assert!(packaged.host_gaps.is_empty());
        // A firmware-only guest boots its firmware with -bios.
        let fw_only = CommandRequest {
            kernel: None,
            ..req(None)
        };
        let cmd = QemuCommand::build(&fw_only).unwrap();
        assert!(cmd.args.iter().any(|a| a == "-bios") && cmd.esp.is_none());
        // No firmware for the arch here: not an error but a gap the case is skipped with.
        let riscv = CommandRequest {
            arch: Arch::Riscv64,
            ..req(None)
        };
        if crate::qemu::firmware::find_pflash(Arch::Riscv64).is_err() {
            let cmd = QemuCommand::build(&riscv).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                !cmd.args.iter().any(|a| a.starts_with("if=pflash")),
                "{:?}",
                cmd.args
            );
            assert_eq!(cmd.host_gaps.len(), 1);
            assert!(
                cmd.host_gaps[0].starts_with("`uefi = true` needs UEFI firmware for riscv64")
                    && cmd.host_gaps[0].contains("--firmware FILE"),
                "{:?}",
                cmd.host_gaps
            );
        }
    }

    #[test]
    fn display_quotes_only_what_the_shell_would_split_or_expand() {
        let cmd = QemuCommand {
            program: "qemu-system-aarch64".into(),
            args: vec![
                "-append".into(),
                "root=/dev/vda rw init=/init".into(),
                "it's".into(),
                "".into(),
                "$HOME".into(),
                "id=disk0,if=none,file=/ws/a.img".into(),
            ],
            notes: vec![],
            host_gaps: vec![],
            esp: None,
        };
        assert_eq!(
            cmd.display(),
            r#"qemu-system-aarch64 -append 'root=/dev/vda rw init=/init' 'it'\''s' '' '$HOME' id=disk0,if=none,file=/ws/a.img"#
        );
    }

    #[test]
    fn with_qmp_adds_the_inherited_socket_a_paused_start_and_pvpanic_where_the_machine_has_it() {
        let link = crate::qemu::qmp::QmpLink::new().unwrap();
        let cmd = |program: &str, args: &[&str]| QemuCommand {
            program: program.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            notes: vec![],
            host_gaps: vec![],
            esp: None,
        };
        let added = |c: QemuCommand| {
            let n = c.args.len();
            c.with_qmp(&link).args[n..].join(" ")
        };
        let qmp = format!(
            "-chardev socket,id=qemu-test-qmp,fd={} -mon chardev=qemu-test-qmp,mode=control -S",
            link.qemu_fd()
        );
        assert_eq!(
            added(cmd(
                "qemu-system-aarch64",
                &["-machine", "virt,gic-version=3"]
            )),
            format!("{qmp} -device pvpanic-pci")
        );
        assert_eq!(
            added(cmd("qemu-system-x86_64", &["-M", "pc-q35-8.0"])),
            format!("{qmp} -device pvpanic")
        );
        assert_eq!(
            added(cmd("qemu-system-x86_64", &["-machine", "q35"])),
            format!("{qmp} -device pvpanic")
        );
        // Other boards, a user's own pvpanic, or -nodefaults: no device added.
        assert_eq!(
            added(cmd("qemu-system-aarch64", &["-machine", "raspi3b"])),
            qmp
        );
        assert_eq!(
            added(cmd(
                "qemu-system-x86_64",
                &["-machine", "q35", "-device", "pvpanic,ioport=0x506"]
            )),
            qmp
        );
        assert_eq!(
            added(cmd("qemu-system-riscv64", &["-machine", "virt"])),
            qmp
        );
    }
}

//! The QEMU command line, assembled as ostool does (axvisor.md §1.4) plus what the runner needs
//! to own the console.
//!
//! Order of the arguments:
//! 1. the config's `args`, in order, after `${workspaceFolder}`/`${env:NAME}` substitution;
//! 2. `-machine <default>` (`q35` for x86_64/i386, `virt` otherwise) when no argument is
//!    `-machine` or `-M` (ostool ≥ 0.8.13; we also accept QEMU's `--machine` spelling);
//! 3. `-bios <firmware>` when `uefi = true` (`--firmware` or Debian's packaged file; ostool ≤ 0.8.12
//!    style, so `-kernel` still follows);
//! 4. `-kernel <kernel>` (none for a firmware-only guest);
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
}

impl QemuCommand {
    /// Assembles the command line; a substitution error carries the argument's location.
    pub fn build(req: &CommandRequest<'_>) -> Result<QemuCommand, Error> {
        let mut cmd = QemuCommand {
            program: req.arch.qemu_binary(),
            args: Vec::new(),
            notes: Vec::new(),
            host_gaps: Vec::new(),
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
        if req.config.uefi {
            cmd.add_firmware(req)?;
        }
        if let Some(kernel) = req.kernel {
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

    fn add_firmware(&mut self, req: &CommandRequest<'_>) -> Result<(), Error> {
        let (path, source) = match req.firmware {
            Some(path) if path.is_file() => {
                (path.to_path_buf(), "given with --firmware".to_string())
            }
            Some(path) => {
                return Err(Error::usage(format!(
                    "firmware file {} does not exist",
                    path.display()
                ))
                .help("check the path given with --firmware"));
            }
            None => match firmware::find(req.arch) {
                Ok(path) => {
                    let package = firmware::installed(req.arch)
                        .and_then(|i| i.package)
                        .unwrap_or("");
                    (path, format!("from the Debian package {package}"))
                }
                // A host without the firmware cannot run the case; the config is not wrong.
                Err(e) => {
                    self.host_gaps.push(firmware::gap_reason(&e));
                    return Ok(());
                }
            },
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

    #[test]
    fn uefi_uses_given_or_packaged_firmware() {
        let dir = tempfile::tempdir().unwrap();
        let fw = dir.path().join("fw.fd");
        std::fs::write(&fw, b"fw").unwrap();
        let cfg = config("uefi = true");
        let req = |firmware| CommandRequest {
            config: &cfg,
            arch: Arch::Aarch64,
            kernel: Some(Path::new("/k/kernel.bin")),
            workspace: Path::new("/ws"),
            firmware,
        };
        let cmd = QemuCommand::build(&req(Some(&fw))).unwrap();
        let bios = format!("-bios {} -kernel /k/kernel.bin", fw.display());
        assert!(cmd.args.join(" ").contains(&bios), "{:?}", cmd.args);
        assert!(
            cmd.notes
                .iter()
                .any(|n| n.contains("uefi = true") && n.contains("--firmware"))
        );
        let missing = dir.path().join("nope.fd");
        assert_eq!(
            QemuCommand::build(&req(Some(&missing))).unwrap_err().kind,
            ErrorKind::Usage
        );
        let packaged = QemuCommand::build(&req(None)).unwrap_or_else(|e| panic!("{e}"));
        let at = packaged.args.iter().position(|a| a == "-bios").unwrap();
        assert!(Path::new(&packaged.args[at + 1]).is_file());
        assert!(
            packaged
                .notes
                .iter()
                .any(|n| n.contains("qemu-efi-aarch64"))
        );
        assert!(packaged.host_gaps.is_empty());
        // No firmware for the arch here: not an error but a gap the case is skipped with.
        let riscv = CommandRequest {
            arch: Arch::Riscv64,
            ..req(None)
        };
        let cmd = QemuCommand::build(&riscv).unwrap_or_else(|e| panic!("{e}"));
        assert!(!cmd.args.iter().any(|a| a == "-bios"), "{:?}", cmd.args);
        assert_eq!(cmd.host_gaps.len(), 1);
        assert!(
            cmd.host_gaps[0].starts_with("`uefi = true` needs UEFI firmware for riscv64")
                && cmd.host_gaps[0].contains("--firmware FILE"),
            "{:?}",
            cmd.host_gaps
        );
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

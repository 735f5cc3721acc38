//! Booting one case on a board: the board is another machine behind the same console loop
//! ([`super::boot::Console::watch`]) as QEMU, with the same judge, grammar, deadlines and
//! report. What differs is here: the serial device (opened and locked first: a missing or busy
//! one is an infrastructure error naming it), the power commands (`board_reset_cmd` runs
//! beside the console, `board_power_off_cmd` always at the end: pass, fail, timeout, cancel),
//! the files served or sent, and U-Boot's conversation ([`crate::board::stages`]), whose stages are
//! timeline entries with their own deadlines.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::SerialStream;

use super::boot::{BootReport, Console, Machine, MachineEvent};
use super::{Cancel, note};
use crate::board::load::{self, BoardBoot, BootCommand, BootFile, LoadMethod, NetPlan};
use crate::board::power::{self, PowerAction, PowerRun};
use crate::board::serial::{DEFAULT_BAUD, SerialConsole};
use crate::board::stages::{Action, Session};
use crate::board::uboot::UbootConfig;
use crate::build::format::KernelFormat;
use crate::error::Error;
use crate::plan::Case;
use crate::report::{Event, Level, Reporters};
use crate::verdict::Facts;

/// Everything needed to boot one case on a board.
/// The case (its judge and console settings; the served files are staged in
/// `<work_dir>/board`; the power commands run in its workspace) and its board.
pub struct BoardRun<'a> {
    pub case: &'a Case,
    pub config: &'a UbootConfig,
    /// The kernel as built (an ELF is flattened when staged).
    pub kernel: &'a Path,
}

type PowerOn<'a> = Pin<Box<dyn Future<Output = Result<PowerRun, Error>> + 'a>>;

/// The board behind the console.
struct BoardMachine<'a> {
    port: SerialStream,
    session: Session,
    /// `board_reset_cmd`, running beside the console until it ends.
    power_on: Option<PowerOn<'a>>,
    /// Console bytes read by a transfer past its end, given to the loop first.
    pending: Vec<u8>,
    boot: &'a BoardBoot,
    baud: u32,
}

impl Machine for BoardMachine<'_> {
    async fn next(&mut self, buf: &mut [u8]) -> MachineEvent {
        if !self.pending.is_empty() {
            let n = self.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            return MachineEvent::Console(n);
        }
        let power = async {
            match self.power_on.as_mut() {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            r = power => {
                self.power_on = None;
                match r {
                    Ok(run) => MachineEvent::Note(format!(
                        "power on: `{}` done in {:.3}s",
                        run.command,
                        run.elapsed.as_secs_f64()
                    )),
                    Err(e) => MachineEvent::Failed(e.message),
                }
            }
            n = self.port.read(buf) => match n {
                Ok(0) => MachineEvent::Failed("the serial device was closed (unplugged?)".into()),
                Ok(n) => MachineEvent::Console(n),
                Err(e) => MachineEvent::Failed(format!("reading the serial device failed: {e}")),
            },
        }
    }

    async fn type_bytes(&mut self, bytes: &[u8]) -> bool {
        self.port.write_all(bytes).await.is_ok() && self.port.flush().await.is_ok()
    }

    async fn observe(
        &mut self,
        bytes: &[u8],
        now: Duration,
        line_no: u64,
    ) -> Result<Option<Vec<u8>>, String> {
        match self.session.observe(bytes, now, line_no)? {
            Some(Action::Type(text)) => Ok(Some(text)),
            Some(Action::Transfer(i)) => {
                let started = Instant::now();
                let r = self.transfer(i).await;
                let now = now + started.elapsed();
                self.session.transfer_done(r, now)?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn last_bytes(&mut self, bytes: &[u8], now: Duration, line_no: u64) {
        // Only the session's record: what it would type or send is not done.
        let _ = self.session.observe(bytes, now, line_no);
    }

    fn deadline(&self) -> Option<(Duration, String)> {
        self.session.deadline()
    }
}

impl BoardMachine<'_> {
    /// Sends boot file `i` by YMODEM (U-Boot's `loady` is waiting for it).
    async fn transfer(&mut self, i: usize) -> Result<(), String> {
        let file = &self.boot.files[i];
        let deadline = load::loady_deadline(file.size, self.baud);
        let data = tokio::fs::read(&file.path)
            .await
            .map_err(|e| format!("cannot read {} ({}): {e}", file.role, file.path.display()))?;
        let opts = crate::board::ymodem::Options::within(deadline);
        let sent =
            crate::board::ymodem::send(&mut self.port, &file.tftp_name, &data, &opts, |_| {})
                .await
                .map_err(|e| format!("sending {} by YMODEM (loady) failed: {e}", file.role))?;
        // What U-Boot printed after the last ACK goes back to the console loop first.
        self.pending.extend_from_slice(&sent.trailing);
        Ok(())
    }
}

/// Boots `run` on the board; errors only when the serial device cannot be opened (nothing
/// was powered) or the log cannot be written.
pub async fn boot(
    run: &BoardRun<'_>,
    reporters: &Reporters,
    cancel: &mut Cancel,
) -> Result<BootReport, Error> {
    let cp = run.case;
    let config = run.config;
    let device = config.serial.as_ref().ok_or_else(|| {
        Error::config("the U-Boot config names no `serial` device: the board's console")
            .at_file(&config.path)
            .help("add `serial = \"/dev/ttyUSB0\"` (or `${env:BOARD_COMM_UART_DEV}`)")
    })?;
    let baud = config.baud_rate.as_ref().map_or(DEFAULT_BAUD, |b| b.value);
    // First: a board whose console is missing or taken is never powered.
    let serial =
        SerialConsole::open(&device.value, baud).map_err(|e| e.at(device.location.clone()))?;
    let method = LoadMethod::of(config);
    // The host's TFTP server serves all of tftp_dir: this run's files go in a directory of
    // their own there, named in the TFTP path.
    let (root, prefix) = match &method {
        LoadMethod::TftpDir(dir) => {
            let sub = format!("qemu-test-{}", cp.name);
            (dir.join(&sub), format!("{sub}/"))
        }
        _ => (cp.work_dir.join("board"), String::new()),
    };
    // The copy in the host's tftp_dir is this run's to remove, however the boot ends.
    let _tftp_copy = matches!(method, LoadMethod::TftpDir(_)).then(|| RemoveOnDrop(root.clone()));
    let staged = stage(config, run.kernel, &root, &prefix)?;
    let net = net_plan(config)?;
    let server = match (&method, &net) {
        (LoadMethod::TftpServe, Some(n)) => Some(
            crate::board::tftp::TftpServer::start(
                &staged.root,
                n.server,
                crate::board::tftp::TFTP_PORT,
            )
            .await?,
        ),
        _ => None,
    };
    let exchanges = load::exchanges(config, &staged, &method, net.as_ref());
    note(
        reporters,
        &cp.name,
        &format!(
            "board: console {} at {baud} baud (locked), kernel by {}, booted with `{}`",
            device.value,
            method.name(),
            exchanges.last().map_or("", |e| e.line.as_str())
        ),
    );
    let mut log = crate::run::log::ConsoleLog::create(&cp.log_path, cp.max_log_size)?;
    let power_log = PowerLog::create(&cp.log_path)?;
    let start = Instant::now();
    let case = cp.name.as_str();
    let power_on: Option<PowerOn<'_>> = config.board_reset_cmd.as_ref().map(|cmd| {
        let log = power_log.clone();
        let fut: PowerOn<'_> = Box::pin(async move {
            let mut on_line = |l: &str| {
                log.line(PowerAction::On, l);
                note(reporters, case, &format!("power on | {l}"));
            };
            power::run(
                PowerAction::On,
                cmd,
                &run.case.workspace,
                power::POWER_TIMEOUT,
                &mut on_line,
            )
            .await
        });
        fut
    });
    let mut machine = BoardMachine {
        port: serial.port,
        session: Session::new(exchanges, load::Deadlines::of(config).prompt),
        power_on,
        pending: Vec::new(),
        boot: &staged,
        baud,
    };
    if config.board_reset_cmd.is_none() {
        // Nobody powers the board: it may sit at its prompt already, which prints again on
        // an empty line.
        let _ = machine.type_bytes(b"\n").await;
    }
    let mut console = Console::new(cp, start);
    let watched = console
        .watch(&mut machine, &mut log, reporters, cancel, cp)
        .await;
    let timeline = machine.session.timeline();
    // Whatever happened: stop a power-on still running, then power off.
    drop(machine);
    let off = power_off(config, run, reporters, &power_log).await;
    if let Some(s) = server {
        s.stop();
    }
    let end = watched?;
    log.flush()
        .await
        .map_err(|e| Error::io(&cp.log_path, "write the console log", &e))?;
    let mut verdict = crate::verdict::decide(&Facts {
        elapsed: console.start.elapsed(),
        ..Facts::observed(end, &console.judge, &cp.judge.success)
    });
    if let Err(e) = off {
        verdict.reason = format!("{}; and {}", verdict.reason, e.message);
    }
    Ok(console.report(verdict, &log, timeline))
}

/// A directory removed with everything in it when this is dropped.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Prepares the files: the kernel flattened when it is an ELF (at its own load address), the
/// DTB and initrd as they are, all in `root` (a new directory this run owns) under the names
/// `prefix` + role.
fn stage(
    config: &UbootConfig,
    kernel: &Path,
    root: &Path,
    prefix: &str,
) -> Result<BoardBoot, Error> {
    let bytes = std::fs::read(kernel).map_err(|e| Error::input_io(kernel, "kernel", &e))?;
    let head = &bytes[..bytes.len().min(0x240)];
    let (elf_addr, flat) = if KernelFormat::sniff(head).is_elf() {
        let (addr, flat) = crate::build::elf::to_bin_at(&bytes)?;
        (Some(addr), flat)
    } else {
        (None, bytes)
    };
    let format = KernelFormat::sniff(&flat[..flat.len().min(0x240)]);
    let command = match format {
        KernelFormat::Arm64Image | KernelFormat::RiscvImage => BootCommand::Booti,
        KernelFormat::UImage(_) => BootCommand::Bootm,
        KernelFormat::DeviceTree => BootCommand::BootmFit,
        _ => BootCommand::Go,
    };
    crate::prepare::workdir::create_dir_in(root, root)?;
    let mut files = Vec::new();
    let kernel_path = root.join("kernel");
    crate::prepare::workdir::write_file(&kernel_path, &flat)?;
    files.push(BootFile {
        role: "kernel",
        tftp_name: format!("{prefix}kernel"),
        path: kernel_path,
        size: flat.len() as u64,
        addr_var: "qt_kernel",
    });
    // The Image header's image_size (offset 16) covers the BSS the kernel clears after itself.
    let image_size = match format {
        KernelFormat::Arm64Image | KernelFormat::RiscvImage => flat
            .get(16..24)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default())),
        _ => 0,
    };
    let mut dtb_len = None;
    if let Some(dtb) = config
        .dtb_file
        .as_ref()
        .filter(|_| command != BootCommand::BootmFit)
    {
        let f = copy_in(&dtb.value, root, prefix, "dtb", "qt_fdt")
            .map_err(|e| e.at(dtb.location.clone()))?;
        dtb_len = Some(f.size);
        files.push(f);
    }
    let (fdt_offset, initrd_offset) = load::offsets(flat.len() as u64, image_size, dtb_len);
    if let Some(initrd) = &config.initrd_file {
        let f = copy_in(&initrd.value, root, prefix, "initrd", "qt_initrd")
            .map_err(|e| e.at(initrd.location.clone()))?;
        files.push(f);
    }
    let kernel_addr = load::kernel_addr(config, elf_addr, command);
    Ok(BoardBoot {
        files,
        command,
        kernel_addr,
        fdt_offset,
        initrd_offset,
        root: root.to_path_buf(),
    })
}

/// Puts `src` in `root` as `role` (a hard link when it can, else a copy), named `prefix` +
/// `role` on the TFTP server.
fn copy_in(
    src: &Path,
    root: &Path,
    prefix: &str,
    role: &'static str,
    addr_var: &'static str,
) -> Result<BootFile, Error> {
    let name = format!("{prefix}{role}");
    let path = root.join(role);
    let size = std::fs::metadata(src)
        .map_err(|e| Error::input_io(src, role, &e))?
        .len();
    if std::fs::hard_link(src, &path).is_err() {
        crate::prepare::workdir::copy_file(src, &path)?;
    }
    Ok(BootFile {
        role,
        path,
        tftp_name: name,
        size,
        addr_var,
    })
}

/// `board_power_off_cmd`, if any, with its own deadline; its output in the reports and the
/// power log.
async fn power_off(
    config: &UbootConfig,
    run: &BoardRun<'_>,
    reporters: &Reporters,
    power_log: &PowerLog,
) -> Result<(), Error> {
    let Some(cmd) = &config.board_power_off_cmd else {
        return Ok(());
    };
    let case = run.case.name.as_str();
    let log = power_log.clone();
    let mut on_line = |l: &str| {
        log.line(PowerAction::Off, l);
        note(reporters, case, &format!("power off | {l}"));
    };
    let r = power::run(
        PowerAction::Off,
        cmd,
        &run.case.workspace,
        power::POWER_TIMEOUT,
        &mut on_line,
    )
    .await;
    match &r {
        Ok(run) => note(
            reporters,
            case,
            &format!(
                "power off: `{}` done in {:.3}s",
                run.command,
                run.elapsed.as_secs_f64()
            ),
        ),
        Err(e) => reporters.emit(Event::Note {
            case: Some(case),
            level: Level::Warning,
            message: &e.message,
            location: e.location.as_ref(),
        }),
    }
    r.map(|_| ())
}

/// The network U-Boot needs for TFTP: the server at the `[net] interface`'s address, the
/// board's own address static (`board_ip`) or by DHCP.
fn net_plan(config: &UbootConfig) -> Result<Option<NetPlan>, Error> {
    let Some(net) = &config.net else {
        return Ok(None);
    };
    let server = crate::board::tftp::interface_addr(&net.interface.value)
        .map_err(|e| e.at(net.interface.location.clone()))?;
    Ok(Some(NetPlan {
        server,
        board_ip: net.board_ip.as_ref().map(|s| s.value),
        netmask: net.netmask.as_ref().map(|s| s.value),
        gateway: net.gatewayip.as_ref().map(|s| s.value),
    }))
}

/// The power commands' output, `<case>.power.log` beside the console log (which stays the
/// serial console alone, so its line numbers are the judge's).
#[derive(Clone)]
struct PowerLog {
    file: std::sync::Arc<std::sync::Mutex<std::fs::File>>,
}

impl PowerLog {
    fn create(console_log: &std::path::Path) -> Result<PowerLog, Error> {
        let path = console_log.with_extension("power.log");
        // As every writer into the out dir: never through a symlink planted there.
        let file = crate::prepare::workdir::create_file(&path)?;
        Ok(PowerLog {
            file: std::sync::Arc::new(std::sync::Mutex::new(file)),
        })
    }

    fn line(&self, action: PowerAction, line: &str) {
        use std::io::Write;
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "{}: {line}", action.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_power_log_replaces_a_planted_symlink_and_leaves_its_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "precious").unwrap();
        let log = dir.path().join("case.log");
        std::os::unix::fs::symlink(&outside, dir.path().join("case.power.log")).unwrap();
        PowerLog::create(&log)
            .unwrap()
            .line(PowerAction::On, "relay on");
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("case.power.log")).unwrap(),
            "power on: relay on\n"
        );
    }
}

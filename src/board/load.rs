//! How the kernel reaches the board and how U-Boot starts it.
//!
//! **Raw image + DTB, not FIT.** The kernel is loaded as it is (an ELF is flattened first, as
//! `to_bin` does) next to the DTB and initrd, each at its own address, and started by the
//! command its format calls for: `booti` for a Linux arm64/RISC-V `Image` (AxVisor's and
//! ArceOS' flat binaries carry the same header), `bootm` for a uImage or a FIT the user built,
//! `go` for a bare-metal flat binary without a header. Why not build a FIT as ostool does: it
//! needs an FDT writer and `mkimage`'s layout for no gain here (U-Boot checks the `Image`
//! magic itself, and each file's transfer is checked by TFTP/YMODEM), and `booti` keeps the
//! DTB the user names byte for byte. Without `dtb_file`, `booti` gets U-Boot's own device
//! tree (`${fdtcontroladdr}`), which on QEMU and most boards is the one the board booted with.
//!
//! Addresses: the kernel at `kernel_load_addr`, else U-Boot's `${kernel_addr_r}` (an ELF's own
//! load address for `go`); the DTB and initrd after it, at offsets computed here from the
//! files' sizes (and the `Image` header's `image_size`, which covers the kernel's BSS), each
//! 2 MiB aligned, with `setexpr` so no board variable has to exist for them.
//!
//! Load methods ([`LoadMethod`]): TFTP from a server this run starts, TFTP from the host's own
//! server by copying into `[net] tftp_dir`, or YMODEM over the serial line (`loady`).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use super::stages::{Exchange, ExchangeKind, STAGE_LOADED, STAGE_NETWORK};
use super::uboot::UbootConfig;

/// How the files reach U-Boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadMethod {
    /// TFTP from a server this run starts on the `[net] interface`'s address (port 69),
    /// serving only this run's files, read-only (`board::tftp`).
    TftpServe,
    /// TFTP from the host's own server: the files are copied into its root, `[net] tftp_dir`
    /// (under `qemu-test-<case>/`, removed after the run).
    TftpDir(PathBuf),
    /// YMODEM over the serial line (U-Boot's `loady`): for boards without a network (no
    /// `[net]`). The sender is `board::ymodem`.
    Loady,
}

impl LoadMethod {
    /// The method a config asks for: `[net]` with `tftp_dir` copies there, `[net]` alone
    /// serves, no `[net]` sends over the serial line.
    pub fn of(config: &UbootConfig) -> LoadMethod {
        match &config.net {
            Some(net) => match &net.tftp_dir {
                Some(dir) => LoadMethod::TftpDir(dir.value.clone()),
                None => LoadMethod::TftpServe,
            },
            None => LoadMethod::Loady,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            LoadMethod::TftpServe => "tftp (served by this run)",
            LoadMethod::TftpDir(_) => "tftp (copied into tftp_dir)",
            LoadMethod::Loady => "loady (YMODEM over the serial line)",
        }
    }
}

/// The U-Boot command that starts the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootCommand {
    Booti,
    Bootm,
    /// `bootm` of a FIT image, which carries its own DTB.
    BootmFit,
    Go,
}

/// One file U-Boot loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFile {
    /// `kernel`, `dtb`, `initrd`.
    pub role: &'static str,
    /// The staged copy (what is served or sent).
    pub path: PathBuf,
    /// Its name on the TFTP server.
    pub tftp_name: String,
    pub size: u64,
    /// The U-Boot variable holding its load address.
    pub addr_var: &'static str,
}

/// Everything a board boot loads and how it starts.
#[derive(Debug, Clone)]
pub struct BoardBoot {
    pub files: Vec<BootFile>,
    pub command: BootCommand,
    /// `setenv qt_kernel …`'s value.
    pub kernel_addr: String,
    /// Offsets after the kernel of the DTB and the initrd.
    pub fdt_offset: u64,
    pub initrd_offset: u64,
    /// The directory the files are staged in (the TFTP server's root, or the copy in
    /// `tftp_dir`).
    pub root: PathBuf,
}

const SZ_2M: u64 = 2 << 20;

/// Where the DTB and the initrd go after the kernel: (DTB offset, initrd offset). The kernel
/// spans its file or its `Image` header's `image_size` (which covers the BSS it clears),
/// whichever is larger, rounded up to 2 MiB, then a 2 MiB gap; the initrd follows the DTB.
pub fn offsets(kernel_len: u64, image_size: u64, dtb_len: Option<u64>) -> (u64, u64) {
    let fdt = align_2m(image_size.max(kernel_len)) + SZ_2M;
    let initrd = fdt + dtb_len.map_or(0, |n| align_2m(n.max(1)));
    (fdt, initrd)
}

fn align_2m(n: u64) -> u64 {
    n.div_ceil(SZ_2M) * SZ_2M
}

/// `qt_kernel`'s value: `kernel_load_addr`, else an ELF's own load address for `go`, else
/// U-Boot's `${kernel_addr_r}`.
pub fn kernel_addr(config: &UbootConfig, elf_addr: Option<u64>, command: BootCommand) -> String {
    match (&config.kernel_load_addr, elf_addr, command) {
        (Some(a), _, _) => format!("{:#x}", a.value),
        (None, Some(a), BootCommand::Go) => format!("{a:#x}"),
        _ => "${kernel_addr_r}".to_string(),
    }
}

/// Deadlines of the U-Boot stages.
pub const PROMPT_TIMEOUT: Duration = Duration::from_secs(30);
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// `booti`/`bootm`/`go` until U-Boot says it starts the kernel.
pub const KERNEL_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the network comes from for TFTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPlan {
    /// The TFTP server's address as U-Boot reaches it (`serverip`).
    pub server: Ipv4Addr,
    /// `ipaddr`, `netmask`, `gatewayip` when static; `None` = DHCP.
    pub board_ip: Option<Ipv4Addr>,
    pub netmask: Option<Ipv4Addr>,
    pub gateway: Option<Ipv4Addr>,
}

/// The lines typed at the U-Boot prompt, in order: `uboot_cmd`, the network, the addresses,
/// the loads, the boot.
pub fn exchanges(
    config: &UbootConfig,
    boot: &BoardBoot,
    method: &LoadMethod,
    net: Option<&NetPlan>,
) -> Vec<Exchange> {
    let mut out = Vec::new();
    let deadlines = Deadlines::of(config);
    let cmd = |line: String, stage, hint: Option<&str>| Exchange {
        line,
        kind: ExchangeKind::Command,
        stage,
        deadline: deadlines.command,
        hint: hint.map(str::to_string),
    };
    for c in &config.uboot_cmd {
        out.push(cmd(c.value.clone(), None, None));
    }
    if let Some(n) = net {
        match n.board_ip {
            Some(ip) => {
                let mut line = format!("setenv ipaddr {ip}");
                if let Some(m) = n.netmask {
                    line.push_str(&format!("; setenv netmask {m}"));
                }
                if let Some(g) = n.gateway {
                    line.push_str(&format!("; setenv gatewayip {g}"));
                }
                out.push(cmd(line, None, None));
            }
            None => out.push(cmd(
                "setenv autoload no; dhcp".into(),
                None,
                Some("no DHCP answer: is the board's network cable in, or set [net] board_ip"),
            )),
        }
        // RFC 7440 windows (U-Boot ≥ 2020.07, and this run's server): several blocks per
        // round trip instead of one, 10× faster through QEMU's user network; a server without
        // the option answers without it and U-Boot goes on one block at a time. A window the
        // user's `uboot_cmd` set is kept.
        out.push(cmd(
            format!(
                "setenv serverip {}; test -n \"${{tftpwindowsize}}\" || setenv tftpwindowsize {TFTP_WINDOW}",
                n.server
            ),
            Some(STAGE_NETWORK),
            None,
        ));
    }
    out.push(cmd(
        format!("setenv qt_kernel {}", boot.kernel_addr),
        None,
        None,
    ));
    if boot.kernel_addr.starts_with("${") {
        out.push(cmd(
            "test -n \"${qt_kernel}\"".into(),
            None,
            Some("U-Boot has no kernel_addr_r: set kernel_load_addr in the U-Boot config"),
        ));
    }
    let has = |role: &str| boot.files.iter().any(|f| f.role == role);
    if has("dtb") {
        out.push(cmd(
            format!("setexpr qt_fdt ${{qt_kernel}} + {:#x}", boot.fdt_offset),
            None,
            None,
        ));
    }
    if has("initrd") {
        out.push(cmd(
            format!(
                "setexpr qt_initrd ${{qt_kernel}} + {:#x}",
                boot.initrd_offset
            ),
            None,
            None,
        ));
    }
    let last = boot.files.len().saturating_sub(1);
    for (i, f) in boot.files.iter().enumerate() {
        let stage = (i == last).then_some(STAGE_LOADED);
        match method {
            LoadMethod::Loady => out.push(Exchange {
                line: format!("loady ${{{}}}", f.addr_var),
                kind: ExchangeKind::Loady { transfer: i },
                stage: if f.role == "initrd" { None } else { stage },
                deadline: deadlines.command,
                hint: None,
            }),
            _ => out.push(Exchange {
                line: format!("tftpboot ${{{}}} {}", f.addr_var, f.tftp_name),
                kind: ExchangeKind::Command,
                stage: if f.role == "initrd" { None } else { stage },
                deadline: deadlines.command + tftp_time(f.size),
                hint: Some(format!(
                    "the TFTP server at {} should serve {}",
                    net.map_or("?".to_string(), |n| n.server.to_string()),
                    f.tftp_name
                )),
            }),
        }
        if f.role == "initrd" {
            out.push(cmd("setenv qt_initrd_size ${filesize}".into(), stage, None));
        }
    }
    let initrd = if has("initrd") {
        "${qt_initrd}:${qt_initrd_size}"
    } else {
        "-"
    };
    let fdt = if has("dtb") {
        "${qt_fdt}"
    } else {
        "${fdtcontroladdr}"
    };
    let line = match boot.command {
        BootCommand::Booti => format!("booti ${{qt_kernel}} {initrd} {fdt}"),
        BootCommand::Bootm => format!("bootm ${{qt_kernel}} {initrd} {fdt}"),
        BootCommand::BootmFit => "bootm ${qt_kernel}".to_string(),
        BootCommand::Go => "go ${qt_kernel}".to_string(),
    };
    out.push(Exchange {
        line,
        kind: ExchangeKind::Boot,
        stage: None,
        deadline: deadlines.kernel_start,
        hint: None,
    });
    out
}

/// The U-Boot stages' deadlines: the defaults, or `uboot_timeout` for each.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub prompt: Duration,
    pub command: Duration,
    pub kernel_start: Duration,
}

impl Deadlines {
    pub fn of(config: &UbootConfig) -> Deadlines {
        match &config.uboot_timeout {
            Some(t) => Deadlines {
                prompt: t.value,
                command: t.value,
                kernel_start: t.value,
            },
            None => Deadlines {
                prompt: PROMPT_TIMEOUT,
                command: COMMAND_TIMEOUT,
                kernel_start: KERNEL_START_TIMEOUT,
            },
        }
    }
}

/// Blocks per TFTP window asked of the server (`tftpwindowsize`).
const TFTP_WINDOW: u32 = 16;

/// What a TFTP load adds to a command's deadline: 3 s per MiB (about 350 KiB/s: one block per
/// round trip through QEMU's user network is 450 KiB/s; a wired board with windows does
/// several MiB/s).
pub fn tftp_time(size: u64) -> Duration {
    Duration::from_secs(3 * size.div_ceil(1 << 20))
}

/// A YMODEM transfer's deadline at `baud`: twice the line's time for the bytes (10 bits per
/// byte on an 8N1 line), plus 30 s.
pub fn loady_deadline(size: u64, baud: u32) -> Duration {
    let secs = (size * 10 * 2).div_ceil(u64::from(baud.max(1)));
    COMMAND_TIMEOUT + Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> UbootConfig {
        crate::board::uboot::tests::parse_env(text, &[]).unwrap()
    }

    fn file(role: &'static str, addr_var: &'static str) -> BootFile {
        BootFile {
            role,
            path: PathBuf::from(role),
            tftp_name: role.to_string(),
            size: 1,
            addr_var,
        }
    }

    #[test]
    fn offsets_leave_room_for_the_kernels_bss() {
        // image_size (5 MiB) > the file (3 MiB): 6 MiB, then a 2 MiB gap; the DTB takes 2 MiB.
        assert_eq!(offsets(3 << 20, 5 << 20, Some(4)), (8 << 20, 10 << 20));
        assert_eq!(offsets(3 << 20, 0, None), (6 << 20, 6 << 20));
    }

    #[test]
    fn an_image_with_dtb_and_initrd_over_tftp_is_typed_in_order() {
        let c = config(
            "uboot_cmd = [\"setenv bootargs console=ttyAMA0\"]\n[net]\ninterface = \"lo\"\n",
        );
        let boot = BoardBoot {
            files: vec![
                file("kernel", "qt_kernel"),
                file("dtb", "qt_fdt"),
                file("initrd", "qt_initrd"),
            ],
            command: BootCommand::Booti,
            kernel_addr: kernel_addr(&c, None, BootCommand::Booti),
            fdt_offset: 8 << 20,
            initrd_offset: 10 << 20,
            root: PathBuf::from("/r"),
        };
        let net = NetPlan {
            server: Ipv4Addr::LOCALHOST,
            board_ip: None,
            netmask: None,
            gateway: None,
        };
        let lines: Vec<String> = exchanges(&c, &boot, &LoadMethod::of(&c), Some(&net))
            .into_iter()
            .map(|e| e.line)
            .collect();
        assert_eq!(
            lines,
            [
                "setenv bootargs console=ttyAMA0",
                "setenv autoload no; dhcp",
                "setenv serverip 127.0.0.1; test -n \"${tftpwindowsize}\" || setenv tftpwindowsize 16",
                "setenv qt_kernel ${kernel_addr_r}",
                "test -n \"${qt_kernel}\"",
                "setexpr qt_fdt ${qt_kernel} + 0x800000",
                "setexpr qt_initrd ${qt_kernel} + 0xa00000",
                "tftpboot ${qt_kernel} kernel",
                "tftpboot ${qt_fdt} dtb",
                "tftpboot ${qt_initrd} initrd",
                "setenv qt_initrd_size ${filesize}",
                "booti ${qt_kernel} ${qt_initrd}:${qt_initrd_size} ${qt_fdt}",
            ]
        );
    }

    #[test]
    fn without_network_the_kernel_is_sent_by_loady() {
        let c = config("kernel_load_addr = \"0x40080000\"\n");
        let boot = BoardBoot {
            files: vec![file("kernel", "qt_kernel")],
            command: BootCommand::Go,
            kernel_addr: kernel_addr(&c, Some(0x4000_0000), BootCommand::Go),
            fdt_offset: 0,
            initrd_offset: 0,
            root: PathBuf::from("/r"),
        };
        let ex = exchanges(&c, &boot, &LoadMethod::of(&c), None);
        let lines: Vec<&str> = ex.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(
            lines,
            [
                "setenv qt_kernel 0x40080000",
                "loady ${qt_kernel}",
                "go ${qt_kernel}"
            ]
        );
        assert_eq!(ex[1].kind, ExchangeKind::Loady { transfer: 0 });
        assert_eq!(ex[1].stage, Some(STAGE_LOADED));
    }
}

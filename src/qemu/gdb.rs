//! A debugger on the guest, asked for on the command line (never by a config, never in
//! GitHub Actions): `run --gdb [ADDR]` starts QEMU's gdbstub with the guest paused until the
//! debugger continues it, and `run --pause-on-fail` keeps a failed boot's QEMU stopped with a
//! gdbstub and a QMP socket until Ctrl-C. Here: where the gdbstub listens (a unix socket in the
//! case's work dir, or a loopback TCP port — the stub has no authentication, so nothing else is
//! accepted), the QEMU option or monitor command for it, and the `gdb` line a person pastes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::shell;

/// Where `--gdb` asks the gdbstub to listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GdbListen {
    /// `--gdb` alone: a unix socket in the case's work dir (`gdb.sock`).
    Socket,
    /// `--gdb ADDR`: a TCP port on a loopback address.
    Tcp(SocketAddr),
}

impl GdbListen {
    /// Reads `--gdb`'s value: empty (the flag alone) for a unix socket; `PORT`,
    /// `127.0.0.1:PORT`, `[::1]:PORT` or `localhost:PORT` for a loopback TCP port. Any other
    /// address is refused: QEMU's gdbstub lets whoever connects read and write the guest.
    pub fn parse(text: &str) -> Result<GdbListen, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(GdbListen::Socket);
        }
        let shape =
            || format!("`{text}` is not PORT or HOST:PORT (e.g. 1234, 127.0.0.1:1234, [::1]:1234)");
        let loopback = |port: &str| {
            port.parse()
                .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
                .map_err(|_| shape())
        };
        let addr = match text.strip_prefix("localhost:") {
            Some(port) => loopback(port)?,
            None if text.bytes().all(|b| b.is_ascii_digit()) => loopback(text)?,
            None => text.parse::<SocketAddr>().map_err(|_| shape())?,
        };
        if addr.port() == 0 {
            return Err(format!(
                "port 0 in `{text}`: name the TCP port (1-65535) gdb will connect to"
            ));
        }
        if !addr.ip().is_loopback() {
            return Err(format!(
                "{} is not a loopback address: the gdbstub has no authentication, anyone who \
                 reaches it controls the guest; use 127.0.0.1:{} (or --gdb alone for a unix \
                 socket) and forward it over ssh if the debugger runs elsewhere",
                addr.ip(),
                addr.port()
            ));
        }
        Ok(GdbListen::Tcp(addr))
    }
}

/// The debugging a run was asked for on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DebugOptions {
    /// `--gdb [ADDR]`: QEMU starts with a gdbstub and waits for the debugger to continue.
    pub gdb: Option<GdbListen>,
    /// `--pause-on-fail`: a failed boot's QEMU is kept stopped until Ctrl-C.
    pub pause_on_fail: bool,
}

impl DebugOptions {
    /// Whether any debugging was asked for (the run then waits for a person).
    pub fn any(&self) -> bool {
        self.gdb.is_some() || self.pause_on_fail
    }

    /// The flag to name in messages: `--gdb` or `--pause-on-fail`.
    pub fn flag(&self) -> &'static str {
        if self.gdb.is_some() {
            "--gdb"
        } else {
            "--pause-on-fail"
        }
    }
}

/// One boot's gdbstub endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GdbEndpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl GdbEndpoint {
    /// Where `listen` puts the gdbstub of a boot whose sockets go to `socket` (for
    /// [`GdbListen::Socket`]).
    pub fn new(listen: GdbListen, socket: PathBuf) -> GdbEndpoint {
        match listen {
            GdbListen::Socket => GdbEndpoint::Unix(socket),
            GdbListen::Tcp(addr) => GdbEndpoint::Tcp(addr),
        }
    }

    /// The chardev QEMU's `-gdb` option and the monitor's `gdbserver` take. QEMU adds
    /// `server=on,wait=off` to a `tcp:` device itself, not to a `unix:` one; the host is always
    /// written (QEMU's `tcp::PORT` would listen on every interface). Commas are doubled, as
    /// QEMU's option parser wants.
    pub fn qemu_device(&self) -> String {
        match self {
            GdbEndpoint::Unix(p) => format!(
                "unix:{},server=on,wait=off",
                super::options::escape(&p.to_string_lossy())
            ),
            GdbEndpoint::Tcp(addr) => format!("tcp:{addr}"),
        }
    }

    /// The monitor command that starts this gdbstub in a running QEMU (`gdbserver DEVICE`),
    /// the device quoted as the monitor reads a string argument.
    pub fn monitor_command(&self) -> String {
        let device = self.qemu_device();
        if device.contains([' ', '"', '\\', '\'']) {
            let quoted = device.replace('\\', "\\\\").replace('"', "\\\"");
            format!("gdbserver \"{quoted}\"")
        } else {
            format!("gdbserver {device}")
        }
    }

    /// The path of a unix-socket stub (a test waits for it; the boot removes it).
    pub fn socket(&self) -> Option<&Path> {
        match self {
            GdbEndpoint::Unix(p) => Some(p),
            GdbEndpoint::Tcp(_) => None,
        }
    }

    /// The exact line to attach: `gdb -ex 'target remote TARGET' ELF`, with `gdb-multiarch`
    /// when the guest's architecture is not this host's (Debian's `gdb` debugs its own only),
    /// and the kernel ELF the case knows; without one, says so instead of guessing. Each guest
    /// kernel ELF (AxVisor's VM configs) is added with `add-symbol-file` at the addresses it
    /// is linked at — those the postmortem names guest addresses with — before gdb connects, so
    /// the first stop is named too; `confirm` is off just for those (gdb asks "add symbol
    /// table from file …? (y or n)" for each otherwise).
    pub fn gdb_line(&self, arch: Arch, elfs: &DebugElfs) -> String {
        let gdb = if Arch::host() == Some(arch) {
            "gdb"
        } else {
            "gdb-multiarch"
        };
        let target = match self {
            // gdb connects to a unix socket given as a plain path.
            GdbEndpoint::Unix(p) => p.to_string_lossy().into_owned(),
            GdbEndpoint::Tcp(addr) => addr.to_string(),
        };
        let ex = |line: &mut String, command: &str| {
            line.push_str(" -ex ");
            line.push_str(&shell::quote(command));
        };
        let mut line = gdb.to_string();
        let guests: Vec<&PathBuf> = elfs
            .guests
            .iter()
            .filter(|g| Some(g.as_path()) != elfs.main.as_deref())
            .collect();
        if !guests.is_empty() {
            ex(&mut line, "set confirm off");
            for guest in guests {
                ex(&mut line, &format!("add-symbol-file {}", gdb_word(guest)));
            }
            ex(&mut line, "set confirm on");
        }
        ex(&mut line, &format!("target remote {target}"));
        match &elfs.main {
            Some(elf) => {
                line.push(' ');
                line.push_str(&shell::quote(&elf.to_string_lossy()));
            }
            None => line.push_str("   (no ELF known: load the kernel's symbols with `file`)"),
        }
        line
    }
}

/// The ELFs `run --gdb`'s line loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DebugElfs {
    /// The booted kernel or hypervisor ELF (else an ELF among the symbol files).
    pub main: Option<PathBuf>,
    /// The guests' kernel ELFs the patched VM configs boot (AxVisor).
    pub guests: Vec<PathBuf>,
}

/// `path` as one word of a gdb command: gdb splits `add-symbol-file`'s arguments at blanks and
/// reads quotes and backslashes in them (`gdb_buildargv`), so a path with any of those is
/// double-quoted with `"` and `\` escaped.
fn gdb_word(path: &Path) -> String {
    let text = path.to_string_lossy();
    if text.contains(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\')) {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_alone_is_a_unix_socket_and_a_port_is_on_loopback() {
        assert_eq!(GdbListen::parse(""), Ok(GdbListen::Socket));
        let tcp = |s: &str| match GdbListen::parse(s) {
            Ok(GdbListen::Tcp(a)) => a.to_string(),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(tcp("1234"), "127.0.0.1:1234");
        assert_eq!(tcp("localhost:1234"), "127.0.0.1:1234");
        assert_eq!(tcp("127.0.0.2:99"), "127.0.0.2:99");
        assert_eq!(tcp("[::1]:1234"), "[::1]:1234");
    }

    #[test]
    fn other_addresses_and_bad_ports_are_refused_saying_why() {
        for addr in ["0.0.0.0:1234", "192.168.1.5:1234", "[::]:1234"] {
            let e = GdbListen::parse(addr).unwrap_err();
            assert!(e.contains("is not a loopback address"), "{addr}: {e}");
            assert!(e.contains("127.0.0.1:1234"), "{addr}: {e}");
        }
        assert!(GdbListen::parse("0").unwrap_err().contains("port 0"));
        assert!(
            GdbListen::parse("127.0.0.1:0")
                .unwrap_err()
                .contains("port 0")
        );
        assert!(
            GdbListen::parse("99999")
                .unwrap_err()
                .contains("is not PORT")
        );
        let e = GdbListen::parse("example.org:1234").unwrap_err();
        assert!(e.contains("is not PORT or HOST:PORT"), "{e}");
    }

    #[test]
    fn qemu_gets_an_explicit_host_and_a_server_socket() {
        let unix = GdbEndpoint::Unix("/w/a,b/gdb.sock".into());
        assert_eq!(
            unix.qemu_device(),
            "unix:/w/a,,b/gdb.sock,server=on,wait=off"
        );
        assert_eq!(
            unix.monitor_command(),
            "gdbserver unix:/w/a,,b/gdb.sock,server=on,wait=off"
        );
        let spaced = GdbEndpoint::Unix("/w/my dir/gdb.sock".into());
        assert_eq!(
            spaced.monitor_command(),
            "gdbserver \"unix:/w/my dir/gdb.sock,server=on,wait=off\""
        );
        let tcp = GdbEndpoint::new(GdbListen::parse("1234").unwrap(), PathBuf::from("/unused"));
        assert_eq!(tcp.qemu_device(), "tcp:127.0.0.1:1234");
        assert_eq!(tcp.socket(), None);
    }

    #[test]
    fn the_gdb_line_names_the_debugger_the_target_and_the_elf() {
        let unix = GdbEndpoint::Unix("/w/case/gdb.sock".into());
        let other = if Arch::host() == Some(Arch::Aarch64) {
            Arch::Riscv64
        } else {
            Arch::Aarch64
        };
        let main = |p: &str| DebugElfs {
            main: Some(p.into()),
            guests: Vec::new(),
        };
        assert_eq!(
            unix.gdb_line(other, &main("/k/hang.elf")),
            "gdb-multiarch -ex 'target remote /w/case/gdb.sock' /k/hang.elf"
        );
        if let Some(host) = Arch::host() {
            let tcp = GdbEndpoint::Tcp("[::1]:9".parse().unwrap());
            assert_eq!(
                tcp.gdb_line(host, &main("/k/my kernel")),
                "gdb -ex 'target remote [::1]:9' '/k/my kernel'"
            );
        }
        assert!(
            unix.gdb_line(other, &DebugElfs::default())
                .ends_with("(no ELF known: load the kernel's symbols with `file`)")
        );
    }

    /// AxVisor: each guest kernel ELF is added (without asking), before gdb connects; a guest
    /// that is the main ELF itself is not added twice.
    #[test]
    fn the_gdb_line_adds_each_guest_kernels_symbols() {
        let unix = GdbEndpoint::Unix("/w/gdb.sock".into());
        let elfs = DebugElfs {
            main: Some("/k/axvisor".into()),
            guests: vec![
                "/g/arceos.elf".into(),
                "/g/it's linux".into(),
                "/k/axvisor".into(),
            ],
        };
        assert_eq!(
            unix.gdb_line(Arch::Loongarch64, &elfs),
            "gdb-multiarch -ex 'set confirm off' -ex 'add-symbol-file /g/arceos.elf' \
             -ex 'add-symbol-file \"/g/it'\\''s linux\"' -ex 'set confirm on' \
             -ex 'target remote /w/gdb.sock' /k/axvisor"
        );
        let guests_only = DebugElfs {
            main: None,
            guests: vec!["/g/arceos.elf".into()],
        };
        let line = unix.gdb_line(Arch::Loongarch64, &guests_only);
        assert!(
            line.starts_with(
                "gdb-multiarch -ex 'set confirm off' -ex 'add-symbol-file /g/arceos.elf' \
                 -ex 'set confirm on' -ex 'target remote /w/gdb.sock'   (no ELF known"
            ),
            "{line}"
        );
    }

    #[test]
    fn gdb_words_quote_blanks_quotes_and_backslashes() {
        assert_eq!(gdb_word(Path::new("/a/b.elf")), "/a/b.elf");
        assert_eq!(gdb_word(Path::new("/a b")), "\"/a b\"");
        assert_eq!(gdb_word(Path::new("/a\\\"b")), "\"/a\\\\\\\"b\"");
    }
}

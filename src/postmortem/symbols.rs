//! Naming addresses: `function+0xoff (file:line)` from an ELF's symbol table and debug info
//! (`object` and `addr2line`, the gimli family), or `function+0xoff` from a `System.map`.
//! An address outside every file's code is left unnamed: "no symbols" is said rather than the
//! nearest symbol of an unrelated region guessed.

use std::fmt;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection, SectionKind};
use serde::Serialize;

/// Where an address is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The nearest symbol at or below the address (demangled).
    pub function: Option<String>,
    /// The address's distance from that symbol.
    pub offset: u64,
    /// Source file and line, when the ELF has debug info for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The symbol file that named it (file name only).
    pub object: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.function {
            Some(name) if self.offset == 0 => write!(f, "{name}")?,
            Some(name) => write!(f, "{name}+{:#x}", self.offset)?,
            None => write!(f, "?? in {}", self.object)?,
        }
        if let Some(file) = &self.file {
            match self.line {
                Some(line) => write!(f, " ({file}:{line})")?,
                None => write!(f, " ({file})")?,
            }
        }
        Ok(())
    }
}

/// One file of symbols.
enum Source {
    Elf {
        loader: Box<addr2line::Loader>,
        /// Address ranges of its executable sections.
        code: Vec<(u64, u64)>,
    },
    /// A `System.map`: text symbols sorted by address, and where text ends.
    Map {
        symbols: Vec<(u64, String)>,
        end: u64,
    },
}

struct SymbolFile {
    name: String,
    source: Source,
    /// A guest's kernel (named in a patched VM config), not the booted hypervisor or kernel.
    guest: bool,
}

/// The booted `images` that are ELF files, then the symbol `files`: the order addresses are
/// looked up in.
fn lookup_order<'a>(images: &'a [PathBuf], files: &'a [PathBuf]) -> impl Iterator<Item = &'a Path> {
    images
        .iter()
        .filter(|p| crate::magic::file_is_elf(p))
        .chain(files)
        .map(PathBuf::as_path)
}

/// The ELF a debugger loads for the case (`run --gdb`): the first ELF file in the order
/// [`Symbolizer::load`] looks addresses up in — the booted kernel or hypervisor, else an ELF
/// among the symbol files; `None` when the case knows none.
pub fn debugger_elf(images: &[PathBuf], files: &[PathBuf]) -> Option<PathBuf> {
    lookup_order(images, files)
        .find(|p| crate::magic::file_is_elf(p))
        .map(Path::to_path_buf)
}

/// Every symbol file a case knows, tried in order.
#[derive(Default)]
pub struct Symbolizer {
    files: Vec<SymbolFile>,
    /// Files that could not be read, with why.
    pub problems: Vec<String>,
}

/// How far past the last symbol of a map without `_etext` an address still counts as in it
/// (a map has no sizes; a kernel's last function is rarely longer).
const LAST_SYMBOL_SPAN: u64 = 64 * 1024;
/// Longest `System.map` read.
const MAX_MAP: u64 = 64 * 1024 * 1024;
/// Longest symbol name kept (C++ and Rust names can be very long).
const MAX_NAME: usize = 200;
/// Most path components shown of a source file.
const FILE_COMPONENTS: usize = 3;

impl Symbolizer {
    /// Loads the booted `images` that are ELF files (a flat binary has no symbols and is
    /// passed over), then the symbol `files` the case names: ELF files (symbol table, debug
    /// info) and `System.map`s (anything that is not an ELF). A file that cannot be used is
    /// named in [`Symbolizer::problems`].
    pub fn load(images: &[PathBuf], files: &[PathBuf]) -> Symbolizer {
        let mut s = Symbolizer::default();
        for path in lookup_order(images, files) {
            s.add(path, false);
        }
        s
    }

    /// Adds the symbol files of the hypervisor's guests (the ELF kernels the patched VM configs
    /// name, or their `System.map`s):
    /// addresses of a vCPU in a guest's privilege level are named against them
    /// ([`Symbolizer::locate_in`]).
    pub fn with_guest_kernels(mut self, kernels: &[PathBuf]) -> Symbolizer {
        for path in kernels {
            self.add(path, true);
        }
        self
    }

    fn add(&mut self, path: &Path, guest: bool) {
        match load_file(path) {
            Ok(source) => self.files.push(SymbolFile {
                name: file_name(path),
                source,
                guest,
            }),
            Err(e) => self.problems.push(format!("{}: {e}", path.display())),
        }
    }

    /// Like [`Symbolizer::locate`] for a vCPU in privilege `mode` (`EL2`, `EL1`, `VS-mode`, …):
    /// with guest kernels loaded, a PC at the hypervisor's level (aarch64 EL2, riscv S-mode)
    /// is named against the booted ELF and the case's symbol files only, and a PC at a guest's
    /// level (EL1/EL0, VS/VU-mode) against the guest kernels only — the two are often linked
    /// at the same addresses, so the first file covering the address could be the wrong one.
    pub fn locate_in(&self, addr: u64, mode: Option<&str>) -> Option<Location> {
        let has_guests = self.files.iter().any(|f| f.guest);
        let want_guest = match mode {
            _ if !has_guests => None,
            Some("EL2" | "EL3" | "S-mode" | "HS-mode" | "M-mode") => Some(false),
            Some("EL1" | "EL0" | "VS-mode" | "VU-mode") => Some(true),
            _ => None,
        };
        self.files
            .iter()
            .filter(|f| want_guest.is_none_or(|g| f.guest == g))
            .find_map(|f| f.locate(addr))
    }

    /// Whether any symbol file was loaded.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The function (and line) at `addr`, from the first file whose code covers it.
    pub fn locate(&self, addr: u64) -> Option<Location> {
        self.files.iter().find_map(|f| f.locate(addr))
    }
}

impl SymbolFile {
    fn locate(&self, addr: u64) -> Option<Location> {
        match &self.source {
            Source::Elf { loader, code } => {
                if !code.iter().any(|&(lo, hi)| (lo..hi).contains(&addr)) {
                    return None;
                }
                let sym = loader.find_symbol_info(addr);
                let (file, line) = match loader.find_location(addr) {
                    Ok(Some(l)) => (l.file.map(short_path), l.line),
                    _ => (None, None),
                };
                if sym.is_none() && file.is_none() {
                    // A stripped ELF: nothing to name the address with.
                    return None;
                }
                Some(Location {
                    function: sym.as_ref().map(|s| demangle(s.name())),
                    offset: sym.map_or(0, |s| addr - s.address()),
                    file,
                    line,
                    object: self.name.clone(),
                })
            }
            Source::Map { symbols, end } => {
                let first = symbols.first()?.0;
                if addr < first || addr >= *end {
                    return None;
                }
                let i = symbols.partition_point(|(a, _)| *a <= addr) - 1;
                let (at, name) = &symbols[i];
                Some(Location {
                    function: Some(name.clone()),
                    offset: addr - at,
                    file: None,
                    line: None,
                    object: self.name.clone(),
                })
            }
        }
    }
}

/// An ELF or a `System.map`, or an error naming what is wrong with the file.
fn load_file(path: &Path) -> Result<Source, String> {
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    if crate::magic::file_is_elf(path) {
        return elf(path, &f);
    }
    system_map(path, f)
}

fn elf(path: &Path, f: &std::fs::File) -> Result<Source, String> {
    // SAFETY: the file is only read; a concurrent writer could change what is read (as with
    // any reader), not memory safety beyond what `addr2line::Loader` already accepts for its
    // own mapping of the same file.
    let map = unsafe { memmap2::Mmap::map(f) }.map_err(|e| e.to_string())?;
    let obj = object::File::parse(&*map).map_err(|e| format!("not a readable ELF: {e}"))?;
    let code: Vec<(u64, u64)> = obj
        .sections()
        .filter(|s| s.kind() == SectionKind::Text && s.size() > 0)
        .map(|s| (s.address(), s.address().saturating_add(s.size())))
        .collect();
    if code.is_empty() {
        return Err("the ELF has no code sections".into());
    }
    let loader = addr2line::Loader::new(path).map_err(|e| e.to_string())?;
    Ok(Source::Elf {
        loader: Box::new(loader),
        code,
    })
}

/// `ffff800080010000 T _text` lines: text symbols (`t`, `T`, `w`, `W`) are kept; text ends
/// at `_etext` when the map has it, else [`LAST_SYMBOL_SPAN`] past its last text symbol.
fn system_map(path: &Path, f: std::fs::File) -> Result<Source, String> {
    use std::io::{BufRead, Read};
    let mut symbols = Vec::new();
    let mut etext = None;
    let reader = std::io::BufReader::new(f.take(MAX_MAP));
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        let line = String::from_utf8_lossy(&line);
        let mut w = line.split_whitespace();
        let (Some(addr), Some(kind), Some(name)) = (w.next(), w.next(), w.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(not_a_map(path, n + 1));
        };
        let Ok(addr) = u64::from_str_radix(addr, 16) else {
            return Err(not_a_map(path, n + 1));
        };
        if name == "_etext" {
            etext = Some(addr);
        }
        if matches!(kind, "t" | "T" | "w" | "W") {
            symbols.push((addr, truncate(name)));
        }
    }
    if symbols.is_empty() {
        return Err(
            "no text symbols: expected an ELF or a System.map (`<hex address> T <name>` lines)"
                .into(),
        );
    }
    symbols.sort_by_key(|(a, _)| *a);
    let last = symbols.last().map_or(0, |(a, _)| *a);
    let end = etext.unwrap_or(last.saturating_add(LAST_SYMBOL_SPAN));
    Ok(Source::Map { symbols, end })
}

fn not_a_map(path: &Path, line: usize) -> String {
    format!(
        "{}:{line}: not an ELF, and not a System.map line (expected `<hex address> <type> <name>`)",
        path.display()
    )
}

fn demangle(name: &str) -> String {
    truncate(&addr2line::demangle_auto(name.into(), None))
}

fn truncate(name: &str) -> String {
    match name.char_indices().nth(MAX_NAME) {
        Some((i, _)) => format!("{}…", &name[..i]),
        None => name.to_string(),
    }
}

/// The last few components of a source path: `src/vmm/mod.rs`, not the build machine's home.
fn short_path(file: &str) -> String {
    let p = PathBuf::from(file.strip_prefix("./").unwrap_or(file));
    let parts: Vec<_> = p
        .components()
        .filter(|c| {
            !matches!(
                c,
                std::path::Component::RootDir | std::path::Component::CurDir
            )
        })
        .collect();
    let skip = parts.len().saturating_sub(FILE_COMPONENTS);
    parts[skip..]
        .iter()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_map_names_text_addresses_and_stops_at_etext() {
        let dir = tempfile::tempdir().unwrap();
        let map = dir.path().join("System.map");
        std::fs::write(
            &map,
            "ffff800080000000 T _text\nffff800080010000 T do_idle\nffff800080010100 t cpu_idle_poll\nffff800080020000 D some_data\nffff800080030000 T _etext\n",
        )
        .unwrap();
        let s = Symbolizer::load(&[], &[map]);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let l = s.locate(0xffff_8000_8001_0104).unwrap();
        assert_eq!(l.to_string(), "cpu_idle_poll+0x4");
        assert_eq!(
            s.locate(0xffff_8000_8001_0000).unwrap().to_string(),
            "do_idle"
        );
        assert!(s.locate(0xffff_8000_8003_0000).is_none(), "past _etext");
        assert!(s.locate(0x1000).is_none(), "below the first symbol");
    }

    /// AxVisor's hypervisor and its guest's kernel are linked at the same addresses: the
    /// vCPU's exception level picks the file that names a PC.
    #[test]
    fn a_pc_at_el2_is_the_hypervisors_and_at_el1_the_guests() {
        let dir = tempfile::tempdir().unwrap();
        let hv = dir.path().join("axvisor.map");
        std::fs::write(
            &hv,
            "ffff000040080000 T _start\nffff000040081000 T vcpu_run\nffff000040090000 T _etext\n",
        )
        .unwrap();
        let guest = dir.path().join("arceos.map");
        std::fs::write(
            &guest,
            "ffff000040080000 T _start\nffff000040081000 T rust_main\nffff000040090000 T _etext\n",
        )
        .unwrap();
        let pc = 0xffff_0000_4008_1010;
        let s = Symbolizer::load(&[], std::slice::from_ref(&hv))
            .with_guest_kernels(std::slice::from_ref(&guest));
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let at = |mode| s.locate_in(pc, mode).map(|l| (l.to_string(), l.object));
        let hv_name = Some(("vcpu_run+0x10".to_string(), "axvisor.map".to_string()));
        let guest_name = Some(("rust_main+0x10".to_string(), "arceos.map".to_string()));
        assert_eq!(at(Some("EL2")), hv_name);
        assert_eq!(at(Some("EL1")), guest_name);
        assert_eq!(at(Some("EL0")), guest_name);
        assert_eq!(at(Some("VS-mode")), guest_name);
        assert_eq!(at(Some("HS-mode")), hv_name);
        // No level known (a guest-printed backtrace): the first file that covers it.
        assert_eq!(at(None), hv_name);
        // Without guest kernels every file is tried, whatever the level (a kernel at EL1).
        let alone = Symbolizer::load(&[], &[hv]);
        assert_eq!(
            alone.locate_in(pc, Some("EL1")).unwrap().to_string(),
            "vcpu_run+0x10"
        );
        // A guest-level PC no guest kernel covers is not named after the hypervisor.
        let only_guest = Symbolizer::load(&[], &[]).with_guest_kernels(&[guest]);
        assert!(only_guest.locate_in(0x1000, Some("EL1")).is_none());
    }

    #[test]
    fn a_file_that_is_neither_is_a_problem_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("notes.txt");
        std::fs::write(&bad, "hello world\n").unwrap();
        let files = [bad];
        let s = Symbolizer::load(&files, &files);
        assert_eq!(s.problems.len(), 1, "a non-ELF image is passed over");
        assert!(s.is_empty());
        assert!(
            s.problems[0].contains("notes.txt:1: not an ELF"),
            "{:?}",
            s.problems
        );
    }

    #[test]
    fn source_paths_are_shortened_and_names_capped() {
        assert_eq!(
            short_path("/home/u/axvisor/src/vmm/mod.rs"),
            "src/vmm/mod.rs"
        );
        assert_eq!(short_path("./main.c"), "main.c");
        assert_eq!(truncate(&"a".repeat(300)).chars().count(), MAX_NAME + 1);
    }
}

//! StarryOS' symbol table written into its kernel, as tgoskits' axbuild does after cargo
//! (`starry/build.rs` `generate_kallsyms`): `rust-nm -n <elf>`, the lines whose kind is `T`, `t`,
//! `D`, `B` or `R` and whose name is neither `.L…` nor `$x`, as `<addr> <kind> <name>` lines into
//! `gen_ksym` (the `ksym` crate's tool), its output zero-padded to the ELF's `.kallsyms` section
//! (an error when larger), and `rust-objcopy --update-section .kallsyms=<table> <elf>`. StarryOS
//! reads that table when it mounts procfs (`read_kallsyms`, which refuses an invalid one).
//!
//! axbuild installs missing tools itself (`cargo install cargo-binutils ksym`, `rustup component
//! add llvm-tools-preview`); here a missing one is an error that says how to install it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::environment::Lookup;
use crate::error::Error;

/// The tools the step runs, with what installs each.
const TOOLS: [(&str, &str); 3] = [
    (
        "rust-nm",
        "rustup component add llvm-tools-preview && cargo install cargo-binutils",
    ),
    ("gen_ksym", "cargo install ksym"),
    (
        "rust-objcopy",
        "rustup component add llvm-tools-preview && cargo install cargo-binutils",
    ),
];

/// Writes the symbol table of `elf` into its `.kallsyms` section, in place.
pub fn write(elf: &Path) -> Result<(), Error> {
    let [nm, gen_ksym, objcopy] = tools()?;
    let listing = output(Command::new(&nm).arg("-n").arg(elf), "rust-nm")?;
    let symbols = symbols(&String::from_utf8_lossy(&listing));
    let table = run_with_input(&gen_ksym, &symbols)?;
    let size = section_size(elf)?;
    if table.len() > size {
        return Err(Error::infra(format!(
            "gen_ksym's symbol table ({} bytes) does not fit the .kallsyms section of {} ({size} \
             bytes)",
            table.len(),
            elf.display()
        ))
        .help(
            "the kernel's linker script reserves that section: rebuild from a clean target dir",
        ));
    }
    let mut padded = table;
    padded.resize(size, 0);
    let name = elf
        .file_name()
        .map_or_else(|| "kernel".into(), |n| n.to_string_lossy().into_owned());
    let temp = elf.with_file_name(format!(".{name}.kallsyms.{}.tmp", std::process::id()));
    std::fs::write(&temp, &padded)
        .map_err(|e| Error::infra(format!("cannot write {}: {e}", temp.display())))?;
    let mut update = Command::new(&objcopy);
    update
        .arg("--update-section")
        .arg(format!(".kallsyms={}", temp.display()))
        .arg(elf);
    let result = output(&mut update, "rust-objcopy");
    let _ = std::fs::remove_file(&temp);
    result.map(|_| ())
}

/// The three tools on `PATH`, or an error naming the first missing one and how to install it.
fn tools() -> Result<[PathBuf; 3], Error> {
    let path = crate::environment::process()
        .get_os("PATH")
        .unwrap_or_default();
    let find = |(name, install): (&str, &str)| {
        crate::host::which(&path, name).ok_or_else(|| {
            Error::infra(format!(
                "{name} is not on PATH: StarryOS' kernel needs its symbol table written into \
                 its .kallsyms section after the build (axbuild installs the tool itself)"
            ))
            .help(format!("install it: {install}"))
        })
    };
    Ok([find(TOOLS[0])?, find(TOOLS[1])?, find(TOOLS[2])?])
}

/// `rust-nm -n`'s lines that axbuild keeps (`rust_nm_symbols`), newline-terminated.
fn symbols(listing: &str) -> String {
    let mut out = String::new();
    for line in listing.lines() {
        let mut fields = line.split_whitespace();
        let (Some(addr), Some(kind), Some(name)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if matches!(kind, "T" | "t" | "D" | "B" | "R") && !name.starts_with(".L") && name != "$x" {
            out.push_str(&format!("{addr} {kind} {name}\n"));
        }
    }
    out
}

/// The stdout of a command that must succeed.
fn output(cmd: &mut Command, what: &str) -> Result<Vec<u8>, Error> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::infra(format!("cannot run {what}: {e}")))?;
    succeeded(out, what)
}

/// A finished command's stdout, or the error naming it with its status and stderr.
fn succeeded(out: std::process::Output, what: &str) -> Result<Vec<u8>, Error> {
    if !out.status.success() {
        return Err(Error::infra(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// `gen_ksym` with `input` on its stdin: its stdout.
fn run_with_input(program: &Path, input: &str) -> Result<Vec<u8>, Error> {
    let mut child = Command::new(program)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::infra(format!("cannot run gen_ksym: {e}")))?;
    // Written from a thread: gen_ksym may write before it has read everything.
    let mut stdin = child.stdin.take();
    let input = input.to_string();
    let writer = std::thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(input.as_bytes());
        }
    });
    let out = child
        .wait_with_output()
        .map_err(|e| Error::infra(format!("gen_ksym: {e}")))?;
    let _ = writer.join();
    succeeded(out, "gen_ksym")
}

/// The size of the ELF's `.kallsyms` section.
fn section_size(elf: &Path) -> Result<usize, Error> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(elf).map_err(|e| Error::input_io(elf, "kernel", &e))?;
    let file = object::File::parse(&*data)
        .map_err(|e| Error::infra(format!("{} is not an ELF: {e}", elf.display())))?;
    let section = file.section_by_name(".kallsyms").ok_or_else(|| {
        Error::infra(format!(
            "{} has no .kallsyms section for StarryOS' symbol table",
            elf.display()
        ))
        .help("StarryOS' linker script reserves it; was the package built with its linker.ld?")
    })?;
    usize::try_from(section.size())
        .map_err(|_| Error::infra(format!(".kallsyms of {} is too large", elf.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `rust_nm_symbols`: text, data, bss and rodata symbols, not local labels, `$x` or
    /// absolute/undefined ones, nor short lines.
    #[test]
    fn symbols_keep_what_axbuild_keeps() {
        let listing = "0000000000004160 A __image_size\n\
                       0000000040080000 T _start\n\
                       0000000040080030 t park\n\
                       0000000040080040 t .Ltmp1\n\
                       0000000040080044 t $x\n\
                       0000000040081000 R msg\n\
                       0000000040082000 D data\n\
                       0000000040083000 B bss\n\
                       U undefined\n";
        assert_eq!(
            symbols(listing),
            "0000000040080000 T _start\n0000000040080030 t park\n0000000040081000 R msg\n\
             0000000040082000 D data\n0000000040083000 B bss\n"
        );
    }
}

//! `build::elf::to_bin` must write exactly what GNU `objcopy -O binary` writes. Each test compiles
//! real ELFs with the Debian cross and host toolchains, runs the real objcopy and compares bytes.
//! A missing tool fails the test with the Debian package to install: it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use qemu_test_action::arch::Arch;
use qemu_test_action::build::elf::{elf_arch, kernel_arch, to_bin};

/// A bare-metal program with code, read-only data, initialised data, a zeroed array (.bss)
/// and a thread-local (.tdata), so every kind of section appears.
const KERNEL_C: &str = r#"
const char greeting[] = "Hello from rodata";
int counter = 0x1234;
long table[4] = {1, 2, 3, 4};
char scratch[4096];
__thread int tls_value = 7;
void _start(void) {
    volatile char *uart = (char *)0x09000000;
    for (const char *p = greeting; *p; p++) *uart = *p;
    scratch[counter & 0xff] = (char)table[1] + (char)tls_value;
    for (;;) {}
}
"#;

/// Code at the QEMU virt load address, data 64 KiB later: the flat binary has a zero-filled gap
/// and ends before .bss.
const GAP_LD: &str = r#"
ENTRY(_start)
SECTIONS {
  . = 0x40080000;
  .text : { *(.text*) }
  .rodata : { *(.rodata*) *(.eh_frame*) }
  . = ALIGN(0x10000);
  .data : { *(.data*) }
  .tdata : { *(.tdata*) }
  .bss : { *(.bss*) *(COMMON) }
}
"#;

/// Data that runs at one address but is loaded right after the code (LMA != VMA), as ROM-style
/// kernels do; objcopy places it by LMA.
const AT_LD: &str = r#"
ENTRY(_start)
SECTIONS {
  . = 0x40080000;
  .text : { *(.text*) }
  .rodata : { *(.rodata*) *(.eh_frame*) }
  .data 0x50000000 : AT(ADDR(.rodata) + SIZEOF(.rodata)) { *(.data*) }
  .tdata : AT(LOADADDR(.data) + SIZEOF(.data)) { *(.tdata*) }
  .bss : { *(.bss*) *(COMMON) }
}
"#;

/// 32-bit x86 assembly with data in a second segment one page up.
const I386_S: &str = r#"
    .text
    .globl _start
_start:
    movl $msg, %esi
1:  jmp 1b
    .section .rodata
msg: .asciz "i386 hello"
    .data
    .balign 4096
value: .long 0xdeadbeef
    .bss
buffer: .skip 256
"#;

const HELLO_C: &str = r#"
#include <stdio.h>
__thread int per_thread = 3;
int main(void) { printf("hello %d\n", per_thread); return 0; }
"#;

/// Finds `tool` on PATH or fails naming the Debian package that provides it.
fn tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed: run `apt-get install {package}`"))
}

fn run(program: &Path, args: &[&str], dir: &Path) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write source");
    path
}

/// Runs `objcopy -O binary` on `elf` and asserts `to_bin` gives the same bytes.
fn assert_same_as_objcopy(objcopy: &Path, elf: &Path) -> Vec<u8> {
    let bin = elf.with_extension("objcopy.bin");
    run(
        objcopy,
        &["-O", "binary", elf.to_str().unwrap(), bin.to_str().unwrap()],
        elf.parent().unwrap(),
    );
    let expected = std::fs::read(&bin).expect("objcopy output");
    let ours = to_bin(&std::fs::read(elf).expect("read ELF")).expect("to_bin");
    if ours != expected {
        let first = ours.iter().zip(&expected).position(|(a, b)| a != b);
        panic!(
            "{}: to_bin gave {} bytes, objcopy {} bytes, first difference at {first:?}",
            elf.display(),
            ours.len(),
            expected.len()
        );
    }
    assert!(!expected.is_empty());
    expected
}

fn aarch64_tools() -> (PathBuf, PathBuf) {
    (
        tool("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
        tool("aarch64-linux-gnu-objcopy", "binutils-aarch64-linux-gnu"),
    )
}

fn build_aarch64(dir: &Path, script: Option<&str>, extra: &[&str], out: &str) -> PathBuf {
    let (gcc, _) = aarch64_tools();
    let src = write(dir, "kernel.c", KERNEL_C);
    let mut args = vec!["-ffreestanding", "-nostdlib", "-static", "-O1", "-o", out];
    let ld;
    if let Some(text) = script {
        ld = write(dir, &format!("{out}.ld"), text);
        args.extend(["-T", ld.to_str().unwrap()]);
    }
    args.extend(extra);
    args.push(src.to_str().unwrap());
    run(&gcc, &args, dir);
    dir.join(out)
}

#[test]
fn aarch64_gap_between_code_and_data_is_zero_filled() {
    let dir = tempfile::tempdir().unwrap();
    let elf = build_aarch64(dir.path(), Some(GAP_LD), &[], "gap.elf");
    let bin = assert_same_as_objcopy(&aarch64_tools().1, &elf);
    assert!(bin.len() > 0x10000, "data lies 64 KiB after the code");
    assert_eq!(
        elf_arch(&std::fs::read(&elf).unwrap()).unwrap(),
        Arch::Aarch64
    );
    assert_eq!(kernel_arch(&elf).unwrap(), Arch::Aarch64);
}

#[test]
fn aarch64_data_is_placed_by_load_address() {
    let dir = tempfile::tempdir().unwrap();
    let elf = build_aarch64(dir.path(), Some(AT_LD), &[], "at.elf");
    let bin = assert_same_as_objcopy(&aarch64_tools().1, &elf);
    assert!(
        bin.len() < 0x1000,
        "data follows the code by LMA, not at its VMA"
    );
}

#[test]
fn aarch64_default_linker_layout_with_notes_and_tls() {
    let dir = tempfile::tempdir().unwrap();
    let elf = build_aarch64(dir.path(), None, &["-Wl,--build-id"], "default.elf");
    assert_same_as_objcopy(&aarch64_tools().1, &elf);
}

/// Some linkers leave every `p_paddr` zero; objcopy then places sections by virtual address.
#[test]
fn aarch64_zero_physical_addresses_fall_back_to_virtual() {
    let dir = tempfile::tempdir().unwrap();
    let elf = build_aarch64(dir.path(), Some(GAP_LD), &[], "gap.elf");
    let mut bytes = std::fs::read(&elf).unwrap();
    let word = |b: &[u8], at: usize, len: usize| {
        b[at..at + len]
            .iter()
            .rev()
            .fold(0usize, |a, x| (a << 8) | *x as usize)
    };
    let (phoff, phentsize, phnum) = (
        word(&bytes, 32, 8),
        word(&bytes, 54, 2),
        word(&bytes, 56, 2),
    );
    for i in 0..phnum {
        let paddr = phoff + i * phentsize + 24;
        bytes[paddr..paddr + 8].fill(0);
    }
    let zeroed = dir.path().join("zero-paddr.elf");
    std::fs::write(&zeroed, bytes).unwrap();
    let bin = assert_same_as_objcopy(&aarch64_tools().1, &zeroed);
    assert!(bin.len() > 0x10000, "placed by VMA: the 64 KiB gap stays");
}

#[test]
fn aarch64_big_endian() {
    let dir = tempfile::tempdir().unwrap();
    let elf = build_aarch64(dir.path(), Some(GAP_LD), &["-mbig-endian"], "be.elf");
    assert_same_as_objcopy(&aarch64_tools().1, &elf);
    assert_eq!(kernel_arch(&elf).unwrap(), Arch::Aarch64);
}

fn host_tools() -> (PathBuf, PathBuf) {
    (tool("gcc", "gcc"), tool("objcopy", "binutils"))
}

#[test]
fn x86_64_freestanding_static() {
    let dir = tempfile::tempdir().unwrap();
    let (gcc, objcopy) = host_tools();
    let src = write(dir.path(), "kernel.c", KERNEL_C);
    run(
        &gcc,
        &[
            "-ffreestanding",
            "-nostdlib",
            "-static",
            "-O1",
            "-o",
            "free.elf",
            src.to_str().unwrap(),
        ],
        dir.path(),
    );
    let elf = dir.path().join("free.elf");
    assert_same_as_objcopy(&objcopy, &elf);
    assert_eq!(kernel_arch(&elf).unwrap(), Arch::X86_64);
}

#[test]
fn x86_64_static_glibc_program() {
    let dir = tempfile::tempdir().unwrap();
    let (gcc, objcopy) = host_tools();
    assert!(
        Path::new("/usr/lib/x86_64-linux-gnu/libc.a").is_file(),
        "static libc missing: run `apt-get install libc6-dev`"
    );
    let src = write(dir.path(), "hello.c", HELLO_C);
    run(
        &gcc,
        &["-static", "-O1", "-o", "hello.elf", src.to_str().unwrap()],
        dir.path(),
    );
    assert_same_as_objcopy(&objcopy, &dir.path().join("hello.elf"));
}

#[test]
fn x86_64_pie_and_relocatable_object() {
    let dir = tempfile::tempdir().unwrap();
    let (gcc, objcopy) = host_tools();
    let src = write(dir.path(), "hello.c", HELLO_C);
    run(
        &gcc,
        &[
            "-O1",
            "-pie",
            "-fPIE",
            "-o",
            "pie.elf",
            src.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_same_as_objcopy(&objcopy, &dir.path().join("pie.elf"));
    let kernel = write(dir.path(), "kernel.c", KERNEL_C);
    run(
        &gcc,
        &[
            "-ffreestanding",
            "-O1",
            "-c",
            "-o",
            "kernel.o",
            kernel.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_same_as_objcopy(&objcopy, &dir.path().join("kernel.o"));
}

#[test]
fn i386_elf32() {
    let dir = tempfile::tempdir().unwrap();
    let objcopy = host_tools().1;
    let (as_, ld) = (tool("as", "binutils"), tool("ld", "binutils"));
    let src = write(dir.path(), "start.S", I386_S);
    run(
        &as_,
        &["--32", "-o", "start.o", src.to_str().unwrap()],
        dir.path(),
    );
    run(
        &ld,
        &[
            "-m",
            "elf_i386",
            "-Ttext=0x100000",
            "-o",
            "i386.elf",
            "start.o",
        ],
        dir.path(),
    );
    let elf = dir.path().join("i386.elf");
    assert_same_as_objcopy(&objcopy, &elf);
    assert_eq!(kernel_arch(&elf).unwrap(), Arch::I386);
}

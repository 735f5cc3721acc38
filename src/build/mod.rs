//! Producing the kernel to boot: ELF inspection and ELF → flat binary (later: cargo builds).

pub mod elf;

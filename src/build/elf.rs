//! ELF inspection (which QEMU to run) and ELF → flat binary, byte-identical to
//! `objcopy -O binary`, done in-process so no `rust-objcopy` is needed.
//!
//! STUB: owned by the config helper; replaced by the real implementation.

use crate::arch::Arch;
use crate::error::Error;

/// The architecture an ELF image was built for, from its header.
pub fn elf_arch(bytes: &[u8]) -> Result<Arch, Error> {
    let _ = bytes;
    Err(Error::usage("ELF parsing not implemented yet"))
}

/// The flat binary `objcopy -O binary` would write for this ELF.
pub fn to_bin(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let _ = bytes;
    Err(Error::usage("ELF to binary not implemented yet"))
}

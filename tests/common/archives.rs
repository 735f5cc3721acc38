//! Test archives: axvisor-guest layout (`tar -czf … -C dir .`, members `./<file>`) and hostile
//! ones written header by header, since `tar::Builder` refuses to produce them.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

/// One member of a test archive.
pub enum Member<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Special(&'a str, EntryType),
    /// A regular file whose header claims `claimed` bytes, followed by `actual` bytes.
    Oversized(&'a str, u64, usize),
}

/// A gzipped tar of `members`, names written verbatim (no path checks).
pub fn tar_gz(members: &[Member<'_>]) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for m in members {
        let (name, kind, size, link, data): (&str, EntryType, u64, Option<&str>, Vec<u8>) = match m
        {
            Member::File(n, d) => (n, EntryType::Regular, d.len() as u64, None, d.to_vec()),
            Member::Dir(n) => (n, EntryType::Directory, 0, None, vec![]),
            Member::Symlink(n, t) => (n, EntryType::Symlink, 0, Some(t), vec![]),
            Member::Hardlink(n, t) => (n, EntryType::Link, 0, Some(t), vec![]),
            Member::Special(n, k) => (n, *k, 0, None, vec![]),
            Member::Oversized(n, claimed, actual) => {
                (n, EntryType::Regular, *claimed, None, vec![7; *actual])
            }
        };
        let mut h = Header::new_gnu();
        raw_name(&mut h, name);
        if let Some(link) = link {
            let field = &mut h.as_old_mut().linkname;
            field[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(if kind == EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_cksum();
        if let Member::Oversized(..) = m {
            // Header then a few bytes: the reader must refuse on the header alone.
            let inner = tar.get_mut();
            inner.write_all(h.as_bytes()).unwrap();
            inner.write_all(&data).unwrap();
            continue;
        }
        tar.append(&h, data.as_slice()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn raw_name(h: &mut Header, name: &str) {
    let field = &mut h.as_old_mut().name;
    field.fill(0);
    field[..name.len()].copy_from_slice(name.as_bytes());
}

/// An axvisor-guest style image: `./qemu-<arch>` and `./rootfs.img`.
pub fn guest_image(arch: &str, kernel: &[u8], rootfs: &[u8]) -> Vec<u8> {
    let kernel_name = format!("./qemu-{arch}");
    tar_gz(&[
        Member::Dir("./"),
        Member::File(&kernel_name, kernel),
        Member::File("./rootfs.img", rootfs),
    ])
}

/// Deterministic incompressible bytes (xorshift), so archives have realistic sizes.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A registry text with one `[[images]]` per (name, version, sha, url).
pub fn registry_text(entries: &[(&str, &str, &str, &str)]) -> String {
    entries
        .iter()
        .map(|(name, version, sha, url)| {
            format!(
                "[[images]]\nname = \"{name}\"\nversion = \"{version}\"\ndescription = \"test\"\n\
                 sha256 = \"{sha}\"\narch = \"aarch64\"\nurl = \"{url}\"\n\
                 released_at = \"2026-01-06T03:08:54Z\"\n\n"
            )
        })
        .collect()
}

/// The same archive as [`tar_gz`], xz-compressed instead (tgosimages' `.tar.xz`).
pub fn tar_xz(members: &[Member<'_>]) -> Vec<u8> {
    use std::io::Read;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(tar_gz(members).as_slice())
        .read_to_end(&mut tar)
        .unwrap();
    let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
    xz.write_all(&tar).unwrap();
    xz.finish().unwrap()
}

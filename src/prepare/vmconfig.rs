//! An AxVisor VM config (axvmconfig, axvisor.md §4) patched for one run with `toml_edit`, so
//! comments and layout survive: the replacement for the CI's `sed` on tracked files.
//!
//! `memory` configs get the image's files as host paths (the build embeds them); `fs` configs
//! keep their paths, which name files on the guest disk, and yield the files to inject there.

use std::path::{Path, PathBuf};

use toml_edit::{Document, DocumentMut, Item, value};

use crate::config::source::SourceText;
use crate::error::{Error, Location};
use crate::prepare::ImageFiles;

/// Where AxVisor takes a guest's images from at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageLocation {
    /// Compiled into the hypervisor from host paths at build time.
    Memory,
    /// Read from AxVisor's root filesystem (the first QEMU disk) at boot.
    Fs,
}

/// A file to copy onto the guest disk: `host` → `guest` (absolute in the guest filesystem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// The image's file.
    pub host: PathBuf,
    /// Its path on the guest disk, from `/`.
    pub guest: String,
}

/// The patched text of one VM config, what to inject for it, and what was changed.
#[derive(Debug, Clone)]
pub struct PatchedConfig {
    /// The whole config, comments and layout kept.
    pub text: String,
    /// Its `image_location`.
    pub location: ImageLocation,
    /// Files to put on the guest disk (`fs` only).
    pub injections: Vec<Injection>,
    /// One sentence per change.
    pub notes: Vec<String>,
    /// The host file of the guest's kernel, as the guest boots it: a memory config's
    /// `kernel_path` after the patch, an fs config's injected image kernel (its `kernel_path`
    /// names a file on the guest disk, never a host file). Its symbols name the guest's
    /// addresses when a boot fails, and `run --gdb` loads it.
    pub guest_kernel: Option<PathBuf>,
}

/// The `[kernel]` path keys, each with the image file that can fill it.
const PATH_KEYS: [(&str, ImagePart); 4] = [
    ("kernel_path", ImagePart::Kernel),
    ("bios_path", ImagePart::Bios),
    ("dtb_path", ImagePart::Dtb),
    ("ramdisk_path", ImagePart::Ramdisk),
];

#[derive(Debug, Clone, Copy)]
enum ImagePart {
    Kernel,
    Bios,
    Dtb,
    Ramdisk,
}

impl ImagePart {
    fn of(self, image: &ImageFiles) -> Option<&Path> {
        match self {
            ImagePart::Kernel => image.kernel.as_deref(),
            ImagePart::Bios => image.bios.as_deref(),
            ImagePart::Dtb => image.dtb.as_deref(),
            ImagePart::Ramdisk => image.ramdisk.as_deref(),
        }
    }
}

/// Patches the VM config at `path` (never written) for `image`.
pub fn patch(path: &Path, image: Option<&ImageFiles>) -> Result<PatchedConfig, Error> {
    let text = crate::config::source::read_input(path, "VM config")?;
    patch_text(path, &text, image)
}

/// Patches VM config text; `path` locates errors and anchors relative host paths.
pub fn patch_text(
    path: &Path,
    text: &str,
    image: Option<&ImageFiles>,
) -> Result<PatchedConfig, Error> {
    let source = SourceText::new(path, text.to_string());
    let spans = Document::parse(text).map_err(|e| {
        Error::config(format!("invalid TOML in VM config: {}", e.message().trim()))
            .at(source.location(e.span().map_or(0, |s| s.start)))
            .help("fix the TOML syntax at this position")
    })?;
    let kernel = spans
        .get("kernel")
        .and_then(Item::as_table)
        .ok_or_else(|| {
            Error::config("VM config has no [kernel] table")
                .at(source.location(0))
                .help("AxVisor VM configs need [base], [kernel] and [devices] tables")
        })?;
    let at = |item: &Item| source.location(item.span().map_or(0, |s| s.start));
    let location = image_location(kernel.get("image_location"), &source)?;
    let mut paths = Vec::new();
    for (key, part) in PATH_KEYS {
        match kernel.get(key) {
            Some(item) => match item.as_str() {
                Some(p) => paths.push((key, part, p.to_string(), at(item))),
                None => {
                    return Err(Error::config(format!(
                        "`{key}` must be a string, found {}",
                        item.type_name()
                    ))
                    .at(at(item))
                    .help(format!("write `{key} = \"path\"`")));
                }
            },
            None if key == "kernel_path" => {
                return Err(Error::config("[kernel] has no `kernel_path`")
                    .at(source.location(kernel.span().map_or(0, |s| s.start)))
                    .help("add `kernel_path = \"…\"` to [kernel]"));
            }
            None => {}
        }
    }
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| Error::config(format!("invalid TOML in VM config: {e}")))?;
    let name = file_name(path);
    let mut out = PatchedConfig {
        text: String::new(),
        location,
        injections: Vec::new(),
        notes: Vec::new(),
        guest_kernel: None,
    };
    match location {
        ImageLocation::Memory => {
            let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            let base = absolute.parent().unwrap_or(Path::new("/"));
            for (key, part, current, _) in &paths {
                let new = memory_path(&name, key, *part, current, image, base, &mut out.notes);
                if *key == "kernel_path" {
                    out.guest_kernel = Some(PathBuf::from(new.as_deref().unwrap_or(current)));
                }
                if let Some(new) = new {
                    set_keeping_decor(&mut doc["kernel"][key], &new);
                }
            }
            note_unused_parts(&name, &paths, image, &mut out.notes);
        }
        ImageLocation::Fs => {
            for (key, part, current, _) in &paths {
                let host = image.and_then(|i| part.of(i));
                if *key == "kernel_path" {
                    out.guest_kernel = host.map(Path::to_path_buf);
                }
                fs_injection(&name, key, current, host, &mut out);
            }
        }
    }
    out.text = doc.to_string();
    Ok(out)
}

fn image_location(item: Option<&Item>, source: &SourceText) -> Result<ImageLocation, Error> {
    let help = "set `image_location = \"memory\"` (images built into the hypervisor) or \"fs\" (read from its disk)";
    let Some(item) = item else {
        return Err(
            Error::config("[kernel] has no `image_location`; AxVisor panics without it")
                .at(source.location(0))
                .help(help),
        );
    };
    match item.as_str() {
        Some("memory") => Ok(ImageLocation::Memory),
        Some("fs") => Ok(ImageLocation::Fs),
        other => Err(Error::config(format!(
            "`image_location` must be \"memory\" or \"fs\", found {}",
            other.map_or_else(|| item.type_name().to_string(), |s| format!("\"{s}\""))
        ))
        .at(source.location(item.span().map_or(0, |s| s.start)))
        .help(help)),
    }
}

/// The new host path for one key of a memory config, if it changes (with a note).
fn memory_path(
    config: &str,
    key: &str,
    part: ImagePart,
    current: &str,
    image: Option<&ImageFiles>,
    base: &Path,
    notes: &mut Vec<String>,
) -> Option<String> {
    if let Some(file) = image.and_then(|i| part.of(i)) {
        let new = file.to_string_lossy().into_owned();
        notes.push(format!(
            "{config}: `{key}` set to the image's {} (was \"{current}\").",
            file.display()
        ));
        return Some(new);
    }
    let current_path = Path::new(current);
    let resolved = if current_path.is_relative() {
        base.join(current_path)
    } else {
        current_path.to_path_buf()
    };
    if !resolved.exists() {
        notes.push(format!(
            "{config}: `{key}` = \"{current}\" does not exist and the image has no file for it; the build will fail to embed it."
        ));
    }
    if current_path.is_relative() {
        let new = resolved.to_string_lossy().into_owned();
        notes.push(format!(
            "{config}: relative `{key}` made absolute ({new}) because the copy lives in the work dir."
        ));
        return Some(new);
    }
    None
}

/// Notes image files a memory config has no key for: they are deliberately not added.
fn note_unused_parts(
    config: &str,
    paths: &[(&str, ImagePart, String, Location)],
    image: Option<&ImageFiles>,
    notes: &mut Vec<String>,
) {
    let Some(image) = image else { return };
    for (key, part) in PATH_KEYS {
        let used = paths.iter().any(|(k, ..)| *k == key);
        if let (false, Some(file)) = (used, part.of(image)) {
            notes.push(format!(
                "{config}: the image has {} but the config sets no `{key}`, so it is not used.",
                file.display()
            ));
        }
    }
}

/// For an fs config: the image's file for `key` goes onto the disk at the config's path.
fn fs_injection(
    config: &str,
    key: &str,
    guest: &str,
    host: Option<&Path>,
    out: &mut PatchedConfig,
) {
    let guest = format!("/{}", guest.trim_start_matches('/'));
    match host {
        Some(host) => out.injections.push(Injection {
            host: host.to_path_buf(),
            guest,
        }),
        None if key == "kernel_path" => out.notes.push(format!(
            "{config}: image_location is \"fs\" and the image has no kernel, so {guest} must already be on the guest disk."
        )),
        None => {}
    }
}

/// Replaces a string value, keeping the comment and spacing around it.
fn set_keeping_decor(item: &mut Item, new: &str) {
    let decor = item.as_value().map(|v| v.decor().clone());
    *item = value(new);
    if let (Some(decor), Some(v)) = (decor, item.as_value_mut()) {
        *v.decor_mut() = decor;
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(kernel: Option<&str>, bios: Option<&str>) -> ImageFiles {
        ImageFiles {
            dir: PathBuf::from("/img"),
            kernel: kernel.map(PathBuf::from),
            bios: bios.map(PathBuf::from),
            dtb: None,
            ramdisk: None,
            rootfs: None,
        }
    }

    const CFG: &str = "[base]\nid = 1\n[kernel]\n# where\nimage_location = \"memory\"\nkernel_path = \"k.bin\" # trailing\n[devices]\n";

    #[test]
    fn memory_patch_keeps_comments_and_trailing_decor() {
        let img = image(Some("/img/qemu-x86_64"), Some("/img/axvm-bios.bin"));
        let p = patch_text(Path::new("/cfg/v.toml"), CFG, Some(&img)).unwrap();
        assert_eq!(p.text, CFG.replace("\"k.bin\"", "\"/img/qemu-x86_64\""));
        assert_eq!(p.location, ImageLocation::Memory);
        assert!(p.notes[0].contains("`kernel_path` set to the image's /img/qemu-x86_64"));
        assert!(p.notes[1].contains("sets no `bios_path`"), "{:?}", p.notes);
        assert_eq!(p.guest_kernel, Some(PathBuf::from("/img/qemu-x86_64")));
    }

    #[test]
    fn relative_paths_are_anchored_at_the_original_config() {
        let p = patch_text(Path::new("/cfg/v.toml"), CFG, None).unwrap();
        assert!(
            p.text.contains("kernel_path = \"/cfg/k.bin\" # trailing"),
            "{}",
            p.text
        );
        assert!(p.notes.iter().any(|n| n.contains("does not exist")));
        assert_eq!(p.guest_kernel, Some(PathBuf::from("/cfg/k.bin")));
    }

    #[test]
    fn fs_config_keeps_paths_and_lists_injections() {
        let text = CFG.replace("memory", "fs") + "";
        let text = text.replace(
            "kernel_path = \"k.bin\"",
            "kernel_path = \"boot/k.bin\"\nbios_path = \"/b.bin\"",
        );
        let img = image(Some("/img/k"), Some("/img/b"));
        let p = patch_text(Path::new("v.toml"), &text, Some(&img)).unwrap();
        assert_eq!(p.text, text);
        assert_eq!(
            p.injections,
            vec![
                Injection {
                    host: "/img/k".into(),
                    guest: "/boot/k.bin".into()
                },
                Injection {
                    host: "/img/b".into(),
                    guest: "/b.bin".into()
                },
            ]
        );
        assert_eq!(p.guest_kernel, Some(PathBuf::from("/img/k")));
    }

    /// An fs config's `kernel_path` names a file on the guest disk: never read as a host path
    /// (`/boot/…` would be the host's own kernel), whether or not the image has a kernel.
    #[test]
    fn an_fs_configs_guest_kernel_is_the_injected_file_never_its_guest_path() {
        let text = CFG
            .replace("memory", "fs")
            .replace("\"k.bin\"", "\"/boot/vmlinux\"");
        let p = patch_text(Path::new("/cfg/v.toml"), &text, None).unwrap();
        assert_eq!(p.guest_kernel, None);
        let img = image(Some("/img/k"), None);
        let p = patch_text(Path::new("/cfg/v.toml"), &text, Some(&img)).unwrap();
        assert_eq!(p.guest_kernel, Some(PathBuf::from("/img/k")));
    }

    #[test]
    fn bad_image_location_and_types_are_located() {
        let e = patch_text(
            Path::new("v.toml"),
            &CFG.replace("\"memory\"", "\"disk\""),
            None,
        )
        .unwrap_err();
        let at = e.location.clone().unwrap();
        assert_eq!((at.line, at.column), (5, 18));
        assert!(e.message.contains("\"disk\""), "{e}");
        let e = patch_text(Path::new("v.toml"), &CFG.replace("\"k.bin\"", "3"), None).unwrap_err();
        assert_eq!(e.location.unwrap().line, 6);
        let e = patch_text(
            Path::new("v.toml"),
            &CFG.replace("image_location = \"memory\"\n", ""),
            None,
        )
        .unwrap_err();
        assert!(e.message.contains("no `image_location`"));
        let e = patch_text(Path::new("v.toml"), "[base]\n", None).unwrap_err();
        assert!(e.message.contains("[kernel]"));
    }
}

//! Putting files onto a copy of the guest's root filesystem image without root privileges or
//! loop mounts: FAT in-process with `fatfs`, ext2/3/4 through e2fsprogs' `debugfs -w` (what
//! axvisor-guest's own scripts use). Whole-disk images only, as AxVisor's are.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;

use crate::error::Error;
use crate::prepare::vmconfig::Injection;

/// How long one `debugfs` run may take on a local image.
const DEBUGFS_DEADLINE: Duration = Duration::from_secs(120);

/// The filesystem of a whole-disk image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    /// FAT12/16/32 (boot sector signature and `FAT` type string).
    Fat,
    /// ext2, ext3 or ext4 (magic 0xEF53 at byte 1080).
    Ext,
}

/// Tells FAT from ext by their on-disk magic.
pub fn detect(image: &Path) -> Result<FsKind, Error> {
    let mut head = vec![0u8; 1082];
    let mut file = File::open(image).map_err(|e| Error::io(image, "open rootfs image", &e))?;
    let read = read_up_to(&mut file, &mut head).map_err(|e| Error::io(image, "read", &e))?;
    head.truncate(read);
    let at = |range: std::ops::Range<usize>| head.get(range).unwrap_or_default();
    if at(1080..1082) == [0x53, 0xef] {
        return Ok(FsKind::Ext);
    }
    if at(510..512) == [0x55, 0xaa] && (at(54..57) == b"FAT" || at(82..85) == b"FAT") {
        return Ok(FsKind::Fat);
    }
    Err(Error::infra(format!(
        "{} is neither a FAT nor an ext2/3/4 filesystem image (no FAT boot sector, no ext magic at byte 1080)",
        image.display()
    ))
    .help("files can only be injected into whole-disk FAT or ext4 images (no partition table), like axvisor-guest's rootfs.img"))
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Writes each injection into `image` (which must be a private copy), replacing files that
/// exist and creating missing directories; returns one note per file.
pub async fn inject(image: &Path, files: &[Injection]) -> Result<Vec<String>, Error> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let kind = detect(image)?;
    match kind {
        FsKind::Fat => inject_fat(image, files)?,
        FsKind::Ext => inject_ext(image, files).await?,
    }
    let name = if kind == FsKind::Fat { "FAT" } else { "ext4" };
    Ok(files
        .iter()
        .map(|f| {
            format!(
                "{} injected as {} into the {name} rootfs copy.",
                f.host.display(),
                f.guest
            )
        })
        .collect())
}

fn inject_fat(image: &Path, files: &[Injection]) -> Result<(), Error> {
    let fail = |what: &str, e: std::io::Error| {
        Error::infra(format!(
            "cannot {what} in the FAT image {}: {e}",
            image.display()
        ))
        .help("check that the image's rootfs.img is a valid FAT filesystem with enough free space")
    };
    // The per-run copy in the out dir: never through a symlink planted there.
    let disk = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(image)
        .map_err(|e| Error::io(image, "open", &e))?;
    let fs = fatfs::FileSystem::new(disk, fatfs::FsOptions::new()).map_err(|e| fail("mount", e))?;
    for file in files {
        let relative = file.guest.trim_start_matches('/');
        let (dirs, name) = relative.rsplit_once('/').unwrap_or(("", relative));
        let mut dir = fs.root_dir();
        for part in dirs.split('/').filter(|p| !p.is_empty()) {
            dir = dir
                .create_dir(part)
                .map_err(|e| fail(&format!("create directory {part}"), e))?;
        }
        let mut source =
            File::open(&file.host).map_err(|e| Error::io(&file.host, "read image file", &e))?;
        let mut target = dir
            .create_file(name)
            .map_err(|e| fail(&format!("create {}", file.guest), e))?;
        target
            .truncate()
            .and_then(|_| std::io::copy(&mut source, &mut target))
            .and_then(|_| target.flush())
            .map_err(|e| fail(&format!("write {}", file.guest), e))?;
    }
    fs.unmount().map_err(|e| fail("unmount", e))
}

async fn inject_ext(image: &Path, files: &[Injection]) -> Result<(), Error> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let debugfs = locate_debugfs(image, std::env::split_paths(&path))?;
    // First make room: parent directories (existing ones just fail) and no old file (a missing
    // one just fails). Their errors are expected, so they run in a batch of their own.
    let mut clear = String::new();
    let mut write = String::new();
    for file in files {
        let guest = quote(&file.guest)?;
        for dir in ancestors(&file.guest) {
            clear.push_str(&format!("mkdir {}\n", quote(&dir)?));
        }
        clear.push_str(&format!("rm {guest}\n"));
        let host = quote(&file.host.to_string_lossy())?;
        write.push_str(&format!("write {host} {guest}\n"));
    }
    debugfs_batch(&debugfs, image, &clear).await?;
    // debugfs exits 0 even when a command fails: its complaints on stderr are the errors.
    let out = debugfs_batch(&debugfs, image, &write).await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if let Some(line) = stderr.lines().find(|l| l.starts_with("write")) {
        return Err(Error::infra(format!(
            "debugfs could not write into {}: {}",
            image.display(),
            line.trim()
        ))
        .help(
            "check that the ext4 image has enough free space and inodes for the injected files",
        ));
    }
    for file in files {
        verify_ext(&debugfs, image, file).await?;
    }
    Ok(())
}

/// Runs a script of debugfs commands on `image`, writable.
async fn debugfs_batch(debugfs: &Path, image: &Path, script: &str) -> Result<Output, Error> {
    let dir = image.parent().unwrap_or(Path::new("."));
    let mut commands =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, "create a file in", &e))?;
    commands
        .write_all(script.as_bytes())
        .map_err(|e| Error::io(commands.path(), "write", &e))?;
    let mut cmd = Command::new(debugfs);
    cmd.arg("-w").arg("-f").arg(commands.path()).arg(image);
    run_bounded(&mut cmd, DEBUGFS_DEADLINE).await
}

/// Checks that the file landed with the right size.
async fn verify_ext(debugfs: &Path, image: &Path, file: &Injection) -> Result<(), Error> {
    let expected = std::fs::metadata(&file.host)
        .map_err(|e| Error::io(&file.host, "read image file", &e))?
        .len();
    let mut cmd = Command::new(debugfs);
    cmd.arg("-R")
        .arg(format!("stat {}", quote(&file.guest)?))
        .arg(image);
    let out = run_bounded(&mut cmd, DEBUGFS_DEADLINE).await?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let size = stdout
        .split("Size: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok());
    if size == Some(expected) {
        return Ok(());
    }
    Err(Error::infra(format!(
        "debugfs did not write {} into {}: {}",
        file.guest,
        image.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
    .help("check that the ext4 image has enough free space and inodes for the injected files"))
}

/// `/a/b/c` → `/a`, `/a/b`.
fn ancestors(guest: &str) -> Vec<String> {
    let parts: Vec<&str> = guest.split('/').filter(|p| !p.is_empty()).collect();
    (1..parts.len())
        .map(|n| format!("/{}", parts[..n].join("/")))
        .collect()
}

/// Double-quotes an argument for debugfs's command parser, which has no escapes.
fn quote(arg: &str) -> Result<String, Error> {
    if arg.contains(['"', '\n']) {
        return Err(Error::config(format!(
            "cannot pass the path {arg:?} to debugfs: it contains a double quote or newline"
        ))
        .help("rename the file or change the path in the VM config"));
    }
    Ok(format!("\"{arg}\""))
}

/// `debugfs` in `search` or the sbin directories (often missing from a user's `PATH`).
fn locate_debugfs(image: &Path, search: impl Iterator<Item = PathBuf>) -> Result<PathBuf, Error> {
    search
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("debugfs"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::infra(format!(
                "{} is an ext4 image and injecting files into it needs `debugfs` from e2fsprogs, which was not found",
                image.display()
            ))
            .help("install e2fsprogs (Debian/Ubuntu: `sudo apt-get install e2fsprogs`)")
        })
}

/// Runs `cmd` to completion; past `deadline` it is killed (and reaped by tokio).
async fn run_bounded(cmd: &mut Command, deadline: Duration) -> Result<Output, Error> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    cmd.env("DEBUGFS_PAGER", "__none__")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(deadline, cmd.output()).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(Error::infra(format!("cannot run {program}: {e}"))),
        Err(_) => Err(Error::infra(format!(
            "{program} did not finish within {} s",
            deadline.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_and_quotes() {
        assert_eq!(ancestors("/a/b/c.bin"), vec!["/a", "/a/b"]);
        assert!(ancestors("/k.bin").is_empty());
        assert_eq!(quote("/a b").unwrap(), "\"/a b\"");
        assert!(quote("/a\"b").is_err());
    }

    #[test]
    fn debugfs_is_found_in_sbin_even_off_path() {
        let found = locate_debugfs(Path::new("r.img"), std::iter::empty());
        // Where e2fsprogs is installed (it is here), sbin is searched even with an empty PATH;
        // elsewhere the error must name the package.
        match found {
            Ok(p) => assert!(p.ends_with("sbin/debugfs"), "{}", p.display()),
            Err(e) => assert!(e.help.unwrap().contains("e2fsprogs")),
        }
    }

    #[test]
    fn unknown_filesystems_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("rootfs.img");
        std::fs::write(&img, vec![0u8; 4096]).unwrap();
        let e = detect(&img).unwrap_err();
        assert!(e.message.contains("neither a FAT nor an ext2/3/4"), "{e}");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_file_that_does_not_fit_is_an_error_not_a_silent_skip() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("rootfs.img");
        let out = std::process::Command::new("/sbin/mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&img)
            .arg("1M")
            .output()
            .expect("e2fsprogs must be installed");
        assert!(out.status.success(), "{out:?}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![1u8; 4 << 20]).unwrap();
        let files = [Injection {
            host: big,
            guest: "/big.bin".into(),
        }];
        let e = inject(&img, &files).await.unwrap_err();
        assert!(e.message.contains("Could not allocate block"), "{e}");
    }
}

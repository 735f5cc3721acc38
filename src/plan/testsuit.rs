//! tgoskits' `test-suit/` tree as a suite: cases discovered and named as its `axbuild` runner
//! does (`scripts/axbuild/src/test/qemu/discovery.rs`), turned into ordinary suite cases.
//!
//! The layout is `test-suit/<os>/<group>/…`. Under a group, a directory holding
//! `build-<target>.toml` (or `build-<target>-<variant>.toml`, one wrapper per variant) is a
//! *build wrapper* named by its path from the group (`qemu`, `board-phytiumpi`) plus `-<variant>`
//! (`qemu-svm`); wrappers are not searched for further wrappers. A wrapper's own `qemu-<key>.toml`
//! files make a case named like the wrapper (`qemu-nimbos`); each directory below it with
//! `qemu-<key>.toml` files (and no `build-*.toml`) is a case named by its path from the wrapper
//! plus `-<variant>` (`smoke`, `smoke-svm`). The QEMU config a case uses for an architecture is
//! `qemu-<arch>.toml`, or `qemu-<arch>-<variant>.toml` under a variant wrapper. A group
//! directory that has build files is itself its one wrapper (StarryOS' `starryos/qemu`: its
//! tree has no group level). Directories named
//! `c`, `sh`, `python`, `rust` hold case assets and are not searched below (one with its own
//! `qemu-<key>.toml` is still a case, as axbuild's walk has it); `qemu-base-*.toml` are not cases.
//!
//! Our case name adds what axbuild keeps in its command line (os, group, arch), so one run can
//! hold every case: `<os>.<group>.<name>@<arch>` with `/` in the name written `.`
//! (`axvisor.normal.smoke-svm@x86_64`). `--test-case` matches axbuild's own names.
//!
//! The tree is read once ([`Tree::read`]) with symlinks followed, as axbuild's `read_dir` walk
//! does, within bounds: a link that leads back to a directory it is in (a loop) is an error
//! naming it, instead of a walk that never ends; so is a link whose target is outside the
//! workspace (the test-suit directory's parent: a checkout's link to `/` or `$HOME` would
//! otherwise be walked and its TOMLs read as cases) and a broken link (a case that silently
//! vanished); at most [`MAX_ENTRIES`] entries are read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::arch::Arch;
use crate::build::board::AXBUILD_TARGETS;
use crate::error::Error;
use crate::plan::inputs::CaseInputs;
use crate::plan::suite::Suite;
use crate::prepare::drives::ROOTFS_DIR;

/// The architectures axbuild tests, each with its target triple.
pub const ARCHS: [(Arch, &str); 4] = [
    (Arch::Aarch64, AXBUILD_TARGETS[0]),
    (Arch::Riscv64, AXBUILD_TARGETS[1]),
    (Arch::X86_64, AXBUILD_TARGETS[2]),
    (Arch::Loongarch64, AXBUILD_TARGETS[3]),
];

/// The os whose test-suit directory is axbuild's group root (`starry test qemu`): its
/// directories are build wrappers, not groups.
const STARRY_OS: &str = "starryos";

/// Default image registry of tgoskits' tests (rcore-os/tgosimages).
pub const TGOSIMAGES_REGISTRY: &str =
    "https://raw.githubusercontent.com/rcore-os/tgosimages/refs/heads/main/registry/default.toml";

/// One discovered case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestSuitCase {
    pub os: String,
    pub group: String,
    /// axbuild's case name (`smoke-svm`, `qemu-nimbos`).
    pub name: String,
    /// axbuild's `<wrapper>/<case>` (`qemu-svm/smoke-svm`).
    pub display_name: String,
    pub arch: Arch,
    pub target: &'static str,
    pub build_config: PathBuf,
    pub qemu_config: PathBuf,
    /// The build wrapper's variant (`svm`, `vmx`).
    pub variant: Option<String>,
}

impl TestSuitCase {
    /// Our case name: `<os>.<group>.<name>@<arch>`.
    pub fn id(&self) -> String {
        format!(
            "{}.{}.{}@{}",
            self.os,
            self.group,
            self.name.replace('/', "."),
            self.arch.name()
        )
    }

    /// axbuild's `--test-case` rule: the name or display name, or a path prefix of either.
    pub fn matches(&self, selected: &str) -> bool {
        [&self.name, &self.display_name].iter().any(|n| {
            n.as_str() == selected
                || n.strip_prefix(selected)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    }
}

/// What to keep (`--arch`, `--test-group`, `--test-case`); empty = everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub archs: Vec<Arch>,
    /// Group names (`normal`: that group of every os) or `<os>/<group>` (`axvisor/normal`:
    /// what `cargo xtask axvisor test qemu` runs by default).
    pub groups: Vec<String>,
    pub cases: Vec<String>,
}

/// Every case under `root` (the `test-suit` directory) that `filter` keeps, sorted by os, group,
/// arch, then axbuild's display name. A filter that keeps nothing is an error saying which part
/// of it: a `--test-group` the tree does not have (listing those it has), a `--test-case` that
/// names no case (listing the names) or none for the selected arch (naming the archs it has), an
/// `--arch` the selected groups have no case for.
pub fn discover(root: &Path, filter: &Filter) -> Result<Vec<TestSuitCase>, Error> {
    let tree = Tree::read(root)?;
    let mut groups = Vec::new();
    let mut all = Vec::new();
    for os in tree.subdirs(root) {
        for group in tree.subdirs(&os) {
            let group_name = file_name(&group);
            let qualified = format!("{}/{group_name}", file_name(&os));
            let kept = filter.groups.is_empty()
                || filter
                    .groups
                    .iter()
                    .any(|g| *g == group_name || *g == qualified);
            groups.push(qualified);
            if !kept {
                continue;
            }
            for (arch, target) in ARCHS {
                all.extend(group_cases(&tree, &group, &file_name(&os), arch, target));
            }
        }
    }
    for g in &filter.groups {
        unknown_group(root, g, &groups)?;
    }
    if all.is_empty() && filter.cases.is_empty() {
        let (what, help) = match filter.groups.is_empty() {
            true => (
                String::new(),
                "pass tgoskits' test-suit directory (test-suit/<os>/<group>/…/build-<target>.toml + qemu-<arch>.toml)",
            ),
            false => (
                format!(" in test group {}", filter.groups.join(", ")),
                "its directories are board tests or have no qemu-<arch>.toml; pick another --test-group",
            ),
        };
        return Err(Error::usage(format!(
            "no QEMU test cases found{what} under {}",
            root.display()
        ))
        .help(help));
    }
    let in_arch = |c: &TestSuitCase| filter.archs.is_empty() || filter.archs.contains(&c.arch);
    for c in &filter.cases {
        if all.iter().any(|case| in_arch(case) && case.matches(c)) {
            continue;
        }
        let elsewhere = arch_list(all.iter().filter(|case| case.matches(c)).map(|c| c.arch));
        if !elsewhere.is_empty() {
            return Err(Error::usage(format!(
                "test case '{c}' has no QEMU config for {}: it has one for {elsewhere}",
                arch_list(filter.archs.iter().copied()),
            ))
            .help("pick one of those archs with --arch, or leave --arch out"));
        }
        let mut names: Vec<&str> = all
            .iter()
            .filter(|case| in_arch(case))
            .map(|c| c.name.as_str())
            .collect();
        names.sort();
        names.dedup();
        let e = Error::usage(format!(
            "no test case '{c}' under {} for the selected arch/group; cases: {}",
            root.display(),
            match names.is_empty() {
                true => "none".to_string(),
                false => names.join(", "),
            }
        ));
        return Err(match crate::config::source::did_you_mean(c, &names) {
            Some(n) => e.help(format!("did you mean `{n}`?")),
            None => e.help("pass axbuild's case name (or <wrapper>/<case>) as listed"),
        });
    }
    let has = arch_list(all.iter().map(|c| c.arch));
    all.retain(|case| {
        in_arch(case) && (filter.cases.is_empty() || filter.cases.iter().any(|c| case.matches(c)))
    });
    if all.is_empty() {
        return Err(Error::usage(format!(
            "no QEMU test cases for {} under {}{}: its cases are for {has}",
            arch_list(filter.archs.iter().copied()),
            root.display(),
            match filter.groups.is_empty() {
                true => String::new(),
                false => format!(" in test group {}", filter.groups.join(", ")),
            }
        ))
        .help("pick one of those archs with --arch, or leave --arch out"));
    }
    Ok(all)
}

/// The architectures of `items`, once each, in [`ARCHS`] order: `x86_64, aarch64`.
fn arch_list(items: impl Iterator<Item = Arch>) -> String {
    let found: Vec<Arch> = items.collect();
    ARCHS
        .iter()
        .filter(|(a, _)| found.contains(a))
        .map(|(a, _)| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `--test-group` naming no group of the tree (bare or `<os>/<group>`) is an error listing
/// the groups there are.
fn unknown_group(root: &Path, wanted: &str, groups: &[String]) -> Result<(), Error> {
    let bare = |q: &String| q.split_once('/').map_or(q.clone(), |(_, g)| g.to_string());
    if groups.iter().any(|q| q == wanted || bare(q) == wanted) {
        return Ok(());
    }
    let mut names: Vec<&str> = groups.iter().map(String::as_str).collect();
    let bares: Vec<String> = groups.iter().map(bare).collect();
    names.extend(bares.iter().map(String::as_str));
    let e = Error::usage(format!(
        "no test group '{wanted}' under {}; groups: {}",
        root.display(),
        groups.join(", ")
    ));
    Err(match crate::config::source::did_you_mean(wanted, &names) {
        Some(n) => e.help(format!("did you mean `{n}`?")),
        None => e.help("pass a group as listed (`<os>/<group>`, or the bare group name)"),
    })
}

/// The cases as a suite: workspace = the directory holding `test-suit`, the package to build
/// as [`package_dir`] finds it, the rootfs a config names under
/// `${workspace}/tmp/axbuild/rootfs/` as an image from tgosimages, and `requires` ([`requires`]).
pub fn to_suite(root: &Path, cases: &[TestSuitCase]) -> Result<Suite, Error> {
    let mut out = Vec::new();
    for c in cases {
        let package_dir = package_dir(root, &c.build_config)?;
        let config = crate::config::QemuConfig::load(&c.qemu_config)?;
        let mut rootfs = rootfs_named(&config).into_iter();
        let (rootfs, extra_images) = (rootfs.next(), rootfs.collect::<Vec<_>>());
        let extension = kvm_extension(c, &config);
        out.push(CaseInputs {
            name: Some(c.id()),
            qemu_config: Some(c.qemu_config.clone()),
            build_config: Some(c.build_config.clone()),
            package_dir: Some(package_dir),
            arch: Some(c.arch),
            requires: requires(c, extension),
            image: rootfs.clone(),
            extra_images,
            registry: rootfs.map(|_| TGOSIMAGES_REGISTRY.to_string()),
            runner: Some(runner_for(extension)),
            ..Default::default()
        });
    }
    Ok(Suite {
        path: root.to_path_buf(),
        defaults: CaseInputs::default(),
        cases: out,
        warnings: Vec::new(),
    })
}

/// The x86 virtualization extension an x86_64 case runs AxVisor with under KVM: its build
/// variant's (`smoke-svm`, `smoke-vmx`); else, for an AxVisor case whose QEMU config asks for
/// `-accel kvm` without saying which (the uefi group's `qemu-nimbos`: `-accel kvm -cpu host`),
/// VT-x, because tgoskits' only job for it is "Test axvisor self-hosted x86_64(vmx) UEFI" on
/// its `[self-hosted, linux, intel, kvm]` runner (.github/workflows/ci.yml, commented out
/// there, as the case's generated VM config needs a script first).
fn kvm_extension(c: &TestSuitCase, config: &crate::config::QemuConfig) -> Option<&'static str> {
    match c.variant.as_deref() {
        Some("svm") => return Some("svm"),
        Some("vmx") => return Some("vmx"),
        _ => {}
    }
    let kvm = config.args.windows(2).any(|w| {
        w[0].value == "-accel" && w[1].value.split(',').next() == Some("kvm")
            || w[0].value == "-machine" && w[1].value.split(',').any(|o| o == "accel=kvm")
    }) || config.args.iter().any(|a| a.value == "-enable-kvm");
    (c.arch == Arch::X86_64 && c.os == "axvisor" && kvm).then_some("vmx")
}

/// What a case needs from the host. tgoskits runs the x86_64 svm/vmx cases (and the uefi
/// group's, see [`kvm_extension`]) with `-accel kvm` on KVM runners of that CPU vendor: KVM and
/// the extension. AxVisor is a hypervisor on every arch: the extension the requirement table
/// names for it (the H extension on riscv64, LVZ on loongarch64, EL2 on aarch64; see
/// `profile::hypervisor`).
fn requires(c: &TestSuitCase, extension: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(v) = extension {
        out.extend(["kvm".to_string(), v.to_string()]);
    }
    if c.os == "axvisor" {
        out.push("hypervisor".to_string());
    }
    out
}

/// The package a build file under `root` (the test-suit directory) builds: its wrapper's own
/// (`Cargo.toml` beside it, as ArceOS' test packages: axbuild's QEMU flows pass the case's
/// package as `--package`), else the one its `package` names (ArceOS' board builds, see
/// `build::axbuild::named_package_dir`), else its os's ([`os_package_dir`]).
pub fn package_dir(root: &Path, build_config: &Path) -> Result<PathBuf, Error> {
    let wrapper = build_config.parent().unwrap_or(root);
    if wrapper.join("Cargo.toml").is_file() {
        return Ok(wrapper.to_path_buf());
    }
    let workspace = workspace_of(root);
    let board = crate::build::board::BoardConfig::load(build_config)?;
    if let Some(dir) = crate::build::axbuild::named_package_dir(&board, &workspace)? {
        return Ok(dir);
    }
    let os = build_config
        .strip_prefix(root)
        .ok()
        .and_then(|rel| rel.components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(workspace.join(os_package_dir(&os)))
}

/// Where an os's kernel package is in the workspace: `os/<os>`, but StarryOS' `starryos`
/// package (axbuild's `STARRY_PACKAGE`, the kernel `starry test qemu` builds) is in
/// `os/StarryOS/starryos`.
fn os_package_dir(os: &str) -> PathBuf {
    match os {
        "starryos" => PathBuf::from("os/StarryOS/starryos"),
        _ => Path::new("os").join(os),
    }
}

/// The workspace a `test-suit` directory belongs to: its parent.
pub fn workspace_of(root: &Path) -> PathBuf {
    root.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `runs-on` for the matrix: tgoskits runs the x86_64 svm/vmx cases on its self-hosted KVM
/// runners of that CPU vendor (labels as in its ci.yml: `amd` for svm, `intel` for vmx),
/// everything else on GitHub's hosted runners.
fn runner_for(extension: Option<&str>) -> serde_json::Value {
    match extension {
        Some("svm") => serde_json::json!(["self-hosted", "linux", "amd", "kvm"]),
        Some("vmx") => serde_json::json!(["self-hosted", "linux", "intel", "kvm"]),
        _ => serde_json::json!("ubuntu-latest"),
    }
}

/// The rootfs files a QEMU config's `-drive file=${workspace}/tmp/axbuild/rootfs/<file>` name,
/// each once, in order: the case's image, then any further disk's (StarryOS' busybox).
fn rootfs_named(config: &crate::config::QemuConfig) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in &config.args {
        let Some(at) = a.value.find(ROOTFS_DIR) else {
            continue;
        };
        let rest = &a.value[at + ROOTFS_DIR.len()..];
        let file = rest.split(',').next().unwrap_or_default();
        if !file.is_empty() && !file.contains('/') && !out.iter().any(|f| f == file) {
            out.push(file.to_string());
        }
    }
    out
}

/// The cases of one group for one architecture.
fn group_cases(
    tree: &Tree,
    group: &Path,
    os: &str,
    arch: Arch,
    target: &'static str,
) -> Vec<TestSuitCase> {
    let mut wrappers = Vec::new();
    // StarryOS' group directory with build files is itself the one wrapper (`test-suit/
    // starryos/qemu/`: axbuild's `starry test qemu` walks `test-suit/starryos/` for wrappers,
    // so the os directory is its group root and `qemu` a wrapper named `qemu`). Not so for
    // the others: axbuild walks a group's entries, and ArceOS' `rust` and `c` groups, whose
    // build files sit at the group's root, run through flows of their own (one build per
    // feature, C apps), not as one case.
    let mut stack = match os == STARRY_OS && has_build_file(tree, group) {
        true => vec![group.to_path_buf()],
        false => tree.subdirs(group),
    };
    while let Some(dir) = stack.pop() {
        let builds = build_files(tree, &dir, target);
        if !builds.is_empty() {
            for (variant, path) in builds {
                let mut name = match dir == group {
                    true => file_name(group),
                    false => relative(group, &dir),
                };
                if let Some(v) = &variant {
                    name = format!("{name}-{v}");
                }
                wrappers.push((name, dir.clone(), path, variant));
            }
            continue;
        }
        if !is_asset_dir(&dir) {
            stack.extend(tree.subdirs(&dir));
        }
    }
    wrappers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut cases = Vec::new();
    for (wrapper_name, dir, build, variant) in wrappers {
        let key = match &variant {
            Some(v) => format!("{}-{v}", arch.name()),
            None => arch.name().to_string(),
        };
        let mut found = Vec::new();
        if let Some(p) = qemu_configs(tree, &dir).remove(&key) {
            found.push((wrapper_name.clone(), wrapper_name.clone(), p));
        }
        let mut stack = tree.subdirs(&dir);
        while let Some(sub) = stack.pop() {
            if has_build_file(tree, &sub) {
                continue;
            }
            // As axbuild's walk: a directory's own configs make it a case before the asset
            // rule (`c`, `sh`, …) stops the walk going below it.
            let mut configs = qemu_configs(tree, &sub);
            if configs.is_empty() {
                if !is_asset_dir(&sub) {
                    stack.extend(tree.subdirs(&sub));
                }
                continue;
            }
            if let Some(p) = configs.remove(&key) {
                let mut name = relative(&dir, &sub);
                if let Some(v) = &variant {
                    name = format!("{name}-{v}");
                }
                found.push((name.clone(), format!("{wrapper_name}/{name}"), p));
            }
        }
        for (name, display_name, qemu_config) in found {
            cases.push(TestSuitCase {
                os: os.to_string(),
                group: file_name(group),
                name,
                display_name,
                arch,
                target,
                build_config: build.clone(),
                qemu_config,
                variant: variant.clone(),
            });
        }
    }
    cases.sort_by(|a, b| a.display_name.cmp(&b.display_name));
    cases
}

/// `build-<target>.toml` (no variant) and `build-<target>-<variant>.toml` in `dir`, sorted.
fn build_files(tree: &Tree, dir: &Path, target: &str) -> Vec<(Option<String>, PathBuf)> {
    let mut out = Vec::new();
    for f in tree.files(dir) {
        let name = file_name(&f);
        let Some(rest) = name
            .strip_prefix("build-")
            .and_then(|r| r.strip_suffix(".toml"))
            .and_then(|r| r.strip_prefix(target))
        else {
            continue;
        };
        match rest.strip_prefix('-') {
            None if rest.is_empty() => out.push((None, f)),
            Some(v) if !v.is_empty() => out.push((Some(v.to_string()), f)),
            _ => {}
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    out
}

fn has_build_file(tree: &Tree, dir: &Path) -> bool {
    tree.files(dir).iter().any(|f| {
        let n = file_name(f);
        n.starts_with("build-") && n.ends_with(".toml")
    })
}

/// `qemu-<key>.toml` files of `dir` by key (not `qemu-base-*`).
fn qemu_configs(tree: &Tree, dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for f in tree.files(dir) {
        let name = file_name(&f);
        if let Some(key) = name
            .strip_prefix("qemu-")
            .and_then(|r| r.strip_suffix(".toml"))
            .filter(|k| !k.starts_with("base-") && !k.is_empty())
        {
            out.insert(key.to_string(), f);
        }
    }
    out
}

fn is_asset_dir(dir: &Path) -> bool {
    matches!(file_name(dir).as_str(), "c" | "sh" | "python" | "rust")
}

fn relative(root: &Path, dir: &Path) -> String {
    dir.strip_prefix(root)
        .unwrap_or(dir)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every `.toml` file in the tree under `root`, sorted (`check --test-suit` reads them all).
pub fn toml_files(root: &Path) -> Result<Vec<PathBuf>, Error> {
    let tree = Tree::read(root)?;
    let mut out: Vec<PathBuf> = tree
        .dirs
        .values()
        .flat_map(|l| &l.files)
        .filter(|f| f.extension().is_some_and(|e| e == "toml"))
        .cloned()
        .collect();
    out.sort();
    Ok(out)
}

/// Most directory entries a test-suit tree may have (tgoskits' has a few hundred): links that
/// fan out without looping cannot make the walk unbounded.
pub const MAX_ENTRIES: usize = 100_000;

/// One directory of the [`Tree`]: its subdirectories and files, by the paths they were reached
/// by (through links as written, so case names are the tree's own), sorted.
#[derive(Default)]
struct Listing {
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

/// The test-suit tree, read once with symlinks followed (see the module's rules).
struct Tree {
    dirs: BTreeMap<PathBuf, Listing>,
}

impl Tree {
    fn read(root: &Path) -> Result<Tree, Error> {
        let io = |e: &std::io::Error| Error::input_io(root, "test-suit directory", e);
        let workspace = std::fs::canonicalize(workspace_of(root)).map_err(|e| io(&e))?;
        let mut dirs: BTreeMap<PathBuf, Listing> = BTreeMap::new();
        let walk = walkdir::WalkDir::new(root)
            .follow_links(true)
            .sort_by_file_name();
        for (n, item) in walk.into_iter().enumerate() {
            if n >= MAX_ENTRIES {
                return Err(Error::usage(format!(
                    "the test-suit directory {} has more than {MAX_ENTRIES} entries",
                    root.display()
                ))
                .help("pass tgoskits' test-suit directory; check it for links that fan out"));
            }
            let entry = item.map_err(|e| walk_error(root, &workspace, &e))?;
            let path = entry.path().to_path_buf();
            if entry.path_is_symlink() {
                check_link(&path, &workspace)?;
            }
            if entry.file_type().is_dir() {
                dirs.entry(path.clone()).or_default();
            }
            if entry.depth() == 0 {
                continue;
            }
            let parent = path.parent().unwrap_or(root).to_path_buf();
            let listing = dirs.entry(parent).or_default();
            if entry.file_type().is_dir() {
                listing.dirs.push(path);
            } else if entry.file_type().is_file() {
                listing.files.push(path);
            }
        }
        Ok(Tree { dirs })
    }

    fn subdirs(&self, dir: &Path) -> Vec<PathBuf> {
        self.dirs
            .get(dir)
            .map(|l| l.dirs.clone())
            .unwrap_or_default()
    }

    fn files(&self, dir: &Path) -> Vec<PathBuf> {
        self.dirs
            .get(dir)
            .map(|l| l.files.clone())
            .unwrap_or_default()
    }
}

/// A link in the tree must resolve, and to a place inside the workspace.
fn check_link(link: &Path, workspace: &Path) -> Result<(), Error> {
    let target = std::fs::read_link(link).unwrap_or_default();
    let resolved = std::fs::canonicalize(link).map_err(|e| {
        Error::usage(format!(
            "the test-suit link {} -> {} cannot be followed: {e}",
            link.display(),
            target.display()
        ))
        .help("fix or remove the broken link")
    })?;
    if resolved.starts_with(workspace) {
        return Ok(());
    }
    Err(Error::usage(format!(
        "the test-suit link {} -> {} leads out of the workspace {} (to {}); it is not followed",
        link.display(),
        target.display(),
        workspace.display(),
        resolved.display()
    ))
    .help("link only to files and directories inside the workspace, or copy them into the tree"))
}

/// A walk error: a link's own error when a link failed (broken, or out of the workspace, which
/// walkdir may see as a loop: `/` is everyone's ancestor), else a loop names the link and the
/// directory it leads back to.
fn walk_error(root: &Path, workspace: &Path, e: &walkdir::Error) -> Error {
    let at = e.path().unwrap_or(root);
    let is_link = std::fs::symlink_metadata(at).is_ok_and(|m| m.file_type().is_symlink());
    if is_link && let Err(link) = check_link(at, workspace) {
        return link;
    }
    if let Some(ancestor) = e.loop_ancestor() {
        let target = std::fs::read_link(at).unwrap_or_default();
        return Error::usage(format!(
            "the test-suit link {} -> {} leads back to {}, a directory it is in: a loop",
            at.display(),
            target.display(),
            ancestor.display()
        ))
        .help("remove the link, or point it at a directory outside its own ancestors");
    }
    let io = e.io_error().map_or_else(
        || std::io::Error::other(e.to_string()),
        |io| std::io::Error::new(io.kind(), io.to_string()),
    );
    Error::input_io(at, "test-suit directory", &io)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every case under `root`, and each one's display name and id.
    fn discovered(root: &Path) -> (Vec<TestSuitCase>, Vec<(String, String)>) {
        let cases = discover(root, &Filter::default()).unwrap();
        let names = cases
            .iter()
            .map(|c| (c.display_name.clone(), c.id()))
            .collect();
        (cases, names)
    }

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for f in files {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        d
    }

    /// Links inside the workspace are followed (a case reached through one is named by the
    /// link's path); a loop, a link out of the workspace and a broken link are errors naming the
    /// link, each found at once (no endless walk).
    #[test]
    fn symlinks_are_followed_within_the_workspace_and_loops_end() {
        use std::os::unix::fs::symlink;
        let ws = tempfile::tempdir().unwrap();
        let root = ws.path().join("test-suit");
        for f in [
            "os/g/w/build-x86_64-unknown-none.toml",
            "os/g/w/smoke/qemu-x86_64.toml",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        let shared = ws.path().join("shared/extra");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(shared.join("qemu-x86_64.toml"), "").unwrap();
        symlink(&shared, root.join("os/g/w/linked")).unwrap();
        let names: Vec<String> = discover(&root, &Filter::default())
            .unwrap()
            .iter()
            .map(|c| c.display_name.clone())
            .collect();
        assert_eq!(names, ["w/linked", "w/smoke"]);
        assert!(
            toml_files(&root)
                .unwrap()
                .contains(&root.join("os/g/w/linked/qemu-x86_64.toml"))
        );

        let lp = root.join("os/g/w/smoke/loop");
        symlink("../..", &lp).unwrap();
        let started = std::time::Instant::now();
        for e in [
            discover(&root, &Filter::default()).unwrap_err(),
            toml_files(&root).unwrap_err(),
        ] {
            assert!(
                e.message.starts_with(&format!(
                    "the test-suit link {} -> ../.. leads back to",
                    lp.display()
                )) && e.message.ends_with("a directory it is in: a loop"),
                "{e}"
            );
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        std::fs::remove_file(&lp).unwrap();

        let out = tempfile::tempdir().unwrap();
        let link = root.join("os/g/w/outside");
        symlink(out.path(), &link).unwrap();
        let e = discover(&root, &Filter::default()).unwrap_err();
        assert!(
            e.message
                .contains(&format!("the test-suit link {} -> ", link.display()))
                && e.message.contains("leads out of the workspace"),
            "{e}"
        );
        std::fs::remove_file(&link).unwrap();

        let broken = root.join("os/g/w/smoke/qemu-aarch64.toml");
        symlink("nowhere.toml", &broken).unwrap();
        let e = discover(&root, &Filter::default()).unwrap_err();
        assert!(e.message.contains(&broken.display().to_string()), "{e}");
    }

    /// Only StarryOS' directories are their own wrappers: ArceOS' `rust` group, with its build
    /// files and QEMU configs at the group's root, is no case (axbuild runs it through its own
    /// flow), its `axtest` group's cases are found below it as ever.
    #[test]
    fn only_starryos_group_directories_are_their_own_wrappers() {
        let d = tree(&[
            "arceos/rust/build-x86_64-unknown-none.toml",
            "arceos/rust/qemu-x86_64.toml",
            "arceos/axtest/smoke/build-x86_64-unknown-none.toml",
            "arceos/axtest/smoke/qemu-x86_64.toml",
            "starryos/qemu/build-x86_64-unknown-none.toml",
            "starryos/qemu/system/qemu-x86_64.toml",
        ]);
        let ids: Vec<String> = discover(d.path(), &Filter::default())
            .unwrap()
            .iter()
            .map(TestSuitCase::id)
            .collect();
        assert_eq!(
            ids,
            ["arceos.axtest.smoke@x86_64", "starryos.qemu.system@x86_64"]
        );
    }

    /// A filter that keeps nothing says which part of it: a group the tree lacks (with the
    /// groups and a did-you-mean), a case that is not there (with the names, a did-you-mean) or
    /// is there for other archs only, an arch the selected groups have no case for.
    #[test]
    fn a_filter_that_keeps_nothing_says_which_part() {
        let d = tree(&[
            "os/g/w/build-x86_64-unknown-none-svm.toml",
            "os/g/w/smoke/qemu-x86_64-svm.toml",
            "os/h/r/build-aarch64-unknown-none-softfloat.toml",
            "os/h/r/qemu-aarch64.toml",
        ]);
        let root = d.path().display().to_string();
        let err = |groups: &[&str], archs: &[Arch], cases: &[&str]| {
            let f = Filter {
                archs: archs.to_vec(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                cases: cases.iter().map(|c| c.to_string()).collect(),
            };
            let e = discover(d.path(), &f).unwrap_err();
            (e.message.clone(), e.help.clone().unwrap_or_default())
        };
        assert_eq!(
            err(&["gg"], &[], &[]),
            (
                format!("no test group 'gg' under {root}; groups: os/g, os/h"),
                "did you mean `g`?".to_string()
            )
        );
        assert_eq!(
            err(&["os/g"], &[Arch::Aarch64], &[]).0,
            format!(
                "no QEMU test cases for aarch64 under {root} in test group os/g: its cases are \
                 for x86_64"
            )
        );
        assert_eq!(
            err(&[], &[Arch::Aarch64], &["smoke-svm"]).0,
            "test case 'smoke-svm' has no QEMU config for aarch64: it has one for x86_64"
        );
        assert_eq!(err(&[], &[], &["smoke-svn"]).1, "did you mean `smoke-svm`?");
        assert_eq!(
            err(&["os/h"], &[], &["smoke-svm"]).0,
            format!("no test case 'smoke-svm' under {root} for the selected arch/group; cases: r")
        );
        assert!(
            err(&["os/g"], &[Arch::Riscv64], &["r"])
                .0
                .ends_with("for the selected arch/group; cases: none")
        );
    }

    /// axbuild's walk below a wrapper asks a directory for its `qemu-*.toml` before it applies
    /// the asset rule: `sh/qemu-x86_64.toml` is a case named `sh`, but nothing below an asset
    /// directory is searched.
    #[test]
    fn an_asset_directory_with_its_own_configs_is_a_case_but_is_not_searched() {
        let d = tree(&[
            "os/g/w/build-x86_64-unknown-none.toml",
            "os/g/w/sh/qemu-x86_64.toml",
            "os/g/w/c/inner/qemu-x86_64.toml",
            "os/g/w/python/README.md",
        ]);
        let names: Vec<String> = discover(d.path(), &Filter::default())
            .unwrap()
            .iter()
            .map(|c| c.display_name.clone())
            .collect();
        assert_eq!(names, ["w/sh"]);
    }

    /// StarryOS' layout: `test-suit/starryos/<wrapper>/build-<target>.toml` with no group level
    /// between (axbuild's `starry test qemu` walks `test-suit/starryos/`): each such directory is
    /// a group that is its own wrapper, so `qemu/system` and `qemu-rga/system` stay apart.
    #[test]
    fn a_group_with_build_files_is_its_own_wrapper() {
        let d = tree(&[
            "starryos/qemu/build-aarch64-unknown-none-softfloat.toml",
            "starryos/qemu/build-x86_64-unknown-none.toml",
            "starryos/qemu/system/qemu-aarch64.toml",
            "starryos/qemu/system/qemu-x86_64.toml",
            "starryos/qemu/system/c/qemu-aarch64.toml",
            "starryos/qemu-rga/build-aarch64-unknown-none-softfloat.toml",
            "starryos/qemu-rga/system/qemu-aarch64.toml",
            "starryos/board-x/build-aarch64-unknown-none-softfloat.toml",
            "starryos/board-x/boot/board-x.toml",
        ]);
        let (cases, names) = discovered(d.path());
        assert_eq!(
            names,
            [
                (
                    "qemu/system".to_string(),
                    "starryos.qemu.system@aarch64".to_string()
                ),
                ("qemu/system".into(), "starryos.qemu.system@x86_64".into()),
                (
                    "qemu-rga/system".into(),
                    "starryos.qemu-rga.system@aarch64".into()
                ),
            ]
        );
        assert!(
            cases[0]
                .build_config
                .ends_with("starryos/qemu/build-aarch64-unknown-none-softfloat.toml")
        );
        let f = Filter {
            cases: vec!["qemu/system".into()],
            archs: vec![Arch::Aarch64],
            ..Default::default()
        };
        assert_eq!(discover(d.path(), &f).unwrap().len(), 1);
    }

    #[test]
    fn wrappers_variants_root_cases_and_assets() {
        let d = tree(&[
            "os/g/w/build-x86_64-unknown-none-svm.toml",
            "os/g/w/build-x86_64-unknown-none-vmx.toml",
            "os/g/w/smoke/qemu-x86_64-svm.toml",
            "os/g/w/smoke/qemu-x86_64-vmx.toml",
            "os/g/w/smoke/qemu-base-x86_64.toml",
            "os/g/w/sh/below/qemu-x86_64-svm.toml",
            "os/g/r/build-x86_64-unknown-none.toml",
            "os/g/r/qemu-x86_64.toml",
            "os/g/r/deep/er/qemu-x86_64.toml",
            "os/g/r/nested/build-x86_64-unknown-none.toml",
            "os/g/r/nested/qemu-x86_64.toml",
        ]);
        let (cases, names) = discovered(d.path());
        assert_eq!(
            names,
            [
                ("r".to_string(), "os.g.r@x86_64".to_string()),
                ("r/deep/er".into(), "os.g.deep.er@x86_64".into()),
                ("w-svm/smoke-svm".into(), "os.g.smoke-svm@x86_64".into()),
                ("w-vmx/smoke-vmx".into(), "os.g.smoke-vmx@x86_64".into()),
            ]
        );
        assert!(cases[2].qemu_config.ends_with("smoke/qemu-x86_64-svm.toml"));
        let f = Filter {
            cases: vec!["w-svm".into()],
            ..Default::default()
        };
        assert_eq!(discover(d.path(), &f).unwrap().len(), 1);
        let f = Filter {
            cases: vec!["nope".into()],
            ..Default::default()
        };
        let e = discover(d.path(), &f).unwrap_err();
        assert!(e.message.starts_with("no test case 'nope'"), "{e}");
        assert!(
            e.message
                .ends_with("cases: deep/er, r, smoke-svm, smoke-vmx"),
            "{e}"
        );
        // A group named with its os: only that os's group.
        let other = d.path().join("os2/g/w/build-x86_64-unknown-none.toml");
        std::fs::create_dir_all(other.parent().unwrap()).unwrap();
        std::fs::write(&other, "").unwrap();
        std::fs::write(other.with_file_name("qemu-x86_64.toml"), "").unwrap();
        let ids = |groups: &[&str]| -> Vec<String> {
            let f = Filter {
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ..Default::default()
            };
            discover(d.path(), &f)
                .unwrap()
                .iter()
                .map(TestSuitCase::id)
                .collect()
        };
        assert_eq!(ids(&["g"]).len(), 5);
        assert_eq!(ids(&["os2/g"]), ["os2.g.w@x86_64"]);
        assert_eq!(ids(&["os/g"]).len(), 4);
    }
}

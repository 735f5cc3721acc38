//! The structure's two rules (docs/architecture.md): no module imports one from a higher layer,
//! and no files import each other in a loop; and the rule of one environment reader: only the
//! listed files read `std::env`, and only `environment.rs`, `cmd/inputs.rs` and `cli.rs`'s flags
//! name the runner's variables (`"GITHUB_…"`, `"RUNNER_…"`, `"INPUT_…"`, `"ACTIONS_…"`).
//!
//! Every `crate::…`, `super::…`, `self::…` and child-module path in `src/` (in `use` trees, code,
//! and macro arguments alike) is read from the file's tokens (proc-macro2's tokenizer, so comments
//! and strings never count), resolved to the file that defines the module it names (following
//! `pub use` re-exports), and checked:
//! - each top-level module sits on a layer of [`LAYERS`]; an import may go down or sideways
//!   within a layer, never up;
//! - the file graph has no cycle. A module's `mod.rs` (or `foo.rs` beside `foo/`) owns its
//!   children: its arrows to them are not counted (children may use their parent's items).
//!
//! Hand-written rather than a crate: the tools that draw module graphs (cargo-modules) are
//! binaries that need a full compiler front end; this reads ~130 files in a few milliseconds.

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest layer first. A module may import modules of its own layer or lower ones.
const LAYERS: &[&[&str]] = &[
    // ground: facts every layer uses
    &["error", "arch", "duration", "shell", "magic", "environment"],
    // the user's files and the outside world's protocols
    &["config", "http"],
    // parts: each does one thing with one kind of input
    &["console", "qemu", "image", "board", "postmortem"],
    // the host, and the stages that ready a case's files
    &["host", "prepare", "build"],
    &["profile"],
    // inputs → cases
    &["plan"],
    &["verdict"],
    &["report"],
    // sequencing: one case through the stages, all cases through the reporters
    &["run"],
    &["check"],
    // the command line as clap types
    &["cli"],
    // commands: translate a request, call the library, print
    &["cmd"],
];

/// Imports known to break a rule while they are being fixed, each by name (empty since the
/// command layer left `cli`, issue #17). The tests fail on any other breach, and on an entry
/// here that no longer exists (delete it then).
const LEFT: &[(&str, &str)] = &[];

fn left(from: &[String], to: &[String]) -> bool {
    LEFT.iter().any(|(a, b)| name(from) == *a && name(to) == *b)
}

#[derive(Default)]
struct Module {
    file: PathBuf,
    /// `pub use` re-exports: name → absolute path of what it names.
    reexports: BTreeMap<String, Vec<String>>,
    /// Absolute paths this module's file uses, with the module (inline ones included) that uses them.
    uses: Vec<Vec<String>>,
}

fn module_path(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    match stem {
        "lib" if parts.is_empty() => {}
        "main" if parts.is_empty() => return None, // the binary: a crate of its own
        "mod" => {}
        // `#[path = "x_tests.rs"] mod tests;` inside x.rs
        s if s.ends_with("_tests") => {
            parts.push(s.trim_end_matches("_tests").to_string());
            parts.push("tests".into());
        }
        s => parts.push(s.to_string()),
    }
    Some(parts)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

struct Scan<'a> {
    modules: &'a BTreeSet<Vec<String>>,
    uses: Vec<Vec<String>>,
    reexports: BTreeMap<String, Vec<String>>,
}

fn ident(t: &TokenTree) -> Option<String> {
    match t {
        TokenTree::Ident(i) => Some(i.to_string()),
        _ => None,
    }
}

fn is_punct(t: Option<&TokenTree>, c: char) -> bool {
    matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == c)
}

fn is_path_sep(tokens: &[TokenTree], i: usize) -> bool {
    is_punct(tokens.get(i), ':') && is_punct(tokens.get(i + 1), ':')
}

impl Scan<'_> {
    /// Turns the first segments of a path written in module `here` into an absolute one.
    fn absolute(&self, here: &[String], first: &str) -> Option<Vec<String>> {
        match first {
            "crate" => Some(Vec::new()),
            "self" => Some(here.to_vec()),
            "super" => Some(here[..here.len().saturating_sub(1)].to_vec()),
            child => {
                let mut p = here.to_vec();
                p.push(child.to_string());
                self.modules.contains(&p).then_some(p)
            }
        }
    }

    /// Reads a path (or a `use` tree) starting at `tokens[i]` with `prefix` already resolved;
    /// returns the index after it.
    fn path(
        &mut self,
        tokens: &[TokenTree],
        mut i: usize,
        mut prefix: Vec<String>,
        is_use: bool,
        public: bool,
    ) -> usize {
        loop {
            match tokens.get(i) {
                Some(TokenTree::Ident(id)) => {
                    let name = id.to_string();
                    if name == "super" {
                        prefix.pop();
                    } else if name != "self" {
                        prefix.push(name);
                    }
                    i += 1;
                    if is_path_sep(tokens, i) {
                        i += 2;
                        continue;
                    }
                    if is_use && tokens.get(i).and_then(ident).as_deref() == Some("as") {
                        let alias = tokens.get(i + 1).and_then(ident);
                        if public && let Some(a) = alias {
                            self.reexports.insert(a, prefix.clone());
                        }
                        i += 2;
                    } else if is_use
                        && public
                        && let Some(last) = prefix.last()
                    {
                        self.reexports.insert(last.clone(), prefix.clone());
                    }
                    self.uses.push(prefix);
                    return i;
                }
                Some(TokenTree::Group(g)) if is_use && g.delimiter() == Delimiter::Brace => {
                    let inner: Vec<TokenTree> = g.stream().into_iter().collect();
                    let mut j = 0;
                    while j < inner.len() {
                        if is_punct(inner.get(j), ',') {
                            j += 1;
                            continue;
                        }
                        j = self.path(&inner, j, prefix.clone(), true, public);
                    }
                    return i + 1;
                }
                Some(TokenTree::Punct(p)) if p.as_char() == '*' => {
                    self.uses.push(prefix);
                    return i + 1;
                }
                _ => {
                    self.uses.push(prefix);
                    return i;
                }
            }
        }
    }

    fn tokens(&mut self, here: &[String], stream: TokenStream) {
        let tokens: Vec<TokenTree> = stream.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            // `mod name { … }`: an inline module
            if ident(&tokens[i]).as_deref() == Some("mod")
                && let (Some(name), Some(TokenTree::Group(g))) =
                    (tokens.get(i + 1).and_then(ident), tokens.get(i + 2))
                && g.delimiter() == Delimiter::Brace
            {
                let mut inner = here.to_vec();
                inner.push(name);
                self.tokens(&inner, g.stream());
                i += 3;
                continue;
            }
            if ident(&tokens[i]).as_deref() == Some("use") {
                let public = i > 0
                    && (ident(&tokens[i - 1]).as_deref() == Some("pub")
                        || (i > 1
                            && matches!(&tokens[i - 1], TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis)
                            && ident(&tokens[i - 2]).as_deref() == Some("pub")));
                // `use ::x` / `use std::…` / `use crate::…` / `use child::…`
                if let Some(first) = tokens.get(i + 1).and_then(ident)
                    && let Some(prefix) = self.absolute(here, &first)
                {
                    let start = if first == "crate" || first == "self" || first == "super" {
                        // the resolver already took the first segment
                        if is_path_sep(&tokens, i + 2) {
                            i + 4
                        } else {
                            i + 2
                        }
                    } else {
                        i + 1
                    };
                    let prefix = if first != "crate" && first != "self" && first != "super" {
                        here.to_vec()
                    } else {
                        prefix
                    };
                    i = self.path(&tokens, start, prefix, true, public);
                    continue;
                }
                i += 1;
                continue;
            }
            match &tokens[i] {
                TokenTree::Ident(id) if is_path_sep(&tokens, i + 1) => {
                    let preceded_by_sep = i >= 2 && is_path_sep(&tokens, i - 2);
                    let first = id.to_string();
                    if !preceded_by_sep && let Some(prefix) = self.absolute(here, &first) {
                        let (start, prefix) =
                            if matches!(first.as_str(), "crate" | "self" | "super") {
                                (i + 3, prefix)
                            } else {
                                (i, here.to_vec())
                            };
                        i = self.path(&tokens, start, prefix, false, false);
                        continue;
                    }
                    i += 1;
                }
                TokenTree::Group(g) => {
                    self.tokens(here, g.stream());
                    i += 1;
                }
                // `#[serde(serialize_with = "crate::duration::serialize_secs")]`
                TokenTree::Literal(l) => {
                    let text = l.to_string();
                    if let Some(path) = text
                        .strip_prefix("\"crate::")
                        .and_then(|t| t.strip_suffix('"'))
                        && path.split("::").all(|s| {
                            !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
                        })
                    {
                        self.uses.push(path.split("::").map(String::from).collect());
                    }
                    i += 1;
                }
                _ => i += 1,
            }
        }
    }
}

/// The file's module that an absolute path lands in, following re-exports.
fn target(modules: &BTreeMap<Vec<String>, Module>, path: &[String]) -> Option<Vec<String>> {
    let mut path = path.to_vec();
    for _ in 0..8 {
        let n = (0..=path.len())
            .rev()
            .find(|&n| modules.contains_key(&path[..n]))?;
        let module = &modules[&path[..n]];
        match path.get(n).and_then(|name| module.reexports.get(name)) {
            Some(to) if n < path.len() => {
                let mut next = to.clone();
                next.extend_from_slice(&path[n + 1..]);
                if next == path {
                    return Some(path[..n].to_vec());
                }
                path = next;
            }
            _ => return Some(path[..n].to_vec()),
        }
    }
    None
}

fn layer(module: &[String]) -> Option<usize> {
    let top = module.first()?;
    LAYERS.iter().position(|l| l.contains(&top.as_str()))
}

fn name(m: &[String]) -> String {
    if m.is_empty() {
        "crate".into()
    } else {
        m.join("::")
    }
}

type Modules = BTreeMap<Vec<String>, Module>;
type Edges = BTreeSet<(Vec<String>, Vec<String>)>;

/// Edges between files: user file module → used file module (both as module paths).
fn graph() -> (Modules, Edges) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules: BTreeMap<Vec<String>, Module> = BTreeMap::new();
    for f in &files {
        if let Some(m) = module_path(&src, f) {
            modules.insert(
                m,
                Module {
                    file: f.clone(),
                    ..Module::default()
                },
            );
        }
    }
    let names: BTreeSet<Vec<String>> = modules.keys().cloned().collect();
    for (m, module) in modules.iter_mut() {
        let text = std::fs::read_to_string(&module.file).unwrap();
        let stream: TokenStream = text
            .parse()
            .unwrap_or_else(|e| panic!("{}: {e:?}", module.file.display()));
        let mut scan = Scan {
            modules: &names,
            uses: Vec::new(),
            reexports: BTreeMap::new(),
        };
        scan.tokens(m, stream);
        module.uses = scan.uses;
        module.reexports = scan.reexports;
    }
    let mut edges = BTreeSet::new();
    for (m, module) in &modules {
        for u in &module.uses {
            let Some(t) = target(&modules, u) else {
                continue;
            };
            // the file of the using module: inline `mod tests` belong to their file's module
            if &t != m && !t.is_empty() {
                edges.insert((m.clone(), t));
            }
        }
    }
    (modules, edges)
}

#[test]
fn every_top_level_module_has_a_layer() {
    let (modules, _) = graph();
    let missing: BTreeSet<String> = modules
        .keys()
        .filter(|m| !m.is_empty() && layer(m).is_none())
        .map(|m| m[0].clone())
        .collect();
    assert!(
        missing.is_empty(),
        "modules without a layer in tests/layers.rs LAYERS: {missing:?}"
    );
}

#[test]
fn no_import_runs_up_the_layers() {
    let (modules, edges) = graph();
    let mut up = Vec::new();
    for (from, to) in edges.iter().filter(|(a, b)| !left(a, b)) {
        if let (Some(a), Some(b)) = (layer(from), layer(to))
            && b > a
        {
            up.push(format!(
                "{} ({}) imports {} (layer {b} > {a})",
                name(from),
                modules[from].file.display(),
                name(to)
            ));
        }
    }
    assert!(
        up.is_empty(),
        "imports that run up the layers (see LAYERS and docs/architecture.md):\n{}",
        up.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_loop() {
    let (modules, edges) = graph();
    // a module owns its children: its arrows down to them are not counted
    let counted: BTreeSet<_> = edges
        .iter()
        .filter(|(from, to)| !to.starts_with(from) && !left(from, to))
        .cloned()
        .collect();
    let mut next: BTreeMap<&Vec<String>, Vec<&Vec<String>>> = BTreeMap::new();
    for (a, b) in &counted {
        next.entry(a).or_default().push(b);
    }
    // Tarjan's strongly connected components
    struct St<'a> {
        next: &'a BTreeMap<&'a Vec<String>, Vec<&'a Vec<String>>>,
        index: BTreeMap<&'a Vec<String>, usize>,
        low: BTreeMap<&'a Vec<String>, usize>,
        stack: Vec<&'a Vec<String>>,
        on: BTreeSet<&'a Vec<String>>,
        sccs: Vec<Vec<&'a Vec<String>>>,
    }
    fn visit<'a>(s: &mut St<'a>, v: &'a Vec<String>) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on.insert(v);
        for &w in s.next.get(v).map(|x| x.as_slice()).unwrap_or(&[]) {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                scc.push(w);
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                s.sccs.push(scc);
            }
        }
    }
    let mut st = St {
        next: &next,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        sccs: Vec::new(),
    };
    for m in modules.keys() {
        if !st.index.contains_key(m) {
            visit(&mut st, m);
        }
    }
    let loops: Vec<String> = st
        .sccs
        .iter()
        .map(|scc| {
            let set: BTreeSet<_> = scc.iter().copied().collect();
            let arrows: Vec<String> = counted
                .iter()
                .filter(|(a, b)| set.contains(a) && set.contains(b))
                .map(|(a, b)| format!("  {} -> {}", name(a), name(b)))
                .collect();
            arrows.join("\n")
        })
        .collect();
    assert!(
        loops.is_empty(),
        "files that import each other in a loop:\n{}",
        loops.join("\n\n")
    );
}

#[test]
fn every_import_left_to_fix_still_exists() {
    let (_, edges) = graph();
    let stale: Vec<_> = LEFT
        .iter()
        .filter(|(a, b)| !edges.iter().any(|(x, y)| name(x) == *a && name(y) == *b))
        .collect();
    assert!(
        stale.is_empty(),
        "gone, delete from LEFT in tests/layers.rs: {stale:?}"
    );
}

/// The reader itself sees each way an import is written: a `use` tree through `super::` and a
/// re-export, a path in code, a path inside a macro's arguments, a serde attribute's string.
#[test]
fn the_reader_sees_imports() {
    let (_, edges) = graph();
    let has = |a: &str, b: &str| edges.iter().any(|(x, y)| name(x) == a && name(y) == b);
    for (a, b) in [
        ("host::guest", "host::kvm_sys"),        // use super::kvm_sys::{…}
        ("verdict::decide", "console::matcher"), // use crate::console::{Decision, …} (re-export)
        ("config::field", "duration"),           // crate::duration::parse(…) in code
        ("console::script", "duration"),         // inside format!(…)
        ("report::model", "duration"),           // serialize_with = "crate::duration::…"
    ] {
        assert!(has(a, b), "the reader missed {a} -> {b}");
    }
}

/// The one reader of the environment is `environment.rs`: the runner's `GITHUB_*`/`RUNNER_*`
/// variables as a typed `Runner` the commands read once and pass down, the `INPUT_*` variables
/// for `cmd/inputs.rs` (through its `Lookup`), and the settings other tools define. The files
/// listed besides it read only the operating system's and the terminal's conventions; a new
/// `std::env::var…` anywhere else fails.
const ENV_READERS: &[(&str, &str)] = &[
    ("environment.rs", "the one reader"),
    (
        "qemu/command.rs",
        "PATH: where qemu-system-* is, as the shell would find it",
    ),
    ("prepare/rootfs.rs", "PATH: where the rootfs tools are"),
    (
        "host/probe.rs",
        "PATH: the probe lists what the process can run",
    ),
    (
        "image/progress.rs",
        "TERM: whether the terminal draws progress bars",
    ),
    ("report/terminal.rs", "NO_COLOR: the terminal's convention"),
];

/// Every `.rs` file under `src/`: its path relative to `src/` and its text.
fn sources() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
            (rel, std::fs::read_to_string(f).unwrap())
        })
        .collect()
}

fn parse(file: &str, text: &str) -> TokenStream {
    text.parse().unwrap_or_else(|e| panic!("{file}: {e:?}"))
}

#[test]
fn the_environment_is_read_in_known_places_only() {
    let mut readers = BTreeSet::new();
    for (file, text) in sources() {
        if reads_env(parse(&file, &text)) {
            readers.insert(file);
        }
    }
    let known: BTreeSet<String> = ENV_READERS.iter().map(|(f, _)| f.to_string()).collect();
    let new: Vec<_> = readers.difference(&known).collect();
    let gone: Vec<_> = known.difference(&readers).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "read the environment through environment.rs (or add the file to ENV_READERS with why): \
         new readers {new:?}; listed but no longer reading {gone:?}"
    );
}

/// `env::var`, `env::var_os` or `env::vars` anywhere in the tokens (comments and strings aside).
fn reads_env(stream: TokenStream) -> bool {
    let tokens: Vec<TokenTree> = stream.into_iter().collect();
    tokens.iter().enumerate().any(|(i, t)| match t {
        TokenTree::Group(g) => reads_env(g.stream()),
        TokenTree::Ident(id) if id == "env" => {
            is_path_sep(&tokens, i + 1)
                && tokens
                    .get(i + 3)
                    .and_then(ident)
                    .is_some_and(|n| matches!(n.as_str(), "var" | "var_os" | "vars" | "vars_os"))
        }
        _ => false,
    })
}

/// The reader of `std::env` sees a call in code, not the words in a string or a comment.
#[test]
fn the_env_reader_sees_a_planted_read() {
    let read = |text: &str| reads_env(parse("planted.rs", text));
    assert!(read(
        r#"fn sha() -> Option<String> { std::env::var("GITHUB_SHA").ok() }"#
    ));
    assert!(read(
        "use std::env; fn p() -> bool { env::var_os(\"PATH\").is_some() }"
    ));
    assert!(!read(
        r#"// std::env::var("X")
        fn f() -> &'static str { "std::env::var" }"#
    ));
}

/// The prefixes of the names the GitHub Actions runner gives a step's variables: its own
/// (`GITHUB_*`, `RUNNER_*`, `ACTIONS_*`) and the action's inputs (`INPUT_*`).
const RUNNER_PREFIXES: &[&str] = &["GITHUB_", "RUNNER_", "INPUT_", "ACTIONS_"];

/// A runner variable's name written as a string literal in `src/`.
struct RunnerName {
    file: String,
    /// The literal as written (`r"RUNNER_OS"`), to find its line.
    token: String,
    name: String,
    /// Written as `env = "…"`: the variable of a clap argument.
    env_attr: bool,
}

/// The only files that may write a runner variable's name, which names, and why. Every other
/// file takes what it needs from `environment::Runner`'s typed fields, or names an input by its
/// workflow name (`cmd::inputs::var_name("log-dir")`; `cmd::inputs::given` in tests).
#[allow(clippy::type_complexity)]
const RUNNER_NAME_WRITERS: &[(&str, fn(&RunnerName) -> bool, &str)] = &[
    (
        "environment.rs",
        |_| true,
        "the one reader: `Runner` reads the GITHUB_*/RUNNER_* variables once",
    ),
    (
        "cmd/inputs.rs",
        |_| true,
        "the one place the INPUT_* variables become flags",
    ),
    (
        "cli.rs",
        |n| n.env_attr && n.name.starts_with("INPUT_"),
        "`#[arg(env = \"INPUT_…\")]`: each action input is defined once, on its flag (issue \
         #10), and cmd/inputs.rs finds its variable there; nothing else in cli.rs",
    ),
];

/// The text between a string literal token's quotes (`"…"`, `r"…"`, `r#"…"#`, `b"…"`).
fn string_value(token: &str) -> Option<&str> {
    let t = token.strip_prefix('b').unwrap_or(token);
    let t = t.strip_prefix('r').map_or(t, |r| r.trim_matches('#'));
    t.strip_prefix('"')?.strip_suffix('"')
}

/// A runner variable's name, or the start of one: `GITHUB_SHA`, `INPUT_`, `INPUT_{}` (a format
/// string that builds one); not a sentence that mentions one.
fn is_runner_name(s: &str) -> bool {
    let mut depth = 0usize;
    RUNNER_PREFIXES.iter().any(|p| s.starts_with(p))
        && s.chars().all(|c| {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            // a format placeholder stands for the rest of the name
            depth > 0 || c == '}' || c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'
        })
}

fn runner_names(file: &str, stream: TokenStream, out: &mut Vec<RunnerName>) {
    let tokens: Vec<TokenTree> = stream.into_iter().collect();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            TokenTree::Group(g) => runner_names(file, g.stream(), out),
            TokenTree::Literal(l) => {
                let token = l.to_string();
                let Some(name) = string_value(&token).filter(|s| is_runner_name(s)) else {
                    continue;
                };
                let name = name.to_string();
                let env_attr = i >= 2
                    && is_punct(tokens.get(i - 1), '=')
                    && tokens.get(i - 2).and_then(ident).as_deref() == Some("env");
                out.push(RunnerName {
                    file: file.to_string(),
                    token,
                    name,
                    env_attr,
                });
            }
            _ => {}
        }
    }
}

/// The runner variable names written outside [`RUNNER_NAME_WRITERS`] (`file:line: "NAME"`), and
/// the writers' files that wrote one.
fn misplaced_runner_names(sources: &[(String, String)]) -> (Vec<String>, BTreeSet<&'static str>) {
    let mut misplaced = Vec::new();
    let mut used = BTreeSet::new();
    for (file, text) in sources {
        let mut names = Vec::new();
        runner_names(file, parse(file, text), &mut names);
        // The line of each: the next line holding the literal as written (the tokens carry no
        // lines without proc-macro2's `span-locations`, whose feature would rebuild every
        // crate that shares proc-macro2 with the macros).
        let mut after = 0;
        for n in &names {
            let line = text
                .lines()
                .enumerate()
                .skip(after)
                .find(|(_, l)| l.contains(&n.token))
                .map(|(i, _)| i + 1);
            if let Some(l) = line {
                after = l - 1;
            }
            match RUNNER_NAME_WRITERS
                .iter()
                .find(|(f, allows, _)| *f == n.file && allows(n))
            {
                Some((f, _, _)) => {
                    used.insert(*f);
                }
                None => misplaced.push(format!(
                    "{}:{}: \"{}\"",
                    n.file,
                    line.map_or("?".into(), |l| l.to_string()),
                    n.name
                )),
            }
        }
    }
    (misplaced, used)
}

/// The runner's variables are named in `environment.rs` (read into the typed `Runner`),
/// `cmd/inputs.rs` and `cli.rs`'s `env = "INPUT_…"` only: a `"GITHUB_SHA"` anywhere else
/// (`std::env::var("GITHUB_SHA")` in `report/`, a map of variables in a test) fails.
#[test]
fn the_runners_variables_are_named_in_known_places_only() {
    let (misplaced, used) = misplaced_runner_names(&sources());
    assert!(
        misplaced.is_empty(),
        "runner variables named outside environment.rs (use `Runner`'s fields) and \
         cmd/inputs.rs (inputs by their workflow name); or add the file to RUNNER_NAME_WRITERS \
         in tests/layers.rs with why:\n{}",
        misplaced.join("\n")
    );
    let stale: Vec<_> = RUNNER_NAME_WRITERS
        .iter()
        .map(|(f, _, _)| *f)
        .filter(|f| !used.contains(f))
        .collect();
    assert!(
        stale.is_empty(),
        "listed in RUNNER_NAME_WRITERS but naming no runner variable now (delete them): {stale:?}"
    );
}

/// The lint catches names planted in the real tree — a read in `report/`, a raw string, a name
/// built by a format string, a clap `env =` outside `cli.rs`, a name in `cli.rs` that is not a
/// flag's input — and passes over a sentence that mentions one.
#[test]
fn the_runner_name_lint_catches_planted_names() {
    let mut tree = sources();
    tree.push((
        "report/planted.rs".into(),
        r##"fn sha() -> Option<String> {
    std::env::var("GITHUB_SHA").ok()
}
fn os() -> Option<String> { crate::environment::process().get(r#"RUNNER_OS"#) }
fn input(name: &str) -> String { format!("INPUT_{}", name.to_uppercase()) }
fn message() -> &'static str { "GITHUB_SHA is not set" }
"##
        .into(),
    ));
    tree.push((
        "run/planted.rs".into(),
        "#[derive(clap::Args)] struct A { #[arg(env = \"INPUT_CASE\")] case: String }".into(),
    ));
    let cli = tree.iter_mut().find(|(f, _)| f == "cli.rs").unwrap();
    let cli_lines = cli.1.lines().count();
    cli.1
        .push_str("\nconst DEBUG: &str = \"ACTIONS_STEP_DEBUG\";\n");
    let (misplaced, _) = misplaced_runner_names(&tree);
    assert_eq!(
        misplaced,
        [
            format!("cli.rs:{}: \"ACTIONS_STEP_DEBUG\"", cli_lines + 2),
            "report/planted.rs:2: \"GITHUB_SHA\"".into(),
            "report/planted.rs:4: \"RUNNER_OS\"".into(),
            "report/planted.rs:5: \"INPUT_{}\"".into(),
            "run/planted.rs:1: \"INPUT_CASE\"".into(),
        ]
    );
}

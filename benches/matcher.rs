//! Console judge throughput on a realistic console: 100 MB of kernel-log-like lines (some with
//! ANSI colours and `\r\n`), fed in 4 KiB and 64 KiB reads, with patterns that match only on the
//! last line. Criterion prints the throughput (`thrpt`, decimal MB/s or GB/s) of each case.
//!
//! `20-patterns+grammar` adds three steps, three milestones and an extractor matching one line
//! in eight (past 10 000 kept cases it only counts): the whole console grammar active.
//!
//! Run: `cargo bench --bench matcher -- --warm-up-time 1 --measurement-time 3`
//!
//! Instruction counts, which a busy or shared host does not change: `--once CASE MB` runs one
//! case once on the first MB megabytes of the console, e.g. under valgrind:
//! `valgrind --tool=callgrind --toggle-collect='*matcher::run_once*' target/release/deps/matcher-… --once 20-patterns+grammar/64KiB-reads 10`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use qemu_test_action::Location;
use qemu_test_action::config::PatternSpec;
use qemu_test_action::config::grammar::{
    CaseStatus, ExtractSpec, GrammarSpec, MilestoneSpec, StepSpec,
};
use qemu_test_action::console::{Cleaner, Decision, Judge, JudgeOptions, Pattern, Script};

const CONSOLE_BYTES: usize = 100_000_000;

/// The benchmark cases: name (as criterion prints it after `judge/`), read size, patterns, and
/// whether the grammar is on.
const CASES: &[(&str, usize, Set, bool)] = &[
    ("5-patterns/4KiB-reads", 4 * 1024, Set::Five, false),
    ("5-patterns/64KiB-reads", 64 * 1024, Set::Five, false),
    ("20-patterns/4KiB-reads", 4 * 1024, Set::Twenty, false),
    ("20-patterns/64KiB-reads", 64 * 1024, Set::Twenty, false),
    (
        "20-patterns+grammar/4KiB-reads",
        4 * 1024,
        Set::Twenty,
        true,
    ),
    (
        "20-patterns+grammar/64KiB-reads",
        64 * 1024,
        Set::Twenty,
        true,
    ),
];

#[derive(Clone, Copy)]
enum Set {
    Five,
    Twenty,
}

impl Set {
    fn patterns(self) -> (Vec<Pattern>, Vec<Pattern>) {
        match self {
            Set::Five => (compile(SUCCESS_2, "success"), compile(FAIL_3, "fail")),
            Set::Twenty => (compile(SUCCESS_5, "success"), compile(FAIL_15, "fail")),
        }
    }
}

const FAIL_3: &[&str] = &[
    "panicked at",
    "Kernel panic - not syncing",
    "System will reboot, press any key to continue ...",
];
const SUCCESS_2: &[&str] = &["Hello, world!", "test pass!"];

/// A default Linux + AxVisor set in the spirit of LAVA's kernel messages: 20 patterns.
const FAIL_15: &[&str] = &[
    "panicked at",
    "Kernel panic - not syncing",
    "System will reboot, press any key to continue ...",
    r"-+\[ cut here \]-+",
    "Unhandled fault",
    "BUG: KASAN:",
    "BUG: KCSAN:",
    "BUG: KFENCE:",
    r"Oops(?: -|:)",
    "WARNING: CPU",
    "kernel BUG at",
    "invalid opcode:",
    r"U-Boot SPL 20\d\d",
    r"end trace [0-9a-f]+",
    "Login incorrect",
];
const SUCCESS_5: &[&str] = &[
    "Hello, world!",
    "test pass!",
    "usertests passed!",
    r"^All tests passed!",
    r"VM\[\d+\] exited with success",
];

/// Kernel-log-like lines: AxVisor/ArceOS logs (coloured), Linux dmesg, a shell.
fn console(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 256);
    let mut i: u64 = 0;
    while out.len() < bytes {
        let secs = i as f64 * 0.000_731;
        let line = match i % 8 {
            0 => format!(
                "\x1b[37m[{secs:12.6} 0:{} axvisor::vmm::vcpus:428] \x1b[0mVM[1] run VCpu[0] exit reason MmioRead addr={:#x}\r\n",
                i % 4,
                0x0900_0000 + (i % 4096) * 8
            ),
            1 => format!(
                "[{secs:12.6}] EXT4-fs (vda): mounted filesystem {i:08x} r/w with ordered data mode. Quota mode: none.\n"
            ),
            2 => format!(
                "[{secs:12.6}] virtio_blk virtio{}: [vda] 131072 512-byte logical blocks (67.1 MB/64.0 MiB)\n",
                i % 3
            ),
            3 => format!(
                "\x1b[32m[{secs:12.6} 0:2 axruntime:{}] \x1b[0mInitialize platform devices...\r\n",
                100 + i % 50
            ),
            4 => format!(
                "[{secs:12.6}] Run /init as init process, pid {} cpu {}\n",
                i % 32768,
                i % 8
            ),
            5 => "Usertests: Test 'fork' in Process 12 exited with code 0\n".to_string(),
            6 => format!(
                "[{secs:12.6}] random: crng init done; entropy pool {} bits\n",
                i % 4096
            ),
            _ => format!(
                "\x1b[33m[{secs:12.6} 1:7 axvisor::hal:77] \x1b[0mtimer tick {i}, irq 27 handled\r\n"
            ),
        };
        out.extend_from_slice(line.as_bytes());
        i += 1;
    }
    out.extend_from_slice(b"\x1b[1;32mtest pass!\x1b[0m\r\n");
    out
}

fn compile(res: &[&str], role: &str) -> Vec<Pattern> {
    res.iter()
        .map(|r| {
            let spec = PatternSpec {
                regex: r.to_string(),
                location: None,
            };
            Pattern::compile(&spec, role).expect("bench pattern compiles")
        })
        .collect()
}

fn spec(re: &str) -> PatternSpec {
    PatternSpec {
        regex: re.to_string(),
        location: None,
    }
}

/// Steps (two early, the last one waiting all the way), three milestones (the last one waiting
/// all the way) and an extractor that matches one line in eight (capped at its case limit).
fn grammar() -> GrammarSpec {
    let at = Location {
        path: "bench.toml".into(),
        line: 1,
        column: 1,
    };
    let step = |re: &str, send: Option<&str>| StepSpec {
        expect: spec(re),
        send: send.map(String::from),
        timeout: Some(Duration::from_secs(60)),
        fail: vec![spec("Login incorrect")],
        location: at.clone(),
    };
    let milestone = |name: &str, re: &str| MilestoneSpec {
        name: name.into(),
        pattern: spec(re),
        deadline: Some(Duration::from_secs(60)),
        optional: false,
        location: at.clone(),
    };
    GrammarSpec {
        steps: vec![
            step(r"Initialize platform devices", None),
            step(r"Run /init as init process", Some("usertests\n")),
            step(r"test pass!", None),
        ],
        milestones: vec![
            milestone("platform", r"axruntime:\d+\] "),
            milestone("rootfs", r"EXT4-fs \(vda\): mounted"),
            milestone("tests done", r"test pass!"),
        ],
        extract: vec![ExtractSpec {
            pattern: spec(
                r"Usertests: Test '(?P<test_case_id>\w+)' in Process \d+ exited with code (?P<result>\d+)",
            ),
            results: vec![("0".into(), CaseStatus::Pass)],
            otherwise: CaseStatus::Fail,
            expected: Vec::new(),
            affects_verdict: true,
            location: at,
        }],
        ..GrammarSpec::default()
    }
}

/// Feeds the whole console in `read`-sized pieces; the last line must decide success.
fn judge_with(
    console: &[u8],
    read: usize,
    success: &[Pattern],
    fail: &[Pattern],
    script: Option<&Script>,
) {
    let mut judge = Judge::new(success.to_vec(), fail.to_vec(), JudgeOptions::default());
    if let Some(s) = script {
        judge = judge.with_script(s.clone());
    }
    let mut decision = None;
    for piece in console.chunks(read) {
        decision = decision.or(judge.feed(black_box(piece), Duration::ZERO));
    }
    assert!(
        matches!(decision, Some(Decision::Success(_))),
        "{decision:?}"
    );
}

fn bench(c: &mut Criterion) {
    let console = console(CONSOLE_BYTES);
    let mut group = c.benchmark_group("judge");
    group.throughput(Throughput::BytesDecimal(console.len() as u64));
    group.sample_size(10);
    let script = Script::compile(&grammar(), false).expect("bench grammar compiles");
    for &(name, read, set, with_grammar) in CASES {
        let (success, fail) = set.patterns();
        let script = with_grammar.then_some(&script);
        let (case, reads) = name.split_once('/').expect("case/reads");
        group.bench_function(BenchmarkId::new(case, reads), |b| {
            b.iter(|| judge_with(&console, read, &success, &fail, script))
        });
    }
    group.bench_function("clean-only/64KiB-reads", |b| {
        b.iter(|| clean_only(&console))
    });
    group.finish();
}

fn clean_only(console: &[u8]) -> usize {
    let mut cleaner = Cleaner::new();
    let mut out = Vec::with_capacity(64 * 1024);
    for piece in console.chunks(64 * 1024) {
        out.clear();
        cleaner.clean(black_box(piece), &mut out);
    }
    black_box(out.len())
}

/// `--once CASE MB`: one run of one case (or `clean-only/64KiB-reads`) on MB megabytes.
fn once(name: &str, megabytes: usize) {
    let console = console(megabytes * 1_000_000);
    let script = Script::compile(&grammar(), false).expect("bench grammar compiles");
    if name == "clean-only/64KiB-reads" {
        run_once(|| {
            clean_only(&console);
        });
        return;
    }
    let Some(&(_, read, set, with_grammar)) = CASES.iter().find(|c| c.0 == name) else {
        let names: Vec<_> = CASES.iter().map(|c| c.0).collect();
        panic!("--once: no case {name:?}; the cases: {names:?}, clean-only/64KiB-reads");
    };
    let (success, fail) = set.patterns();
    let script = with_grammar.then_some(&script);
    run_once(|| judge_with(&console, read, &success, &fail, script));
}

/// The measured part of `--once` (callgrind's `--toggle-collect` names it).
#[inline(never)]
fn run_once(work: impl FnOnce()) {
    work()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--once") {
        let name = args.get(i + 1).expect("--once CASE MB");
        let megabytes = args.get(i + 2).map_or(10, |m| m.parse().expect("MB"));
        once(name, megabytes);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

criterion_group!(benches, bench);

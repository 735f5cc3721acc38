//! A picture of one boot for the step summary: its stages, steps and milestones as a Mermaid
//! `gantt` chart, which GitHub renders from a fenced `mermaid` block.
//!
//! Containment: the only text from outside that reaches the chart is the names of steps and
//! milestones (from configs); console text never does. Mermaid has no escape for its gantt
//! syntax (a task line is `name :data`; `:` `#` `;` and `%%` end or comment a name, a name
//! starting with a keyword such as `section` or `click` becomes a statement, and `#…;` is read
//! as an entity), so [`label`] keeps letters, digits and a few harmless marks, turns the
//! characters that mean something into look-alikes, drops the rest, and every task name
//! starts with our own glyph or stage name, never with the config's text. No crate writes
//! Mermaid, hence this small hand-written encoder.

use std::fmt::Write as _;
use std::time::Duration;

use crate::console::{TimelineEntry, TimelineKind};
use crate::report::{CaseResult, Stage, StageTiming};

/// Longest name shown, in characters.
const NAME_CHARS: usize = 60;

/// Whether a stage is worth showing: it failed, or it took at least 0.05 s (shorter ones
/// would read 0.0 s).
pub(super) fn stage_shown(s: &StageTiming) -> bool {
    !s.ok || s.duration >= Duration::from_millis(50)
}

/// The chart of `r` as a fenced `mermaid` block, or `None` when the case did not boot or its
/// chart would be a single bar.
pub(super) fn chart(r: &CaseResult) -> Option<String> {
    let boot_start = boot_start(&r.stages)?;
    let mut bars = Vec::new();
    let mut at = Duration::ZERO;
    for s in &r.stages {
        if stage_shown(s) {
            let mark = if s.ok { "done" } else { "crit" };
            let text = format!("{} {}", s.stage.name(), crate::duration::tenths(s.duration));
            bars.push(("Stages", text, mark, at, at + s.duration));
        }
        at += s.duration;
    }
    let end = at;
    let mut last = boot_start;
    for e in &r.timeline {
        let glyph = glyph(e);
        match (e.at, e.delta) {
            (Some(t), Some(d)) => {
                let stop = boot_start + t;
                let text = format!(
                    "{glyph} {} at {}",
                    label(&e.name),
                    crate::duration::tenths(t)
                );
                bars.push(("Boot", text, "active", stop.saturating_sub(d), stop));
                last = stop;
            }
            _ => {
                let text = format!("{glyph} {} not reached", label(&e.name));
                bars.push(("Boot", text, "crit", last, end.max(last)));
            }
        }
    }
    if bars.len() < 2 {
        // One bar says no more than the table's Stages column.
        return None;
    }
    let mut md = String::from("```mermaid\ngantt\n    dateFormat x\n");
    let _ = writeln!(md, "    axisFormat {}", axis_format(end));
    md.push_str("    todayMarker off\n");
    let mut section = "";
    for (sec, text, mark, from, to) in bars {
        if sec != section {
            let _ = writeln!(md, "    section {sec}");
            section = sec;
        }
        let _ = writeln!(
            md,
            "    {text} :{mark}, {}, {}",
            from.as_millis(),
            to.as_millis()
        );
    }
    md.push_str("```\n\n");
    Some(md)
}

/// When QEMU started, from the case's start (the stages run one after another): the sum of
/// the stages before the boot; `None` without a boot.
fn boot_start(stages: &[StageTiming]) -> Option<Duration> {
    let i = stages.iter().rposition(|s| s.stage == Stage::Boot)?;
    Some(stages[..i].iter().map(|s| s.duration).sum())
}

fn glyph(e: &TimelineEntry) -> &'static str {
    match e.kind {
        TimelineKind::Milestone => "⚑",
        TimelineKind::Step => "▸",
        TimelineKind::Stage => "◆",
    }
}

/// The axis in seconds since the case started (Mermaid formats times with d3's `timeFormat`;
/// `%s` counts seconds since the epoch, so no time zone shifts the labels): with milliseconds
/// while the chart is under a minute, whole seconds after that.
fn axis_format(end: Duration) -> &'static str {
    if end < Duration::from_secs(60) {
        "%s.%L s"
    } else {
        "%s s"
    }
}

/// A name from a config as chart text: letters, digits, spaces and a few marks kept; the
/// marks Mermaid reads as syntax shown as look-alikes; everything else dropped; at most
/// [`NAME_CHARS`] characters.
pub(super) fn label(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = match c {
            c if c.is_alphanumeric() => c,
            ' ' | '\t' | '\n' | '\r' => ' ',
            '.' | '-' | '_' | '(' | ')' | '/' | '+' | '=' | '\'' | '!' | '?' | '@' | '[' | ']'
            | ',' | '*' | '$' | '^' | '|' | '~' => c,
            ':' => '∶',
            '#' => '♯',
            ';' => '⁏',
            '%' => '％',
            '&' => '＆',
            '<' => '‹',
            '>' => '›',
            '"' => '”',
            '`' => 'ˋ',
            '\\' => '∖',
            '{' => '❴',
            '}' => '❵',
            _ => continue,
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let mut out: String = out.trim_end().chars().take(NAME_CHARS).collect();
    if out.is_empty() {
        out.push('–');
    }
    out
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::verdict::Outcome;

    fn entry(kind: TimelineKind, name: &str, at_ms: Option<u64>, delta_ms: u64) -> TimelineEntry {
        TimelineEntry {
            kind,
            name: name.into(),
            pattern: "p".into(),
            at: at_ms.map(Duration::from_millis),
            delta: at_ms.map(|_| Duration::from_millis(delta_ms)),
            line_no: None,
            line: None,
            optional: false,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Every line of a chart: the header, sections, and tasks `name :tag, from, to` whose
    /// name holds none of Mermaid's syntax characters.
    pub(crate) fn assert_well_formed(block: &str) {
        let mut lines = block.lines();
        assert_eq!(lines.next(), Some("```mermaid"), "{block}");
        assert_eq!(lines.next(), Some("gantt"), "{block}");
        assert_eq!(lines.next(), Some("    dateFormat x"), "{block}");
        assert!(lines.next().unwrap().starts_with("    axisFormat %"));
        assert_eq!(lines.next(), Some("    todayMarker off"), "{block}");
        let mut tasks = 0;
        for line in lines {
            if line == "```" {
                break;
            }
            let line = line.strip_prefix("    ").expect("indented");
            if let Some(s) = line.strip_prefix("section ") {
                assert!(["Stages", "Boot"].contains(&s), "{line}");
                continue;
            }
            let (name, data) = line.rsplit_once(" :").expect("task");
            assert!(
                !name.contains([':', '#', ';', '%', '`', '<', '>', '&', '"', '\n']),
                "{line}"
            );
            assert!(
                name.starts_with(['⚑', '▸'])
                    || ["plan ", "probe ", "image ", "prepare ", "build ", "boot "]
                        .iter()
                        .any(|s| name.starts_with(s)),
                "{line}"
            );
            let parts: Vec<&str> = data.split(", ").collect();
            assert_eq!(parts.len(), 3, "{line}");
            assert!(["done", "crit", "active"].contains(&parts[0]), "{line}");
            let from: u64 = parts[1].parse().expect("from");
            let to: u64 = parts[2].parse().expect("to");
            assert!(from <= to, "{line}");
            tasks += 1;
        }
        assert!(tasks > 0, "{block}");
    }

    #[test]
    fn stages_run_in_order_and_the_timeline_starts_with_the_boot() {
        let mut r = CaseResult::builder("c", Outcome::Fail, "x")
            .duration(Duration::from_secs(5))
            .stage(Stage::Prepare, ms(20), true)
            .stage(Stage::Build, ms(2000), true)
            .stage(Stage::Boot, ms(3000), false)
            .timeline(vec![
                entry(TimelineKind::Milestone, "hv up", Some(1500), 1500),
                entry(TimelineKind::Step, "step 1: expect", Some(1700), 200),
                entry(TimelineKind::Milestone, "guest up", None, 0),
            ])
            .build();
        let md = chart(&r).expect("booted");
        assert_well_formed(&md);
        assert!(md.contains("    axisFormat %s.%L s\n"), "{md}");
        // The 20 ms prepare stage is left out, but its time still moves what follows.
        assert!(!md.contains("prepare"), "{md}");
        assert!(md.contains("    build 2.0 s :done, 20, 2020\n"), "{md}");
        assert!(md.contains("    boot 3.0 s :crit, 2020, 5020\n"), "{md}");
        assert!(
            md.contains("    ⚑ hv up at 1.5 s :active, 2020, 3520\n"),
            "{md}"
        );
        assert!(
            md.contains("    ▸ step 1∶ expect at 1.7 s :active, 3520, 3720\n"),
            "{md}"
        );
        assert!(
            md.contains("    ⚑ guest up not reached :crit, 3720, 5020\n"),
            "{md}"
        );
        assert!(md.ends_with("```\n\n"));

        r.timeline.clear();
        r.stages.remove(1);
        assert_eq!(chart(&r), None, "one bar (prepare is too short to show)");
        r.stages.clear();
        assert_eq!(chart(&r), None, "no boot, no picture");
    }

    #[test]
    fn hostile_names_cannot_reach_mermaid_syntax() {
        let hostile = "x\n    section evil\nclick a call alert(1) %%{init: {\"theme\":\"dark\"}}%% #35; a;b <img src=x> ```\u{1b}[31m";
        let r = CaseResult::builder("c", Outcome::Pass, "x")
            .duration(Duration::from_secs(1))
            .stage(Stage::Boot, ms(90_000), true)
            .timeline(vec![
                entry(TimelineKind::Milestone, hostile, Some(1000), 1000),
                entry(TimelineKind::Step, "section x", None, 0),
                entry(TimelineKind::Step, "\u{7}\u{1b}", Some(1000), 0),
            ])
            .build();
        let md = chart(&r).unwrap();
        assert_well_formed(&md);
        assert!(md.contains("    axisFormat %s s\n"), "{md}");
        // The hostile text is one task's name, not a statement of its own.
        assert_eq!(md.matches("\n    section ").count(), 2, "{md}");
        assert_eq!(md.lines().filter(|l| l.contains("click")).count(), 1);
        assert!(!md.contains("%%") && !md.contains("#35;") && !md.contains("<img"));
        assert_eq!(md.matches("```").count(), 2, "{md}");
        assert!(!md.contains('\u{1b}'));
        assert!(md.contains("    ▸ – at 1.0 s :active"), "{md}");
        assert_eq!(label("a  b\t\tc "), "a b c");
        assert_eq!(label(&"é".repeat(100)).chars().count(), NAME_CHARS);
    }
}

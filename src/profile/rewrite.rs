//! Rewriting QEMU arguments for the chosen accelerator, consistently: one `-accel`, no
//! `-enable-kvm` or `accel=` inside `-machine` (QEMU refuses them next to `-accel`, and several
//! accelerators mean a silent fallback), CPU models and machine properties the accelerator
//! cannot run replaced. Each change is reported as a note saying what and why.

use super::Accel;
use super::data::{AccelProfile, MachineRule, Profile, RuleAction};

/// Options whose next argument is their value, so that value is never taken for an option
/// (e.g. `-append "-cpu host"` stays untouched).
const VALUE_OPTIONS: &[&str] = &[
    "-accel",
    "-M",
    "-machine",
    "-cpu",
    "-smp",
    "-m",
    "-append",
    "-kernel",
    "-initrd",
    "-dtb",
    "-bios",
    "-drive",
    "-blockdev",
    "-device",
    "-netdev",
    "-nic",
    "-net",
    "-chardev",
    "-serial",
    "-monitor",
    "-mon",
    "-qmp",
    "-display",
    "-vga",
    "-name",
    "-object",
    "-global",
    "-boot",
    "-d",
    "-D",
    "-trace",
    "-fw_cfg",
    "-L",
    "-icount",
    "-rtc",
    "-numa",
    "-fsdev",
    "-virtfs",
    "-k",
    "-incoming",
    "-loadvm",
    "-pidfile",
    "-mem-path",
    "-audiodev",
    "-tpmdev",
    "-overcommit",
    "-msg",
    "-sandbox",
    "-plugin",
    "-semihosting-config",
    "-action",
    "-option-rom",
    "-add-fd",
    "-compat",
    "-cdrom",
    "-hda",
    "-hdb",
    "-hdc",
    "-hdd",
    "-fda",
    "-fdb",
    "-mtdblock",
    "-sd",
    "-pflash",
    "-smbios",
    "-acpitable",
    "-uuid",
    "-parallel",
    "-debugcon",
    "-gdb",
    "-set",
    "-spice",
    "-vnc",
    "-usbdevice",
    "-watchdog-action",
    "-run-with",
    "-iscsi",
    "-g",
    "-prom-env",
];

/// Rewrites `args` for `accel` using `profile`; returns the new arguments and the notes.
pub fn rewrite_args(
    args: &[String],
    accel: Accel,
    profile: &Profile,
) -> (Vec<String>, Vec<String>) {
    let mut r = Rewriter {
        target: profile.for_accel(accel),
        out: Vec::with_capacity(args.len() + 4),
        notes: Vec::new(),
        specs: Vec::new(),
        slot: None,
        saw_cpu: false,
    };
    let mut i = 0;
    while i < args.len() {
        let option = canonical(&args[i]);
        let value = args.get(i + 1).filter(|_| VALUE_OPTIONS.contains(&option));
        match (option, value) {
            ("-accel", Some(v)) => r.drop_accel(format!("-accel {v}")),
            ("-enable-kvm", _) => r.drop_accel("-enable-kvm".to_string()),
            ("-machine" | "-M", Some(v)) => r.machine(&args[i], v),
            ("-cpu", Some(v)) => r.cpu(&args[i], v),
            (_, Some(v)) => r.out.extend([args[i].clone(), v.clone()]),
            (_, None) => r.out.push(args[i].clone()),
        }
        i += if value.is_some() { 2 } else { 1 };
    }
    r.finish(accel);
    (r.out, r.notes)
}

/// `--accel` and `-accel` are the same option to QEMU.
fn canonical(arg: &str) -> &str {
    match arg.strip_prefix("--") {
        Some(rest) if !rest.is_empty() => &arg[1..],
        _ => arg,
    }
}

struct Rewriter<'a> {
    target: &'a AccelProfile,
    out: Vec<String>,
    notes: Vec<String>,
    /// Accelerator settings found in the input, as written.
    specs: Vec<String>,
    /// Where the single `-accel` goes: where the first accelerator setting was.
    slot: Option<usize>,
    saw_cpu: bool,
}

impl Rewriter<'_> {
    fn drop_accel(&mut self, spec: String) {
        self.specs.push(spec);
        self.slot.get_or_insert(self.out.len());
    }

    fn machine(&mut self, flag: &str, value: &str) {
        let mut props = split_props(value);
        let before = props.len();
        props.retain(|p| {
            let is_accel = key(p) == "accel";
            if is_accel {
                self.specs.push(format!("{p} in {flag} {value}"));
            }
            !is_accel
        });
        let removed_accel = props.len() != before;
        for rule in &self.target.machine {
            apply_rule(rule, &mut props, &mut self.notes);
        }
        if props.is_empty() {
            self.slot.get_or_insert(self.out.len());
            return;
        }
        self.out.extend([flag.to_string(), props.join(",")]);
        if removed_accel {
            self.slot.get_or_insert(self.out.len());
        }
    }

    fn cpu(&mut self, flag: &str, value: &str) {
        self.saw_cpu = true;
        let (model, features) = value.split_once(',').map_or((value, ""), |(m, f)| (m, f));
        let replacement = self.target.cpu.as_deref().filter(|cpu| {
            model != *cpu
                && self
                    .target
                    .replace_cpus
                    .iter()
                    .any(|r| r == model || r == "*")
        });
        let new = match (replacement, features) {
            (None, _) => value.to_string(),
            (Some(cpu), "") => cpu.to_string(),
            (Some(cpu), features) => format!("{cpu},{features}"),
        };
        if new != value {
            self.notes.push(format!(
                "`{flag} {value}` → `{flag} {new}`: {}",
                self.target.why
            ));
        }
        self.out.extend([flag.to_string(), new]);
    }

    fn finish(&mut self, accel: Accel) {
        let wanted = self.target.accel.clone();
        let at = self.slot.unwrap_or(self.out.len());
        self.out
            .splice(at..at, ["-accel".to_string(), wanted.clone()]);
        let unchanged = self.specs.len() == 1 && self.specs[0] == format!("-accel {wanted}");
        if self.specs.is_empty() {
            self.notes.push(format!(
                "added `-accel {wanted}`: {accel} was chosen, so it is said explicitly"
            ));
        } else if !unchanged {
            self.notes.push(format!(
                "replaced {} with `-accel {wanted}`: one accelerator, no silent fallback \
                 (QEMU also refuses -accel next to -enable-kvm or machine accel=)",
                self.specs
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if let (false, true, Some(cpu)) =
            (self.saw_cpu, self.target.cpu_if_absent, &self.target.cpu)
        {
            self.out.extend(["-cpu".to_string(), cpu.clone()]);
            self.notes
                .push(format!("added `-cpu {cpu}`: {}", self.target.why));
        }
    }
}

/// Applies one machine rule to the property list, noting any change.
fn apply_rule(rule: &MachineRule, props: &mut Vec<String>, notes: &mut Vec<String>) {
    let matches = |p: &String| {
        key(p) == rule.prop && rule.value.as_deref().is_none_or(|v| prop_value(p) == v)
    };
    let why = if rule.why.is_empty() {
        String::new()
    } else {
        format!(": {}", rule.why)
    };
    match &rule.action {
        RuleAction::Default(value) if !props.iter().any(|p| key(p) == rule.prop) => {
            let prop = format!("{}={value}", rule.prop);
            notes.push(format!("added `{prop}` to -machine{why}"));
            props.push(prop);
        }
        RuleAction::Default(_) => {}
        RuleAction::Replace(value) => {
            for p in props.iter_mut().filter(|p| matches(p)) {
                let new = format!("{}={value}", rule.prop);
                notes.push(format!("-machine `{p}` → `{new}`{why}"));
                *p = new;
            }
        }
        RuleAction::Remove => props.retain(|p| {
            let drop = matches(p);
            if drop {
                notes.push(format!("removed `{p}` from -machine{why}"));
            }
            !drop
        }),
        RuleAction::Warn(message) => {
            if let Some(p) = props.iter().find(|p| matches(p)) {
                notes.push(format!("warning: `{p}`: {message}"));
            }
        }
    }
}

/// The non-empty properties of a `-machine` value, each as written (`,,` kept), so they join
/// back with `,`.
fn split_props(value: &str) -> Vec<String> {
    crate::qemu::options::split(value)
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| crate::qemu::options::escape(p))
        .collect()
}

/// The property name (`q35` for the implicit machine type is its own key).
fn key(prop: &str) -> &str {
    prop.split_once('=').map_or(prop, |(k, _)| k)
}

fn prop_value(prop: &str) -> &str {
    prop.split_once('=').map_or("on", |(_, v)| v)
}

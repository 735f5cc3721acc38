//! How many cases run at once.

/// How many cases to boot at once: no more than the host's CPUs divided by the largest guest
/// `-smp`, and no more than the available memory divided by the largest guest `-m`; at least 1.
pub fn default_jobs(cases: &[crate::plan::Case]) -> usize {
    // One case runs alone: the host's CPUs and memory (cgroup and /proc reads) cannot change it.
    if cases.len() <= 1 {
        return 1;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let smp = cases
        .iter()
        .map(|c| guest_cpus(&c.command.args))
        .max()
        .unwrap_or(1);
    let mem = cases
        .iter()
        .map(|c| guest_memory_mib(&c.command.args))
        .max()
        .unwrap_or(128);
    let by_cpu = cpus / smp.max(1);
    let by_mem = crate::host::available_memory()
        .map(|b| b >> 20)
        .map_or(usize::MAX, |m| (m / mem.max(1)) as usize);
    by_cpu.min(by_mem).min(cases.len()).max(1)
}

/// The guest's vCPU count from `-smp N` or `-smp cpus=N,…` (1 when absent).
fn guest_cpus(args: &[String]) -> usize {
    option_value(args, "-smp")
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.strip_prefix("cpus=").or((!p.contains('=')).then_some(p)))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(1)
}

/// The guest's memory in MiB from `-m 512`, `-m 8g`, `-m size=1G` (QEMU's default 128 when absent).
fn guest_memory_mib(args: &[String]) -> u64 {
    let Some(v) = option_value(args, "-m") else {
        return 128;
    };
    let v = v
        .split(',')
        .find_map(|p| p.strip_prefix("size=").or((!p.contains('=')).then_some(p)));
    let Some(v) = v else { return 128 };
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num.parse().unwrap_or(128.0);
    let mib = match unit.to_ascii_lowercase().as_str() {
        "" | "m" | "mb" | "mib" => n,
        "g" | "gb" | "gib" => n * 1024.0,
        "t" | "tb" => n * 1024.0 * 1024.0,
        "k" | "kb" => n / 1024.0,
        _ => 128.0,
    };
    mib.max(1.0) as u64
}

fn option_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.windows(2)
        .rev()
        .find(|w| w[0] == name)
        .map(|w| w[1].as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_guest_cpus_and_memory_like_qemu() {
        assert_eq!(guest_cpus(&args(&["-smp", "4"])), 4);
        assert_eq!(guest_cpus(&args(&["-smp", "cpus=2,sockets=1"])), 2);
        assert_eq!(guest_cpus(&args(&["-m", "1G"])), 1);
        assert_eq!(guest_memory_mib(&args(&["-m", "8g"])), 8192);
        assert_eq!(guest_memory_mib(&args(&["-m", "128M"])), 128);
        assert_eq!(guest_memory_mib(&args(&["-m", "size=2G,slots=2"])), 2048);
        assert_eq!(guest_memory_mib(&args(&["-m", "512"])), 512);
        assert_eq!(guest_memory_mib(&args(&[])), 128);
    }
}

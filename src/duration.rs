//! Durations as people write and read them, one rule each: parsed from the command line and
//! config files (`30s`, `5m`, `1h30m`, `500ms`, or a bare number of seconds), shown in messages
//! (`1m30s`), in tables (`12.3 s`) and in JSON (fractional seconds). Ground level: every layer
//! may use it, it uses nothing of the crate.

use std::time::Duration;

/// Parses `30s`, `5m`, `1h`, `1m30s`, `250ms`, `1.5s` or `45` (seconds).
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<f64>() {
        return from_secs(secs, text);
    }
    let mut total = 0.0;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| bad(text))?;
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = num.parse().map_err(|_| bad(text))?;
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad(text)),
        };
        total += n * scale;
        rest = next;
    }
    from_secs(total, text)
}

fn from_secs(secs: f64, text: &str) -> Result<Duration, String> {
    if !secs.is_finite() || secs <= 0.0 || secs > 7.0 * 24.0 * 3600.0 {
        return Err(format!(
            "duration '{text}' must be positive and at most a week"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn bad(text: &str) -> String {
    format!(
        "invalid duration '{text}' (expected e.g. 30s, 5m, 1h30m, 500ms or a number of seconds)"
    )
}

/// Short human form: `250ms`, `30s`, `5m`, `1m30s`, `2.5s`.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    if !ms.is_multiple_of(1000) {
        return format!("{:.1}s", d.as_secs_f64());
    }
    let s = d.as_secs();
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// Table form with tenths: `12.3 s`.
pub fn tenths(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// Serde: a duration as fractional seconds (microsecond precision).
pub fn serialize_secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e6)
}

/// Serde: an optional duration as fractional seconds or `null`.
pub fn serialize_opt_secs<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => serialize_secs(d, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "5x", "m", "-3", "0s", "10d"] {
            assert!(parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn formats_round_trip() {
        for s in ["250ms", "30s", "5m", "1m30s", "1h", "2.5s"] {
            assert_eq!(format(parse(s).unwrap()), s);
        }
    }
}

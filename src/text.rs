//! Values written as text for people and files: digests, sizes, times, the tail of a command's
//! output. One spelling of each, so that a report, a runbook and an error agree.

use std::fmt::Write as _;

/// Lowercase hexadecimal, as `sha256sum` prints digests.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The SHA-256 of `bytes`, in hexadecimal.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// A size for people, in binary units: `512 bytes`, `200 GiB`, `1.5 TiB`. One decimal, rounded
/// up (estimates are upper bounds), dropped when it is zero.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut scale = 1u64;
    while unit + 1 < UNITS.len() && bytes >= scale * 1024 {
        scale *= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} bytes");
    }
    let tenths = (u128::from(bytes) * 10).div_ceil(u128::from(scale));
    if tenths % 10 == 0 {
        format!("{} {}", tenths / 10, UNITS[unit])
    } else {
        format!("{}.{} {}", tenths / 10, tenths % 10, UNITS[unit])
    }
}

/// The last `n` lines of a command's output that are not blank, joined with ` | `: enough to say
/// why it failed on one line.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// `text` cut to `max` characters, an ellipsis marking the cut.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// A span as people read it: `42 s`, `3 min 05 s`, `2 h 07 min`, `3 d 4 h`.
pub fn duration(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        3600..86400 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86400, s % 86400 / 3600),
    }
}

/// `""` for one, `"s"` for any other count.
pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Unix seconds as an RFC 3339 UTC time (`2026-11-23T19:20:00Z`).
pub fn rfc3339(seconds: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Now, to the second, as an RFC 3339 UTC time.
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// An error and its sources on one line (`a: b: c`): many libraries keep the reason in the chain.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let next = s.to_string();
        // Some errors repeat their source in their own message.
        if !message.ends_with(&next) && !next.is_empty() {
            message.push_str(": ");
            message.push_str(&next);
        }
        src = s.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_one_decimal() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(200 * 1024 * 1024 * 1024), "200 GiB");
        assert_eq!(human_bytes(1024 * 1024 + 1), "1.1 MiB");
        assert_eq!(human_bytes(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        assert_eq!(human_bytes(2 << 40), "2 TiB");
        assert_eq!(human_bytes((2000 << 30) + (50 << 30)), "2.1 TiB");
        assert_eq!(human_bytes(1_000_000_000_000), "931.4 GiB");
    }

    #[test]
    fn the_tail_of_an_output_skips_blank_lines() {
        assert_eq!(last_lines("a\n\nb\n  \nc\n", 2), "b | c");
        assert_eq!(last_lines("", 3), "");
        assert_eq!(last_lines("only\n", 3), "only");
    }

    #[test]
    fn digests_and_cuts() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("abc", 4), "abc");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}

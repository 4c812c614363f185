//! How a moment reads on the pages: "about 3 minutes ago" and
//! "2 December 2026, 16:05 UTC".
//!
//! Owns: [`ago`] and [`utc`], used where a page says when a sign-in was
//! asked for. Plain arithmetic on unix seconds; no time zone but UTC (the
//! gateway does not know the reader's).

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// "less than a minute ago", "about 1 minute ago", "about 3 minutes ago",
/// "about 2 hours ago", for a moment `secs` seconds back.
pub fn ago(secs: u64) -> String {
    let minutes = secs / 60;
    match minutes {
        0 => "less than a minute ago".into(),
        1 => "about 1 minute ago".into(),
        2..=89 => format!("about {minutes} minutes ago"),
        _ => {
            let hours = (minutes + 30) / 60;
            if hours == 1 {
                "about 1 hour ago".into()
            } else {
                format!("about {hours} hours ago")
            }
        }
    }
}

/// "2 December 2026, 16:05 UTC" for unix seconds.
pub fn utc(unix: u64) -> String {
    let days = unix / 86_400;
    let rest = unix % 86_400;
    let (year, month, day) = civil_from_days(days);
    let month = MONTHS
        .get(usize::from(month.saturating_sub(1)))
        .copied()
        .unwrap_or("");
    format!(
        "{day} {month} {year}, {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// Year, month (1 to 12) and day of the month for days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u8, u8) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month as u8, day as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ago_reads_naturally() {
        for (secs, want) in [
            (0, "less than a minute ago"),
            (59, "less than a minute ago"),
            (60, "about 1 minute ago"),
            (119, "about 1 minute ago"),
            (180, "about 3 minutes ago"),
            (89 * 60, "about 89 minutes ago"),
            (90 * 60, "about 2 hours ago"),
            (60 * 60 + 29 * 60, "about 89 minutes ago"),
            (5 * 3600, "about 5 hours ago"),
        ] {
            assert_eq!(ago(secs), want, "{secs}");
        }
    }

    #[test]
    fn utc_dates() {
        for (unix, want) in [
            (0, "1 January 1970, 00:00 UTC"),
            (951_782_400, "29 February 2000, 00:00 UTC"),
            (1_709_164_800 + 3661, "29 February 2024, 01:01 UTC"),
            (1_798_216_380, "25 December 2026, 16:33 UTC"),
            (4_102_444_799, "31 December 2099, 23:59 UTC"),
        ] {
            assert_eq!(utc(unix), want, "{unix}");
        }
    }
}

//! How a length of time reads on the pages: "15 minutes", "1 hour",
//! "90 seconds".
//!
//! Owns: [`minutes`] and [`span`], used where a page says how long a
//! link works and when a new one can be sent.

use std::time::Duration;

/// "15 minutes", "1 minute", "2 hours".
pub(super) fn minutes(n: u64) -> String {
    match n {
        1 => "1 minute".into(),
        60 => "1 hour".into(),
        n if n >= 120 && n % 60 == 0 => format!("{} hours", n / 60),
        n => format!("{n} minutes"),
    }
}

/// "30 seconds", "1 minute", "90 seconds", "2 hours": whole minutes as
/// [`minutes`] says them, anything else in seconds.
pub(super) fn span(d: Duration) -> String {
    match d.as_secs() {
        1 => "1 second".into(),
        s if s >= 60 && s % 60 == 0 => minutes(s / 60),
        s => format!("{s} seconds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_say_them() {
        let s = |n| span(Duration::from_secs(n));
        assert_eq!(s(1), "1 second");
        assert_eq!(s(30), "30 seconds");
        assert_eq!(s(60), "1 minute");
        assert_eq!(s(90), "90 seconds");
        assert_eq!(s(300), "5 minutes");
        assert_eq!(s(7200), "2 hours");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(minutes(1), "1 minute");
        assert_eq!(minutes(15), "15 minutes");
        assert_eq!(minutes(60), "1 hour");
        assert_eq!(minutes(90), "90 minutes");
        assert_eq!(minutes(180), "3 hours");
    }
}

//! Parsers for the small value languages of the configuration file:
//! durations (`"90s"`, `"15m"`, `"12h"`, `"7d"`, `"250ms"`), rates
//! (`"5/15m"`), host names and socket addresses. Pure functions returning
//! a reason string on failure; the caller adds the file and key.

use std::time::Duration;

/// A count of events allowed per window (fixed window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u64,
    pub window: Duration,
}

/// Parses `"<n><unit>"` with unit `ms`, `s`, `m`, `h` or `d`.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
        format!("{text:?} has no unit; write it like \"90s\", \"15m\", \"12h\" or \"7d\"")
    })?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    let millis_per = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit {unit:?}; use ms, s, m, h or d"
            ))
        }
    };
    n.checked_mul(millis_per)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Parses `"<count>/<duration>"`, for example `"5/15m"`.
pub fn rate(text: &str) -> Result<Rate, String> {
    let (count, window) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not a rate; write it like \"5/15m\""))?;
    let count: u64 = count
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: {count:?} is not a whole number"))?;
    if count == 0 {
        return Err(format!("{text:?}: the count must be at least 1"));
    }
    let window = duration(window)?;
    if window.is_zero() {
        return Err(format!("{text:?}: the window must be longer than zero"));
    }
    Ok(Rate { count, window })
}

/// Normalises a configured host name: lowercase, IDN to punycode, no
/// trailing dot; an optional `:port` is kept. Rejects anything with a
/// scheme, path, userinfo or wildcard.
pub fn host(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("is empty".into());
    }
    if trimmed.contains(['/', '@', '*', '?', '#', ' ']) {
        return Err(format!(
            "{text:?} is not a host name (write only the name, like \"app.example.com\")"
        ));
    }
    let (name, port) = match trimmed.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => {
            let port: u16 = port
                .parse()
                .map_err(|_| format!("{text:?} has a bad port {port:?}"))?;
            (name, Some(port))
        }
        _ => (trimmed, None),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let parsed = url::Host::parse(name).map_err(|e| format!("{text:?} is not a host name: {e}"))?;
    let name = match parsed {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => format!("[{ip}]"),
    };
    Ok(match port {
        Some(p) => format!("{name}:{p}"),
        None => name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(duration("15").unwrap_err().contains("no unit"));
        assert!(duration("15w").unwrap_err().contains("unknown unit"));
        assert!(duration("m").unwrap_err().contains("whole number"));
        assert!(duration("99999999999999999999d")
            .unwrap_err()
            .contains("whole number"));
        assert!(duration("9999999999999999d")
            .unwrap_err()
            .contains("too long"));
    }

    #[test]
    fn rates() {
        assert_eq!(
            rate("5/15m"),
            Ok(Rate {
                count: 5,
                window: Duration::from_secs(900)
            })
        );
        assert!(rate("5").unwrap_err().contains("not a rate"));
        assert!(rate("0/1m").unwrap_err().contains("at least 1"));
        assert!(rate("x/1m").unwrap_err().contains("whole number"));
    }

    #[test]
    fn hosts() {
        assert_eq!(host("App.Example.COM."), Ok("app.example.com".into()));
        assert_eq!(host("localhost:8080"), Ok("localhost:8080".into()));
        assert_eq!(host("bücher.example"), Ok("xn--bcher-kva.example".into()));
        assert!(host("https://a.example").is_err());
        assert!(host("*.example.com").is_err());
        assert!(host("a.example:99999").unwrap_err().contains("bad port"));
    }
}

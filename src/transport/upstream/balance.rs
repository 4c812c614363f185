//! Which of a route's addresses a request goes to ([`pick`]), and what an
//! attempt's outcome says about that address's health ([`refused`],
//! [`Flight`]).
//!
//! `lb = "round_robin"` (the default) takes the addresses in turn among
//! those in rotation, so an address that is out does not send its share to
//! its neighbour; `"least_request"` takes the one with the fewest requests
//! waiting for their answer's head (ties in turn); `"random"` any one in
//! rotation. An address is out of the rotation after it refused or reset a
//! connection, for `health_backoff` (passive health), or, with active
//! checks (`health_path`), until it has passed `healthy_threshold` checks
//! in a row ([`super::health`]). A route with one address never takes it
//! out by itself. No address in rotation: the request is 502.
//!
//! The state is a few atomics per address in
//! [`crate::config::route_options::Backends`], shared by every worker.

use std::sync::atomic::Ordering::Relaxed;

use crate::config::route_options::{Backends, Lb, Target};

use super::pool::SendError;
use super::raw::ExchangeError;

/// Whether address `t` takes requests now (`now` from
/// [`Backends::now_ms`]).
fn in_rotation(set: &Backends, t: &Target, now: u64) -> bool {
    if t.check_failed.load(Relaxed) {
        return false;
    }
    set.targets.len() == 1 || t.down_until.load(Relaxed) <= now
}

/// The address for the next attempt, never `skip` (the one that just
/// failed); `None` when no address is in rotation.
pub fn pick(set: &Backends, skip: Option<usize>) -> Option<usize> {
    let now = set.now_ms();
    let usable = |i: usize| Some(i) != skip && in_rotation(set, &set.targets[i], now);
    let count = (0..set.targets.len()).filter(|&i| usable(i)).count();
    if count == 0 {
        return None;
    }
    let nth = |k: usize| (0..set.targets.len()).filter(|&i| usable(i)).nth(k % count);
    match set.lb {
        Lb::RoundRobin => nth(set.next.fetch_add(1, Relaxed)),
        Lb::Random => {
            use rand::RngExt;
            nth(rand::rng().random_range(0..count))
        }
        Lb::LeastRequest => {
            let start = set.next.fetch_add(1, Relaxed);
            (0..count)
                .filter_map(|k| nth(start.wrapping_add(k)))
                .min_by_key(|&i| set.targets[i].in_flight.load(Relaxed))
        }
    }
}

/// Whether a failed attempt means the address refused or reset the
/// connection (it goes out of rotation), and whether nothing of the
/// request can have been sent (a refused connection: then any method may
/// go to another address; after a reset, only an idempotent one whose
/// request came back unsent).
pub fn refused(e: &SendError) -> (bool, bool) {
    match e {
        SendError::Connect(_) => (true, true),
        SendError::Exchange(ExchangeError::Io {
            error,
            answered: false,
        }) => {
            let reset = matches!(
                error.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
            );
            (reset, false)
        }
        SendError::Http(e) => {
            // Closed or reset before the answer's head.
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
            let mut reset = e.is_incomplete_message();
            while let Some(s) = source {
                if let Some(io) = s.downcast_ref::<std::io::Error>() {
                    reset |= matches!(
                        io.kind(),
                        std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::BrokenPipe
                    );
                }
                source = s.source();
            }
            (reset, false)
        }
        _ => (false, false),
    }
}

/// Takes address `i` out of rotation: for `health_backoff`, or until its
/// active checks pass again. Whether it was in rotation until now (for
/// one log line per change, not one per request).
pub fn take_out(set: &Backends, i: usize) -> bool {
    let t = &set.targets[i];
    let now = set.now_ms();
    let until = now.saturating_add(u64::try_from(set.backoff.as_millis()).unwrap_or(u64::MAX));
    let was_in = t.down_until.swap(until, Relaxed) <= now && !t.check_failed.load(Relaxed);
    if set.health.is_some() {
        t.check_failed.store(true, Relaxed);
        t.streak.store(0, Relaxed);
    }
    was_in
}

/// A request waiting for its answer's head from an address (counted for
/// `least_request`).
pub struct Flight<'a>(&'a Target);

impl<'a> Flight<'a> {
    pub fn new(t: &'a Target) -> Flight<'a> {
        t.in_flight.fetch_add(1, Relaxed);
        Flight(t)
    }
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
    }
}

//! The revocation subscriber of the Redis backend: one task holding a
//! dedicated pub/sub connection subscribed to `{prefix}revoked`, forwarding
//! each published session id hash to a local broadcast channel.
//!
//! # What it owns
//!
//! - Staying subscribed: when the connection ends (Redis restarted, network
//!   cut) or a periodic PING goes unanswered within the response timeout, it
//!   reconnects and resubscribes, forever, with jittered exponential backoff
//!   (100 ms doubling to 500 ms; reset only after a connection stayed up
//!   for a while), so it never spins against a Redis that is down and is
//!   back within half a second of Redis.
//! - Getting subscribed in the first place when Redis was unreachable at
//!   start ([`Subscriber::spawn`]): the same loop, from its first attempt.
//! - Telling [`Health`] about every (re)subscribe (which moves the
//!   subscription epoch on, so cached sessions are confirmed again) and
//!   every loss.
//! - Stopping: the task is aborted when the owning store is dropped.
//!
//! # What it does not own
//!
//! Publishing (the Redis backend's scripts do that) and reacting to
//! revocations (callers read [`tokio::sync::broadcast`] receivers).
//!
//! # Threat model
//!
//! Revocations sent while the subscriber is disconnected are lost. The
//! epoch moves on before the first message of a new subscription is
//! forwarded, so callers that stop trusting entries of an older epoch miss
//! nothing for longer than the reconnect takes; periodic revalidation
//! bounds the rest. Payloads are session id hashes and are never logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::redis::aio::{PubSubSink, PubSubStream};
use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::health::Health;
use super::redis_conn::Connector;
use super::StoreError;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Small enough that an instance is subscribed again within half a second
/// of Redis coming back (a sign-out in that gap reaches this instance only
/// through the epoch); a refused connection costs Redis nothing.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// A connection that lived this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// How often an idle subscription checks that Redis still answers.
const HEALTH_INTERVAL: Duration = Duration::from_secs(15);

/// What the subscriber needs to (re)connect.
#[derive(Clone)]
pub(super) struct Target {
    pub(super) connector: Arc<Connector>,
    pub(super) channel: String,
    pub(super) connect_timeout: Duration,
    pub(super) response_timeout: Duration,
    pub(super) health: Arc<Health>,
}

/// The running subscriber task; aborted on drop.
pub(super) struct Subscriber {
    task: JoinHandle<()>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Subscriber {
    /// Subscribes once (failing with `Unavailable` if that is impossible),
    /// then hands the connection to a background task that keeps it alive.
    pub(super) async fn start(
        target: Target,
        sender: broadcast::Sender<String>,
    ) -> Result<Subscriber, StoreError> {
        let first = open(&target).await.map_err(StoreError::Unavailable)?;
        target.health.subscribed();
        let task = tokio::spawn(run(target, sender, Some(first)));
        Ok(Subscriber { task })
    }

    /// Starts the task without waiting: it subscribes as soon as Redis
    /// answers (at once if it does now), and keeps trying until then.
    pub(super) fn spawn(target: Target, sender: broadcast::Sender<String>) -> Subscriber {
        let task = tokio::spawn(run(target, sender, None));
        Subscriber { task }
    }
}

type Connection = (PubSubSink, PubSubStream);

async fn open(target: &Target) -> Result<Connection, String> {
    // Sentinel: the master as the Sentinels say now; Cluster: the next
    // seed node (a cluster forwards every PUBLISH to all its nodes).
    let bound = target.connect_timeout.saturating_mul(2);
    let client = tokio::time::timeout(bound, target.connector.pubsub_client())
        .await
        .map_err(|_| "finding the Redis node timed out".to_owned())??;
    let pubsub = tokio::time::timeout(target.connect_timeout, client.get_async_pubsub())
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let (mut sink, stream) = pubsub.split();
    tokio::time::timeout(target.response_timeout, sink.subscribe(&target.channel))
        .await
        .map_err(|_| "subscribe timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    Ok((sink, stream))
}

async fn run(target: Target, sender: broadcast::Sender<String>, first: Option<Connection>) {
    let mut ever_subscribed = first.is_some();
    let mut connection = first;
    let mut backoff = MIN_BACKOFF;
    loop {
        if let Some((sink, stream)) = connection.take() {
            let since = Instant::now();
            let switches = target.connector.master_switches();
            let reason = pump(sink, stream, &sender, target.response_timeout, switches).await;
            target.health.unsubscribed();
            tracing::warn!(reason, "revocation subscriber lost its Redis connection");
            backoff = if since.elapsed() >= STABLE_AFTER {
                MIN_BACKOFF
            } else {
                backoff.saturating_mul(2).min(MAX_BACKOFF)
            };
            tokio::time::sleep(jittered(backoff)).await;
        }
        match open(&target).await {
            Ok(c) => {
                // Before the first message of the new connection is
                // forwarded: entries confirmed earlier may have missed a
                // revocation published while nobody listened.
                target.health.subscribed();
                if ever_subscribed {
                    tracing::info!("revocation subscriber resubscribed");
                } else {
                    tracing::info!("revocation subscriber subscribed");
                }
                ever_subscribed = true;
                connection = Some(c);
            }
            Err(error) => {
                tracing::debug!(%error, "revocation subscriber could not subscribe");
                // Sentinel: a new master is worth trying at once.
                let mut switches = target.connector.master_switches();
                tokio::select! {
                    _ = tokio::time::sleep(jittered(backoff)) => {}
                    Ok(()) = switches.changed() => {}
                }
                backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Between half and all of `d`, so that many instances do not reconnect in
/// lockstep.
fn jittered(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(2);
    Duration::from_millis(rand::random_range(ms / 2..=ms))
}

/// Forwards messages until the connection ends; returns why it ended.
async fn pump(
    mut sink: PubSubSink,
    mut stream: PubSubStream,
    sender: &broadcast::Sender<String>,
    response_timeout: Duration,
    mut switches: tokio::sync::watch::Receiver<u64>,
) -> &'static str {
    let mut health = tokio::time::interval_at(
        tokio::time::Instant::now() + HEALTH_INTERVAL,
        HEALTH_INTERVAL,
    );
    health.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = stream.next() => match msg {
                None => return "connection closed",
                Some(msg) => match msg.get_payload::<String>() {
                    // No receivers is fine: nothing caches sessions then.
                    Ok(id) => { let _ = sender.send(id); }
                    Err(_) => tracing::debug!("ignored a revocation message that is not text"),
                },
            },
            // Sentinel: the master moved, follow it (the old one may be a
            // replica now, or gone).
            Ok(()) = switches.changed() => return "the Sentinels switched the master",
            _ = health.tick() => {
                let pong = tokio::time::timeout(response_timeout, sink.ping::<::redis::Value>()).await;
                if !matches!(pong, Ok(Ok(_))) {
                    return "health check failed";
                }
            }
        }
    }
}

//! How the Redis backend reaches Redis in each mode: one server through an
//! auto-reconnecting `ConnectionManager`; the master of a Sentinel set,
//! found through the Sentinels and found again after a failover; or a
//! Redis Cluster through the client's cluster connection (which follows
//! `MOVED`/`ASK` and refreshes its slot map by itself).
//!
//! # What it owns
//!
//! - Building clients from [`RedisSettings`]: the ACL user and password
//!   (configured ones win over any in the URL), TLS with the configured CA
//!   and optional client certificate (verification always on), separate
//!   credentials for the Sentinels.
//! - Sentinel: the Redis client resolves the master only when it connects,
//!   so [`Connector::failed`] marks the master stale on a connection error,
//!   `READONLY` (a demoted master) or `LOADING` (a restarted one), and the
//!   next command asks the Sentinels again (at most every
//!   [`RESOLVE_EVERY`]). A mark made while a resolve is under way outlives
//!   it ([`Staleness`]).
//! - Cluster and Sentinel connections that start lazily, so the gateway
//!   starts while Redis is down ([`Connector::new`] never connects).
//! - Which node the revocation subscriber connects to
//!   ([`Connector::pubsub_client`]).
//!
//! # What it does not own
//!
//! Commands, scripts, deadlines and retries (`super::redis`).
//!
//! # Threat model
//!
//! Passwords and private keys go only into the client's connection info;
//! error texts here are fixed words or the client's (which never include
//! the password).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClientBuilder;
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use ::redis::{
    Client, ClientTlsConfig, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo,
    Pipeline, RedisError, RedisFuture, RedisResult, ServerErrorKind, TlsCertificates, TlsMode,
    Value,
};
use tokio::time::Instant;

use super::{RedisMode, RedisSettings, StoreError};

/// Least time between two questions to the Sentinels.
pub(super) const RESOLVE_EVERY: Duration = Duration::from_millis(100);

/// Whether the Sentinel master as last resolved may be out of date.
///
/// A mark (a failed command, a `+switch-master`) made while a resolve is
/// asking the Sentinels must survive that resolve: the answer it gets may
/// predate the switch. So a resolve clears only the marks it saw before
/// it asked ([`Staleness::seen`], [`Staleness::clear_up_to`]).
#[derive(Debug)]
pub(super) struct Staleness {
    marks: AtomicU64,
    cleared: AtomicU64,
}

impl Staleness {
    /// Stale from the start: nothing is resolved yet.
    fn new() -> Staleness {
        Staleness {
            marks: AtomicU64::new(1),
            cleared: AtomicU64::new(0),
        }
    }

    pub(super) fn mark(&self) {
        self.marks.fetch_add(1, Ordering::AcqRel);
    }

    pub(super) fn is_stale(&self) -> bool {
        self.marks.load(Ordering::Acquire) > self.cleared.load(Ordering::Acquire)
    }

    /// The marks so far: read before asking the Sentinels.
    fn seen(&self) -> u64 {
        self.marks.load(Ordering::Acquire)
    }

    /// Clears the marks up to `seen`; later ones stay.
    fn clear_up_to(&self, seen: u64) {
        self.cleared.fetch_max(seen, Ordering::AcqRel);
    }
}

/// A connection for one command: cheap to clone, shared underneath.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// `WAIT replicas timeout` on the node that holds `key` (in a
    /// cluster) or on the one server: how many replicas have every write
    /// this connection made so far.
    pub(super) async fn wait(
        &mut self,
        key: &str,
        replicas: u32,
        timeout: Duration,
    ) -> RedisResult<u64> {
        let mut cmd = ::redis::cmd("WAIT");
        cmd.arg(replicas)
            .arg(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        match self {
            Conn::Single(c) => cmd.query_async(c).await,
            Conn::Cluster(c) => {
                let route = Route::new(slot(key.as_bytes()), SlotAddr::Master);
                let v = c
                    .route_command(
                        cmd,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route)),
                    )
                    .await?;
                ::redis::from_redis_value(v).map_err(RedisError::from)
            }
        }
    }
}

/// The Redis Cluster hash slot of `key` (CRC16-XMODEM of the hash tag,
/// or of the whole key without one, mod 16384).
pub(super) fn slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|b| *b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|b| *b == b'}')
                .filter(|close| *close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for byte in tagged {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// How this store reaches Redis.
pub(super) struct Connector {
    kind: Kind,
    /// Which seed the subscriber tries next (cluster).
    next_seed: AtomicUsize,
    /// Moves on when the Sentinels announce a new master (never
    /// otherwise): the revocation subscriber follows it.
    switched: tokio::sync::watch::Sender<u64>,
    /// The task listening to the Sentinels' `+switch-master`.
    watcher: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Connector {
    fn drop(&mut self) {
        if let Some(task) = &self.watcher {
            task.abort();
        }
    }
}

/// Which of the two connections: the main one for every command, or the
/// one for writes followed by `WAIT`, which blocks its connection and so
/// must not hold up everything else.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    Main,
    Durable,
}

// One per store.
#[allow(clippy::large_enum_variant)]
enum Kind {
    Standalone {
        client: Client,
        manager: ConnectionManager,
        durable: ConnectionManager,
    },
    Sentinel(SentinelMaster),
    Cluster {
        builder_settings: Box<RedisSettings>,
        seeds: Vec<Client>,
        conn: LazyCluster,
        durable: LazyCluster,
    },
}

/// Listens to `+switch-master` on one Sentinel after another, forever:
/// each announcement (and each new Sentinel connection, since one may
/// have been missed meanwhile) marks the master stale and moves
/// `switched` on.
async fn watch_sentinels(
    sentinels: Vec<ConnectionInfo>,
    settings: Box<RedisSettings>,
    stale: Arc<Staleness>,
    switched: tokio::sync::watch::Sender<u64>,
) {
    use futures_util::StreamExt as _;
    let mut first = true;
    for info in sentinels.iter().cycle() {
        let listen = async {
            let client = client_for(info.clone(), &settings).ok()?;
            let mut pubsub =
                tokio::time::timeout(settings.connect_timeout, client.get_async_pubsub())
                    .await
                    .ok()?
                    .ok()?;
            pubsub.subscribe("+switch-master").await.ok()?;
            Some(pubsub)
        };
        if let Some(pubsub) = listen.await {
            if !first {
                stale.mark();
                switched.send_modify(|n| *n += 1);
            }
            first = false;
            let mut messages = pubsub.into_on_message();
            while messages.next().await.is_some() {
                tracing::info!("the Sentinels switched the Redis master");
                stale.mark();
                switched.send_modify(|n| *n += 1);
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A cluster connection made on first use (the gateway starts while the
/// Cluster is down); once made it reconnects by itself, so reading it
/// takes no lock.
#[derive(Default)]
struct LazyCluster {
    made: std::sync::OnceLock<ClusterConnection>,
    making: tokio::sync::Mutex<()>,
}

impl LazyCluster {
    async fn get(&self, s: &RedisSettings) -> Result<ClusterConnection, StoreError> {
        if let Some(c) = self.made.get() {
            return Ok(c.clone());
        }
        let _one_at_a_time = self.making.lock().await;
        if let Some(c) = self.made.get() {
            return Ok(c.clone());
        }
        let c = cluster_connection(s).await?;
        Ok(self.made.get_or_init(|| c).clone())
    }
}

/// The master of a Sentinel set, as last resolved.
struct SentinelMaster {
    sentinels: Vec<ConnectionInfo>,
    master_name: String,
    settings: Box<RedisSettings>,
    manager_config: ConnectionManagerConfig,
    /// The master's address and a manager connected to it.
    current: Mutex<Current>,
    stale: Arc<Staleness>,
    resolving: tokio::sync::Mutex<Option<Instant>>,
    /// Moves on every time `current` is replaced.
    generation: std::sync::atomic::AtomicU64,
}

fn manager_config(s: &RedisSettings) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(s.connect_timeout))
        .set_response_timeout(Some(s.response_timeout))
        // Few, short retries: a command waiting on a reconnect is cut
        // off by the response timeout anyway, and the next command
        // starts a fresh reconnect.
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

fn certificates(s: &RedisSettings) -> Option<TlsCertificates> {
    s.tls.as_ref().map(|t| TlsCertificates {
        client_tls: t.client.as_ref().map(|(cert, key)| ClientTlsConfig {
            client_cert: cert.clone(),
            client_key: key.expose().to_vec(),
        }),
        root_cert: t.ca.clone(),
    })
}

fn unusable(what: &str) -> StoreError {
    StoreError::Unavailable(format!("{what}: invalid Redis settings"))
}

/// The connection info of `url` with the configured data-node
/// credentials.
fn node_info(url: &str, s: &RedisSettings) -> Result<ConnectionInfo, StoreError> {
    crate::config::redis_url::check(url).map_err(StoreError::Unavailable)?;
    let info = url
        .into_connection_info()
        .map_err(|_| unusable("Redis URL"))?;
    Ok(with_credentials(
        info,
        s.username.as_deref(),
        s.password.as_ref(),
    ))
}

fn with_credentials(
    info: ConnectionInfo,
    username: Option<&str>,
    password: Option<&crate::config::Secret>,
) -> ConnectionInfo {
    let mut redis = info.redis_settings().clone();
    if let Some(u) = username {
        redis = redis.set_username(u);
    }
    if let Some(p) = password {
        redis = redis.set_password(String::from_utf8_lossy(p.expose()));
    }
    info.set_redis_settings(redis)
}

/// A client for `info`, with the configured TLS files when it is TLS.
fn client_for(info: ConnectionInfo, s: &RedisSettings) -> Result<Client, StoreError> {
    let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
    match certificates(s) {
        Some(certs) if tls => Client::build_with_tls(info, certs),
        _ => Client::open(info),
    }
    .map_err(|e| StoreError::Unavailable(format!("Redis client: {:?}", e.kind())))
}

impl Connector {
    /// Builds the clients; connects nothing yet (fails only for settings
    /// that cannot be used).
    pub(super) fn new(s: &RedisSettings) -> Result<Connector, StoreError> {
        if s.tls.is_some() {
            // The Redis client asks rustls for the process's provider; the
            // binary installs ring at start, this covers library callers
            // (a no-op when one is installed).
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let kind = match &s.mode {
            RedisMode::Standalone => {
                let url = s.urls.first().ok_or_else(|| unusable("store.url"))?;
                let client = client_for(node_info(url, s)?, s)?;
                let lazy = || {
                    ConnectionManager::new_lazy_with_config(client.clone(), manager_config(s))
                        .map_err(|e| StoreError::Unavailable(e.to_string()))
                };
                let manager = lazy()?;
                let durable = if s.wait_replicas > 0 {
                    lazy()?
                } else {
                    manager.clone()
                };
                Kind::Standalone {
                    client,
                    manager,
                    durable,
                }
            }
            RedisMode::Sentinel { master } => {
                let mut sentinels = Vec::new();
                for url in &s.urls {
                    crate::config::redis_url::check(url).map_err(StoreError::Unavailable)?;
                    let info = url
                        .as_str()
                        .into_connection_info()
                        .map_err(|_| unusable("Sentinel URL"))?;
                    sentinels.push(with_credentials(
                        info,
                        s.sentinel_username.as_deref(),
                        s.sentinel_password.as_ref(),
                    ));
                }
                Kind::Sentinel(SentinelMaster {
                    sentinels,
                    master_name: master.clone(),
                    settings: Box::new(s.clone()),
                    manager_config: manager_config(s),
                    current: Mutex::new(None),
                    stale: Arc::new(Staleness::new()),
                    resolving: tokio::sync::Mutex::new(None),
                    generation: std::sync::atomic::AtomicU64::new(0),
                })
            }
            RedisMode::Cluster => {
                let mut seeds = Vec::new();
                for url in &s.urls {
                    seeds.push(client_for(node_info(url, s)?, s)?);
                }
                Kind::Cluster {
                    builder_settings: Box::new(s.clone()),
                    seeds,
                    conn: LazyCluster::default(),
                    durable: LazyCluster::default(),
                }
            }
        };
        let (switched, _) = tokio::sync::watch::channel(0);
        let watcher = match &kind {
            Kind::Sentinel(m) => Some(tokio::spawn(watch_sentinels(
                m.sentinels.clone(),
                m.settings.clone(),
                m.stale.clone(),
                switched.clone(),
            ))),
            _ => None,
        };
        Ok(Connector {
            kind,
            next_seed: AtomicUsize::new(0),
            switched,
            watcher,
        })
    }

    /// A connection for the next command. Sentinel: resolves the master
    /// first if it is unknown or stale. Cluster: connects on first use.
    pub(super) async fn conn(&self, lane: Lane) -> Result<Conn, StoreError> {
        match &self.kind {
            Kind::Standalone { manager, .. } if lane == Lane::Main => {
                Ok(Conn::Single(manager.clone()))
            }
            Kind::Standalone { durable, .. } => Ok(Conn::Single(durable.clone())),
            Kind::Sentinel(m) => m.manager(lane).await.map(Conn::Single),
            Kind::Cluster {
                builder_settings,
                conn,
                durable,
                ..
            } => {
                let lane = if lane == Lane::Durable && builder_settings.wait_replicas > 0 {
                    durable
                } else {
                    conn
                };
                lane.get(builder_settings).await.map(Conn::Cluster)
            }
        }
    }

    /// Tells the connector a command failed with `e`: true if it was a
    /// failover symptom after which the command may be sent again (the
    /// Sentinel master is resolved anew before the next command).
    pub(super) fn failed(&self, e: &RedisError) -> bool {
        let Kind::Sentinel(m) = &self.kind else {
            return false;
        };
        let readonly = e.kind() == ErrorKind::Server(ServerErrorKind::ReadOnly);
        // A restarted node still loading its data set (an old master
        // coming back, about to be made a replica).
        let loading = e.kind() == ErrorKind::Server(ServerErrorKind::BusyLoading);
        if readonly
            || loading
            || e.is_connection_refusal()
            || e.is_io_error()
            || e.is_connection_dropped()
        {
            m.stale.mark();
        }
        // Nothing ran: a replica or a loading node refused the command, or
        // nothing was sent.
        readonly || loading || e.is_connection_refusal()
    }

    /// A receiver that changes when the Sentinels switch the master.
    pub(super) fn master_switches(&self) -> tokio::sync::watch::Receiver<u64> {
        self.switched.subscribe()
    }

    /// How many times the Sentinel master was replaced (0 otherwise).
    pub(super) fn generation(&self) -> u64 {
        match &self.kind {
            Kind::Sentinel(m) => m.generation.load(Ordering::Acquire),
            _ => 0,
        }
    }

    /// Sentinel: asks the Sentinels again and says whether the master
    /// changed since [`Connector::generation`] was `since` (always false
    /// otherwise: a cluster connection follows `MOVED` by itself).
    pub(super) async fn master_moved_since(&self, since: u64) -> bool {
        let Kind::Sentinel(m) = &self.kind else {
            return false;
        };
        m.stale.mark();
        let _ = m.resolve().await;
        m.generation.load(Ordering::Acquire) != since
    }

    /// A client for the revocation subscriber's next connection: the one
    /// server, the master as the Sentinels say now, or the next seed node.
    pub(super) async fn pubsub_client(&self) -> Result<Client, String> {
        match &self.kind {
            Kind::Standalone { client, .. } => Ok(client.clone()),
            Kind::Sentinel(m) => {
                let (_, client) = m.resolve().await.map_err(|e| e.to_string())?;
                Ok(client)
            }
            Kind::Cluster { seeds, .. } => {
                let i = self.next_seed.fetch_add(1, Ordering::Relaxed);
                seeds
                    .get(i % seeds.len().max(1))
                    .cloned()
                    .ok_or_else(|| "no seed nodes".to_owned())
            }
        }
    }

    /// Clients for every master node (cluster) or the one server: for
    /// SCAN, which sees one node's keys only.
    pub(super) async fn scan_targets(&self) -> Result<Vec<Conn>, StoreError> {
        match &self.kind {
            Kind::Cluster {
                builder_settings, ..
            } => {
                let mut conn = self.conn(Lane::Main).await?;
                let nodes: Vec<Vec<Value>> = match &mut conn {
                    Conn::Cluster(c) => ::redis::cmd("CLUSTER")
                        .arg("SHARDS")
                        .query_async::<Vec<Value>>(c)
                        .await
                        .map(|shards| shards.into_iter().filter_map(master_of_shard).collect())
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?,
                    Conn::Single(_) => Vec::new(),
                };
                let mut out = Vec::new();
                for node in nodes {
                    let Some((host, port)) = endpoint(&node) else {
                        continue;
                    };
                    let tls = builder_settings.tls.is_some();
                    let url = format!("{}://{host}:{port}", if tls { "rediss" } else { "redis" });
                    let client = client_for(node_info(&url, builder_settings)?, builder_settings)?;
                    let m = ConnectionManager::new_with_config(
                        client,
                        manager_config(builder_settings),
                    )
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    out.push(Conn::Single(m));
                }
                Ok(out)
            }
            _ => Ok(vec![self.conn(Lane::Main).await?]),
        }
    }
}

/// The master node's attributes (a flat key/value list) in one entry of
/// `CLUSTER SHARDS`.
fn master_of_shard(shard: Value) -> Option<Vec<Value>> {
    let fields = match shard {
        Value::Array(v) => v,
        Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        _ => return None,
    };
    let mut it = fields.into_iter();
    while let Some(k) = it.next() {
        let v = it.next()?;
        if as_text(&k).as_deref() == Some("nodes") {
            let Value::Array(nodes) = v else { return None };
            return nodes.into_iter().find_map(|n| {
                let attrs = match n {
                    Value::Array(a) => a,
                    Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                    _ => return None,
                };
                (field(&attrs, "role").as_deref() == Some("master")
                    && field(&attrs, "health").as_deref() == Some("online"))
                .then_some(attrs)
            });
        }
    }
    None
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn field(attrs: &[Value], name: &str) -> Option<String> {
    attrs
        .chunks(2)
        .find(|kv| kv.first().and_then(as_text).as_deref() == Some(name))
        .and_then(|kv| kv.get(1).and_then(as_text))
}

fn endpoint(attrs: &[Value]) -> Option<(String, String)> {
    let host = field(attrs, "endpoint").or_else(|| field(attrs, "ip"))?;
    let port = field(attrs, "port").or_else(|| field(attrs, "tls-port"))?;
    Some((host, port))
}

async fn cluster_connection(s: &RedisSettings) -> Result<ClusterConnection, StoreError> {
    let mut infos = Vec::new();
    for url in &s.urls {
        infos.push(node_info(url, s)?);
    }
    let mut builder = ClusterClientBuilder::new(infos)
        .connection_timeout(s.connect_timeout)
        .response_timeout(s.response_timeout)
        .retries(2)
        .min_retry_wait(20)
        .max_retry_wait(200);
    if let Some(u) = &s.username {
        builder = builder.username(u);
    }
    if let Some(p) = &s.password {
        builder = builder.password(String::from_utf8_lossy(p.expose()));
    }
    if let Some(certs) = certificates(s) {
        builder = builder.tls(TlsMode::Secure).certs(certs);
    }
    let client = builder
        .build()
        .map_err(|e| StoreError::Unavailable(format!("Redis Cluster client: {:?}", e.kind())))?;
    let bound = s.connect_timeout.saturating_mul(2);
    tokio::time::timeout(bound, client.get_async_connection())
        .await
        .map_err(|_| StoreError::Unavailable("connecting to the Redis Cluster timed out".into()))?
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

impl SentinelMaster {
    /// The manager for the master, resolving it first when stale.
    async fn manager(&self, lane: Lane) -> Result<ConnectionManager, StoreError> {
        let pick = |c: &Master| match lane {
            Lane::Main => c.main.clone(),
            Lane::Durable => c.durable.clone(),
        };
        if !self.stale.is_stale() {
            if let Some(c) = lock(&self.current).as_ref() {
                return Ok(pick(c));
            }
        }
        self.resolve().await?;
        lock(&self.current)
            .as_ref()
            .map(pick)
            .ok_or_else(|| StoreError::Unavailable("no Redis master known".into()))
    }

    /// Asks the Sentinels where the master is (one question at a time, at
    /// most every [`RESOLVE_EVERY`]); keeps the manager when it has not
    /// moved. Returns its address and a client for it.
    async fn resolve(&self) -> Result<(String, Client), StoreError> {
        let mut last = self.resolving.lock().await;
        let recent = last.is_some_and(|t| t.elapsed() < RESOLVE_EVERY);
        if recent && !self.stale.is_stale() {
            if let Some(c) = lock(&self.current).as_ref() {
                return Ok((c.addr.clone(), c.client.clone()));
            }
        }
        if recent {
            tokio::time::sleep_until(last.map_or_else(Instant::now, |t| t + RESOLVE_EVERY)).await;
        }
        *last = Some(Instant::now());
        let seen = self.stale.seen();
        let (host, port) = self.ask_sentinels().await?;
        let addr = format!("{host}:{port}");
        if let Some(c) = lock(&self.current).as_ref() {
            if c.addr == addr {
                self.stale.clear_up_to(seen);
                return Ok((addr, c.client.clone()));
            }
        }
        let tls = self.settings.tls.is_some();
        let url = format!("{}://{host}:{port}", if tls { "rediss" } else { "redis" });
        let client = client_for(node_info(&url, &self.settings)?, &self.settings)?;
        let lazy = || {
            ConnectionManager::new_lazy_with_config(client.clone(), self.manager_config.clone())
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        };
        let main = lazy()?;
        let durable = if self.settings.wait_replicas > 0 {
            lazy()?
        } else {
            main.clone()
        };
        tracing::info!(master = %addr, "Redis master resolved through Sentinel");
        *lock(&self.current) = Some(Master {
            addr: addr.clone(),
            client: client.clone(),
            main,
            durable,
        });
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.stale.clear_up_to(seen);
        Ok((addr, client))
    }

    /// `SENTINEL GET-MASTER-ADDR-BY-NAME` on each Sentinel in turn until
    /// one answers with an address.
    async fn ask_sentinels(&self) -> Result<(String, u16), StoreError> {
        let s = &self.settings;
        for info in &self.sentinels {
            let client = match client_for(info.clone(), s) {
                Ok(c) => c,
                Err(_) => continue,
            };
            let ask = async {
                let mut c = client.get_multiplexed_async_connection().await?;
                ::redis::cmd("SENTINEL")
                    .arg("GET-MASTER-ADDR-BY-NAME")
                    .arg(&self.master_name)
                    .query_async::<Option<(String, u16)>>(&mut c)
                    .await
            };
            let bound = s.connect_timeout.saturating_add(s.response_timeout);
            match tokio::time::timeout(bound, ask).await {
                Ok(Ok(Some(found))) => return Ok(found),
                Ok(Ok(None)) => tracing::warn!(
                    master = %self.master_name,
                    "a Sentinel does not know this master"
                ),
                Ok(Err(e)) => tracing::debug!(error = %e, "a Sentinel did not answer"),
                Err(_) => tracing::debug!("a Sentinel did not answer in time"),
            }
        }
        Err(StoreError::Unavailable(
            "no Sentinel named the Redis master".into(),
        ))
    }
}

/// The master as last resolved: its address, a client and the managers
/// of both lanes.
struct Master {
    addr: String,
    client: Client,
    main: ConnectionManager,
    durable: ConnectionManager,
}

type Current = Option<Master>;

fn lock(m: &Mutex<Current>) -> std::sync::MutexGuard<'_, Current> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::{slot, Staleness};

    #[test]
    fn a_mark_made_while_resolving_outlives_the_resolve() {
        let s = Staleness::new();
        assert!(s.is_stale());
        // A resolve reads the marks, asks the Sentinels (old answer)...
        let seen = s.seen();
        // ...while `+switch-master` marks the master stale...
        s.mark();
        // ...and then clears what it saw: the switch is still pending.
        s.clear_up_to(seen);
        assert!(s.is_stale());
        // The next resolve clears it.
        let seen = s.seen();
        s.clear_up_to(seen);
        assert!(!s.is_stale());
        // An older resolve finishing late clears nothing new.
        s.mark();
        s.clear_up_to(seen);
        assert!(s.is_stale());
    }

    #[test]
    fn slots_match_redis_cluster_keyslot() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        assert_eq!(slot(b"a{}b"), slot(b"a{}b"));
        assert_eq!(slot(b"123456789"), 0x31C3);
    }
}

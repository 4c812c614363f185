//! Test helper: Redis deployments beyond one server, from real
//! `redis-server` processes on free 127.0.0.1 ports in a temp dir.
//!
//! - [`RedisCluster`]: a local Redis Cluster of 3 masters, each with one
//!   replica, made with `redis-cli --cluster create`; kill a master with
//!   [`RedisCluster::kill_master_of`] and wait for its replica to take over.
//! - [`SentinelSet`]: 1 master, 1 replica and 3 Sentinels watching it as
//!   `mymaster` (quorum 2, down after 1 s); `SENTINEL FAILOVER` and SIGKILL
//!   of the master.
//! - [`TlsRedis`]: one server that speaks only TLS (`--port 0
//!   --tls-port`), with a CA and certificates generated here (rcgen), and
//!   optionally an ACL user that may run only what Portcullis needs
//!   ([`PORTCULLIS_ACL`]).
//!
//! Every process is SIGKILLed on drop. `shared_*` give one deployment per
//! test binary while any test holds it (each test uses its own key
//! prefix). Plain module file: other test crates include it next to
//! `redis.rs`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

const REDIS_SERVER: &str = "/usr/bin/redis-server";
const REDIS_CLI: &str = "redis-cli";
const DEADLINE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(25);

/// The ACL rule of the user Portcullis needs: its keys and channel, and
/// the commands it sends (redis-rs may fall back from `EVALSHA` to `EVAL`
/// or `SCRIPT LOAD`; the `CLIENT SETINFO` it sends on connect may be
/// refused, and Redis 7.0 does not know it). The README lists the same
/// commands.
pub const PORTCULLIS_ACL: &str = "resetkeys resetchannels ~portcullis:* &portcullis:* \
-@all +ping +select +get +set +del +exists +incr +pexpire +pttl \
+sadd +srem +smembers +scard +zadd +zremrangebyscore +zcard +eval +evalsha +script|load \
+publish +subscribe +unsubscribe +scan +wait +cluster|slots +cluster|shards +readonly";

/// A free TCP port on 127.0.0.1, never one this process was given before
/// (deployments start several nodes at once).
pub use super::ports::free_port;

/// One redis-server (or Sentinel) process on a TCP port.
#[derive(Debug)]
pub struct Node {
    pub port: u16,
    child: Mutex<Option<Child>>,
    dir: PathBuf,
    args: Vec<String>,
}

impl Node {
    fn spawn(dir: &Path, port: u16, args: Vec<String>) -> Node {
        let node = Node {
            port,
            child: Mutex::new(None),
            dir: dir.to_owned(),
            args,
        };
        node.start();
        node
    }

    /// Starts (again) with the same arguments.
    pub fn start(&self) {
        let child = Command::new(REDIS_SERVER)
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        *self.child.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&self) {
        if let Some(mut c) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(Child::id)
    }

    /// `redis-cli -p PORT ARGS…` (plain TCP), trimmed stdout; `None` if
    /// it could not run or connect.
    pub fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new(REDIS_CLI)
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
    }

    pub fn wait_ready(&self) {
        assert!(
            self.try_ready(),
            "redis-server on port {} exited",
            self.port
        );
    }

    /// Waits until it answers PING; false if it exited first (e.g. its
    /// port was taken meanwhile by someone's outgoing connection).
    pub fn try_ready(&self) -> bool {
        let mut exited = false;
        wait_for(&format!("redis on port {} answers PING", self.port), || {
            let status = self
                .child
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_mut()
                .map(|c| c.try_wait());
            if let Some(Ok(Some(_))) = status {
                exited = true;
                return true;
            }
            self.cli(&["PING"]).as_deref() == Some("PONG")
        });
        !exited
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `cond` until it holds; panics after [`DEADLINE`].
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(POLL);
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

fn base_args(port: u16) -> Vec<String> {
    strings(&[
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--logfile",
        &format!("redis-{port}.log"),
    ])
}

// ---------------------------------------------------------------- Cluster

/// A local Redis Cluster: 3 masters, 3 replicas.
#[derive(Debug)]
pub struct RedisCluster {
    pub nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

static SHARED_CLUSTER: Mutex<Weak<RedisCluster>> = Mutex::new(Weak::new());

impl RedisCluster {
    pub fn shared() -> Arc<RedisCluster> {
        let mut slot = SHARED_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.upgrade() {
            return c;
        }
        let c = Arc::new(RedisCluster::start());
        *slot = Arc::downgrade(&c);
        c
    }

    pub fn start() -> RedisCluster {
        let dir = tempfile::Builder::new()
            .prefix("rcluster")
            .tempdir()
            .unwrap();
        let mut nodes = Vec::new();
        while nodes.len() < 6 {
            let port = free_port();
            let bus = free_port();
            let mut args = base_args(port);
            args.extend(strings(&[
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
                "--cluster-config-file",
                &format!("nodes-{port}.conf"),
                "--cluster-node-timeout",
                "1000",
                // A replica takes over at once, whatever its lag.
                "--cluster-replica-validity-factor",
                "0",
            ]));
            let node = Node::spawn(dir.path(), port, args);
            // A port taken between choosing and binding: choose again.
            if node.try_ready() {
                nodes.push(node);
            }
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new(REDIS_CLI)
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = RedisCluster { nodes, dir };
        cluster.wait_ok();
        cluster
    }

    /// Every live node says `cluster_state:ok`, and every master's
    /// replica is in sync (else `WAIT` finds none).
    pub fn wait_ok(&self) {
        wait_for("cluster_state:ok on every node", || {
            self.nodes.iter().filter(|n| n.pid().is_some()).all(|n| {
                n.cli(&["CLUSTER", "INFO"])
                    .is_some_and(|i| i.contains("cluster_state:ok"))
            })
        });
        wait_for("every master's replica in sync", || {
            self.masters().iter().all(|m| {
                m.cli(&["INFO", "replication"])
                    .is_some_and(|i| i.contains("state=online"))
            })
        });
    }

    /// The seed URLs (every node).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    /// Nodes that are masters now.
    pub fn masters(&self) -> Vec<&Node> {
        self.nodes
            .iter()
            .filter(|n| n.cli(&["ROLE"]).is_some_and(|r| r.starts_with("master")))
            .collect()
    }

    /// SIGKILLs the master that holds `key` and waits until its replica
    /// has taken over (the cluster is `ok` again). Returns the killed port.
    pub fn kill_master_of(&self, key: &str) -> u16 {
        let slot = self.nodes[0]
            .cli(&["CLUSTER", "KEYSLOT", key])
            .unwrap()
            .parse::<u16>()
            .unwrap();
        let owner = self
            .masters()
            .into_iter()
            .find(|n| {
                n.cli(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
                    .is_some()
                    && n.cli(&["CLUSTER", "SLOTS"]).is_some()
                    && owns(n, slot)
            })
            .expect("a master owns the slot");
        let port = owner.port;
        owner.kill();
        wait_for("a replica took over", || {
            self.nodes.iter().filter(|n| n.pid().is_some()).all(|n| {
                n.cli(&["CLUSTER", "INFO"])
                    .is_some_and(|i| i.contains("cluster_state:ok"))
            })
        });
        port
    }
}

/// Whether `node` (a master) serves `slot`, by its `CLUSTER NODES` line.
fn owns(node: &Node, slot: u16) -> bool {
    let Some(nodes) = node.cli(&["CLUSTER", "NODES"]) else {
        return false;
    };
    nodes
        .lines()
        .filter(|l| l.contains("myself"))
        .flat_map(|l| {
            l.split_whitespace()
                .skip(8)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .any(|range| {
            let (a, b) = range.split_once('-').unwrap_or((&range, &range));
            matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
        })
}

// ---------------------------------------------------------------- Sentinel

pub const MASTER_NAME: &str = "mymaster";

/// 1 master, 1 replica, 3 Sentinels.
#[derive(Debug)]
pub struct SentinelSet {
    /// The data nodes, in start order (the first started as master).
    pub data: Vec<Node>,
    pub sentinels: Vec<Node>,
    dir: tempfile::TempDir,
}

static SHARED_SENTINEL: Mutex<Weak<SentinelSet>> = Mutex::new(Weak::new());

impl SentinelSet {
    pub fn shared() -> Arc<SentinelSet> {
        let mut slot = SHARED_SENTINEL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = slot.upgrade() {
            return c;
        }
        let c = Arc::new(SentinelSet::start());
        *slot = Arc::downgrade(&c);
        c
    }

    pub fn start() -> SentinelSet {
        let dir = tempfile::Builder::new()
            .prefix("rsentinel")
            .tempdir()
            .unwrap();
        let master_port = free_port();
        let master = Node::spawn(dir.path(), master_port, base_args(master_port));
        master.wait_ready();
        let replica_port = free_port();
        let mut args = base_args(replica_port);
        args.extend(strings(&[
            "--replicaof",
            "127.0.0.1",
            &master_port.to_string(),
        ]));
        let replica = Node::spawn(dir.path(), replica_port, args);
        replica.wait_ready();
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let conf = dir.path().join(format!("sentinel-{port}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\nlogfile sentinel-{port}.log\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 10000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n"
                ),
            )
            .unwrap();
            let args = vec![conf.display().to_string(), "--sentinel".to_owned()];
            sentinels.push(Node::spawn(dir.path(), port, args));
        }
        let set = SentinelSet {
            data: vec![master, replica],
            sentinels,
            dir,
        };
        set.wait_settled();
        set
    }

    /// Every Sentinel knows the master, its replica and the two other
    /// Sentinels, and the replica is in sync.
    pub fn wait_settled(&self) {
        wait_for("sentinels see the master, a replica and each other", || {
            self.sentinels.iter().all(|s| {
                s.cli(&["SENTINEL", "MASTER", MASTER_NAME])
                    .is_some_and(|m| {
                        let lines: Vec<&str> = m.lines().collect();
                        let get = |k: &str| {
                            lines
                                .iter()
                                .position(|l| *l == k)
                                .and_then(|i| lines.get(i + 1).copied())
                        };
                        get("num-slaves") == Some("1")
                            && get("num-other-sentinels") == Some("2")
                            && get("flags") == Some("master")
                    })
            }) && self.master().is_some_and(|m| {
                m.cli(&["INFO", "replication"])
                    .is_some_and(|i| i.contains("connected_slaves:1") && i.contains("state=online"))
            })
        });
    }

    /// The data node that says it is master now (and that the Sentinels
    /// name).
    pub fn master(&self) -> Option<&Node> {
        let port = self.sentinels[0]
            .cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME])?
            .lines()
            .nth(1)?
            .parse::<u16>()
            .ok()?;
        self.data
            .iter()
            .find(|n| n.port == port && n.cli(&["ROLE"]).is_some_and(|r| r.starts_with("master")))
    }

    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(Node::url).collect()
    }

    /// `SENTINEL FAILOVER`, then waits until the other node is master and
    /// the Sentinels say so. Returns the new master's port.
    pub fn failover(&self) -> u16 {
        let old = self.master().expect("a master").port;
        let reply = self.sentinels[0]
            .cli(&["SENTINEL", "FAILOVER", MASTER_NAME])
            .unwrap();
        assert_eq!(reply, "OK", "SENTINEL FAILOVER");
        self.wait_new_master(old)
    }

    /// SIGKILLs the master, waits for the Sentinels to promote the
    /// replica, then starts the old master again (it comes back as a
    /// replica). Returns the new master's port.
    pub fn kill_master(&self) -> u16 {
        let old = self.master().expect("a master");
        let old_port = old.port;
        old.kill();
        let new = self.wait_new_master(old_port);
        old.start();
        old.wait_ready();
        new
    }

    pub fn wait_new_master(&self, old: u16) -> u16 {
        let mut new = 0;
        wait_for("the Sentinels promoted the replica", || {
            match self.master() {
                Some(m) if m.port != old => {
                    new = m.port;
                    true
                }
                _ => false,
            }
        });
        new
    }
}

// ---------------------------------------------------------------- TLS

/// PEM files of a CA, a server certificate for 127.0.0.1/localhost and a
/// client certificate, all generated here.
#[derive(Debug)]
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that signed nothing here (for "unknown CA" cases).
    pub other_ca: PathBuf,
}

fn make_ca(name: &str) -> (rcgen::CertificateParams, rcgen::KeyPair, String) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    (params, key, pem)
}

impl TestPki {
    pub fn generate(dir: &Path) -> TestPki {
        let (ca_params, ca_key, ca_pem) = make_ca("portcullis test CA");
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>| {
            let params = rcgen::CertificateParams::new(names).unwrap();
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(vec!["127.0.0.1".into(), "localhost".into()]);
        let (client_cert, client_key) = leaf(vec!["portcullis-client".into()]);
        let (_, _, other_pem) = make_ca("some other CA");
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        TestPki {
            ca: write("ca.pem", &ca_pem),
            server_cert: write("server.pem", &server_cert),
            server_key: write("server.key", &server_key),
            client_cert: write("client.pem", &client_cert),
            client_key: write("client.key", &client_key),
            other_ca: write("other-ca.pem", &other_pem),
        }
    }
}

/// One TLS-only redis-server.
#[derive(Debug)]
pub struct TlsRedis {
    pub node: Node,
    pub pki: TestPki,
    dir: tempfile::TempDir,
}

impl TlsRedis {
    /// `require_client_cert`: `--tls-auth-clients yes` (else `no`).
    /// `acl_password`: adds user `portcullis` with [`PORTCULLIS_ACL`] and
    /// turns the default user off.
    pub fn start(require_client_cert: bool, acl_password: Option<&str>) -> TlsRedis {
        let dir = tempfile::Builder::new().prefix("rtls").tempdir().unwrap();
        let pki = TestPki::generate(dir.path());
        let port = free_port();
        let mut args = base_args(0);
        args.extend([
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            pki.server_cert.display().to_string(),
            "--tls-key-file".to_owned(),
            pki.server_key.display().to_string(),
            "--tls-ca-cert-file".to_owned(),
            pki.ca.display().to_string(),
            "--tls-auth-clients".to_owned(),
            if require_client_cert { "yes" } else { "no" }.to_owned(),
            "--logfile".to_owned(),
            "redis-tls.log".to_owned(),
        ]);
        if let Some(pw) = acl_password {
            // One argument per word, as redis-server reads its command line.
            let rule = format!("--user portcullis on >{pw} {PORTCULLIS_ACL} --user default off");
            args.extend(rule.split_whitespace().map(str::to_owned));
        }
        let node = Node::spawn(dir.path(), port, args);
        let server = TlsRedis { node, pki, dir };
        wait_for("TLS redis answers", || {
            server
                .cli(&["PING"])
                .is_some_and(|r| r == "PONG" || r.contains("NOAUTH"))
        });
        server
    }

    /// `redis-cli --tls … -p PORT ARGS…` with the client certificate,
    /// as the default user (or `user`/`password`).
    pub fn cli_as(&self, auth: Option<(&str, &str)>, args: &[&str]) -> Option<String> {
        let mut cmd = Command::new(REDIS_CLI);
        cmd.args(["--tls", "--cacert"])
            .arg(&self.pki.ca)
            .arg("--cert")
            .arg(&self.pki.client_cert)
            .arg("--key")
            .arg(&self.pki.client_key)
            .arg("-p")
            .arg(self.node.port.to_string());
        if let Some((u, p)) = auth {
            cmd.args(["--user", u, "--pass", p, "--no-auth-warning"]);
        }
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    pub fn cli(&self, args: &[&str]) -> Option<String> {
        self.cli_as(None, args)
    }

    /// `rediss://127.0.0.1:PORT` (the name in the certificate).
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.node.port)
    }
}

// ---------------------------------------------------------------- settings

use portcullis::store::{RedisMode, RedisSettings, RedisTls, StoreSettings};

/// The store on the cluster (no replica wait by default in tests: set
/// `wait_replicas` where the test is about it).
pub fn cluster_settings(c: &RedisCluster, prefix: &str) -> StoreSettings {
    StoreSettings::Redis(RedisSettings {
        mode: RedisMode::Cluster,
        urls: c.urls(),
        ..RedisSettings::standalone("", prefix)
    })
}

pub fn sentinel_settings(s: &SentinelSet, prefix: &str) -> StoreSettings {
    StoreSettings::Redis(RedisSettings {
        mode: RedisMode::Sentinel {
            master: MASTER_NAME.to_owned(),
        },
        urls: s.sentinel_urls(),
        ..RedisSettings::standalone("", prefix)
    })
}

/// The store on `t` over TLS with its CA and client certificate, as user
/// `portcullis` with `password` when given.
pub fn tls_settings(t: &TlsRedis, prefix: &str, password: Option<&str>) -> StoreSettings {
    StoreSettings::Redis(RedisSettings {
        username: password.map(|_| "portcullis".to_owned()),
        password: password.map(|p| portcullis::config::Secret::new(p.as_bytes().to_vec())),
        tls: Some(RedisTls {
            ca: Some(std::fs::read(&t.pki.ca).unwrap()),
            client: Some((
                std::fs::read(&t.pki.client_cert).unwrap(),
                portcullis::config::Secret::new(std::fs::read(&t.pki.client_key).unwrap()),
            )),
        }),
        ..RedisSettings::standalone(t.url(), prefix)
    })
}

/// Every key under `prefix` on the nodes of `clients` (masters and
/// replicas alike), each checked to have a TTL.
pub async fn keys_all_with_ttl(clients: &[redis::Client], prefix: &str) -> Vec<String> {
    let mut keys = std::collections::BTreeSet::new();
    for client in clients {
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{prefix}*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            for key in batch {
                let ttl: i64 = redis::cmd("PTTL")
                    .arg(&key)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                assert_ne!(ttl, -1, "key {key} has no TTL");
                keys.insert(key);
            }
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
    }
    keys.into_iter().collect()
}

/// Plain clients for every master of the cluster.
pub fn cluster_master_clients(c: &RedisCluster) -> Vec<redis::Client> {
    c.masters()
        .iter()
        .map(|n| redis::Client::open(n.url()).unwrap())
        .collect()
}

/// A client for the TLS server as the default user or `portcullis`.
pub fn tls_client(t: &TlsRedis, password: Option<&str>) -> redis::Client {
    let url = match password {
        Some(pw) => format!("rediss://portcullis:{pw}@127.0.0.1:{}", t.node.port),
        None => t.url(),
    };
    redis::Client::build_with_tls(
        url,
        redis::TlsCertificates {
            client_tls: Some(redis::ClientTlsConfig {
                client_cert: std::fs::read(&t.pki.client_cert).unwrap(),
                client_key: std::fs::read(&t.pki.client_key).unwrap(),
            }),
            root_cert: Some(std::fs::read(&t.pki.ca).unwrap()),
        },
    )
    .unwrap()
}

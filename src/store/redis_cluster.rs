//! The session operations of the Redis backend in cluster mode, where a
//! session (`{prefix}ses:{<id>}`) and its address's index
//! (`{prefix}idx:{<email hash>}`) live in different hash slots, so the
//! one-script steps of the other modes become short sequences of
//! single-slot commands.
//!
//! # What it owns
//!
//! The order of those steps, chosen so that no interleaving leaves a
//! session that revocation cannot reach:
//!
//! - Storing: the session first, then its id into the index. If the
//!   second step fails the caller gets the error and issues no cookie; the
//!   stored session is unreachable and expires with its idle TTL. An id
//!   is in an index only after its session was written, so pruning (an id
//!   whose session is gone) never drops a session still being stored.
//! - Revoking all: the ids read from the index are deleted (and each
//!   published), then only those ids are removed from the index, so a
//!   session stored meanwhile stays indexed and revocable.
//!
//! # What it does not own
//!
//! Key names, deadlines, retries and `WAIT` (`super::redis`).
//!
//! # Threat model
//!
//! As the other modes: ids are hashes, never logged.

use std::time::Duration;

use ::redis::Script;
use std::sync::LazyLock;

use super::redis::RedisStore;
use super::redis_conn::Lane;
use super::ttl::ttl_ms;
use super::StoreError;

/// KEYS: index. ARGV: id, lifetime ms. Adds the id and keeps the index
/// TTL at least the new lifetime.
static INDEX_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local cur = redis.call('PTTL', KEYS[1])
redis.call('SADD', KEYS[1], ARGV[1])
local want = tonumber(ARGV[2])
if cur > want then want = cur end
redis.call('PEXPIRE', KEYS[1], want)
return 1
"#,
    )
});

impl RedisStore {
    pub(super) async fn cluster_put_session(
        &self,
        id_hash: &str,
        email_hash: &str,
        value: &str,
        ttl: Duration,
        lifetime: Duration,
    ) -> Result<(), StoreError> {
        let session_key = self.session_key(id_hash);
        let index_key = self.index_key(email_hash);
        let mut set = ::redis::cmd("SET");
        set.arg(&session_key).arg(value).arg("PX").arg(ttl_ms(ttl));
        let set = &set;
        self.durable_write(&session_key, |mut c| async move {
            set.query_async::<()>(&mut c).await
        })
        .await?;
        let mut inv = INDEX_ADD.prepare_invoke();
        inv.key(&index_key).arg(id_hash).arg(ttl_ms(lifetime));
        let inv = &inv;
        self.durable_write(&index_key, |mut c| async move {
            inv.invoke_async::<()>(&mut c).await
        })
        .await?;
        // Pruning is housekeeping: its failure does not undo the sign-in.
        if let Err(e) = self.cluster_live_sessions(email_hash).await {
            tracing::debug!(error = %e, "pruning a session index failed");
        }
        Ok(())
    }

    pub(super) async fn cluster_delete_session(
        &self,
        id_hash: &str,
        email_hash: &str,
    ) -> Result<(), StoreError> {
        let session_key = self.session_key(id_hash);
        let index_key = self.index_key(email_hash);
        self.durable_cmd::<()>(&session_key, ::redis::cmd("DEL").arg(&session_key))
            .await?;
        self.durable_cmd::<()>(
            &index_key,
            ::redis::cmd("SREM").arg(&index_key).arg(id_hash),
        )
        .await?;
        self.publish(id_hash).await
    }

    pub(super) async fn cluster_revoke_all(&self, email_hash: &str) -> Result<usize, StoreError> {
        let index_key = self.index_key(email_hash);
        let ids = self.members(&index_key).await?;
        let mut deleted = 0;
        for id in &ids {
            let session_key = self.session_key(id);
            let n: usize = self
                .durable_cmd(&session_key, ::redis::cmd("DEL").arg(&session_key))
                .await?;
            deleted += n;
            self.publish(id).await?;
        }
        if !ids.is_empty() {
            let _: usize = self
                .durable_cmd(&index_key, ::redis::cmd("SREM").arg(&index_key).arg(&ids))
                .await?;
        }
        Ok(deleted)
    }

    /// The live sessions of an index as `(id, stored value)`; ids whose
    /// session is gone are removed from it.
    pub(super) async fn cluster_live_sessions(
        &self,
        email_hash: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let index_key = self.index_key(email_hash);
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for id in self.members(&index_key).await? {
            let mut get = ::redis::cmd("GET");
            get.arg(self.session_key(&id));
            let get = &get;
            let raw: Option<String> = self
                .run_on(Lane::Main, self.deadline(), |mut c| async move {
                    get.query_async(&mut c).await
                })
                .await?;
            match raw {
                Some(raw) => live.push((id, raw)),
                None => dead.push(id),
            }
        }
        if !dead.is_empty() {
            let mut srem = ::redis::cmd("SREM");
            srem.arg(&index_key).arg(&dead);
            let srem = &srem;
            self.run_on(Lane::Main, self.deadline(), |mut c| async move {
                srem.query_async::<usize>(&mut c).await
            })
            .await?;
        }
        Ok(live)
    }

    async fn members(&self, index_key: &str) -> Result<Vec<String>, StoreError> {
        let mut cmd = ::redis::cmd("SMEMBERS");
        cmd.arg(index_key);
        let cmd = &cmd;
        self.run_on(Lane::Main, self.deadline(), |mut c| async move {
            cmd.query_async(&mut c).await
        })
        .await
    }

    /// Classic `PUBLISH`: a cluster sends it to every node, so a
    /// subscriber on any node hears it.
    async fn publish(&self, id_hash: &str) -> Result<(), StoreError> {
        let mut cmd = ::redis::cmd("PUBLISH");
        cmd.arg(self.channel()).arg(id_hash);
        let cmd = &cmd;
        self.run_on(Lane::Main, self.deadline(), |mut c| async move {
            cmd.query_async::<()>(&mut c).await
        })
        .await
    }

    /// One command on `key` as a [`RedisStore::durable_write`].
    async fn durable_cmd<T: ::redis::FromRedisValue>(
        &self,
        key: &str,
        cmd: &mut ::redis::Cmd,
    ) -> Result<T, StoreError> {
        let cmd = &*cmd;
        self.durable_write(
            key,
            |mut c| async move { cmd.query_async::<T>(&mut c).await },
        )
        .await
    }
}

//! Shared state, built once at start: the live configuration (swapped
//! whole on reload), the store, the mailer, the key and the session cache,
//! behind the one `Arc<App>` every request reaches. Also the per-request
//! context the sign-in flow works with ([`Ctx`]) and the one reading of a
//! request's session ([`App::identity`]).
//!
//! Knows nothing about sockets or about how a request is sequenced (that is
//! [`crate::app`]).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::header::HeaderMap;

use crate::config::{Config, Limits, Scheme};
use crate::cookies::{self, Kind};
use crate::crypto::Key;
use crate::forwarded::ClientInfo;
use crate::mail::{self, Mailer};
use crate::pages;
use crate::redirect::RedirectPolicy;
use crate::routes::RouteTable;
use crate::session::{self, Identity, SessionCache};
use crate::store::{Store, StoreError, StoreSettings};

/// What a configuration reload replaces as a whole.
pub struct Live {
    pub config: Config,
    pub pages: pages::Pages,
    pub routes: RouteTable,
    pub redirect: RedirectPolicy,
    pub stylesheet: Bytes,
    /// `[assertion]`: signer, token cache and JWKS (rebuilt on reload, so
    /// the key files are read again and the cache starts empty).
    pub assertion: Option<crate::assertion::Assertion>,
}

impl Live {
    pub fn new(config: Config) -> Live {
        let routes = RouteTable::new(&config.routes);
        let redirect = RedirectPolicy {
            allowed_hosts: config.route_hosts(),
            cookie_domain: config.session.cookie_domain.clone(),
        };
        let pages = pages::Pages::new(&config.ui).with_providers(
            config
                .providers
                .iter()
                .map(|p| (p.name.clone(), p.label.clone()))
                .collect(),
            config.login.email,
        );
        let stylesheet = Bytes::from(pages.stylesheet());
        let assertion = config
            .assertion
            .clone()
            .map(crate::assertion::Assertion::new);
        Live {
            assertion,
            pages,
            config,
            routes,
            redirect,
            stylesheet,
        }
    }

    /// The origin for links sent by mail: the configured host of the route
    /// that fits the request (with public_url's scheme and port), else
    /// public_url itself. Never the request's own Host.
    pub fn link_origin(&self, request_host: &str, scheme: Scheme) -> String {
        let public = &self.config.server.public_url;
        match self.routes.configured_host(request_host, scheme) {
            Some(h) => public.origin_for(h),
            None => public.origin(),
        }
    }
}

/// Everything shared by all requests: cheap to reach through one `Arc`.
pub struct App {
    pub(crate) live: ArcSwap<Live>,
    pub(crate) store: Store,
    pub(crate) mailer: Mailer,
    pub(crate) key: Key,
    pub(crate) sessions: SessionCache,
    pub(crate) audit: Arc<crate::audit::Audit>,
    pub(crate) metrics: crate::metrics::Metrics,
    /// Discovery and keys of the `[[provider]]`s.
    pub(crate) providers: Arc<crate::oidc::Registry>,
}

/// Per-request context handed to [`signin`](crate::signin).
pub struct Ctx<'a> {
    pub app: &'a App,
    pub live: &'a Live,
    pub client: &'a ClientInfo,
    pub https: bool,
    /// `scheme://host` as the browser sees this page (for Origin checks
    /// and same-origin redirects). Empty for forward-auth, which builds
    /// no links.
    pub origin: String,
    /// The request's host, used only to pick a configured host for links
    /// (empty for forward-auth).
    pub host_for_links: String,
    /// The request, for its audit lines.
    pub facts: crate::audit::RequestFacts<'a>,
}

impl Ctx<'_> {
    /// The signed-in identity of this request, if any.
    pub async fn current_identity(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Identity>, StoreError> {
        self.app.identity(self.live, headers, self.https).await
    }
}

/// Why the gateway cannot start. Each message is complete on its own (no
/// `source`, so `{:#}` does not print the cause a second time).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `store.url` cannot be used at all (an unreachable Redis is not an
    /// error: the gateway starts and says so).
    #[error("store.url ({url}): {reason}")]
    Store { url: String, reason: String },
    #[error("mail: {0}")]
    Mail(mail::MailError),
    #[error("log.audit_file ({path}): {reason}")]
    AuditFile { path: String, reason: String },
}

impl From<mail::MailError> for StartError {
    fn from(e: mail::MailError) -> StartError {
        StartError::Mail(e)
    }
}

/// The reason inside a store error, without the variant's own prefix.
fn store_reason(e: StoreError) -> String {
    match e {
        StoreError::Unavailable(m) | StoreError::Corrupt(m) => m,
    }
}

impl App {
    /// Opens the store, starts the mailer and the revocation listener.
    /// Must run inside the tokio runtime. A Redis that does not answer now
    /// is logged once (naming `store.url` and its address) and is not an
    /// error: sign-in answers 503 until it answers, and the connection
    /// comes up by itself.
    pub async fn new(config: Config) -> Result<Arc<App>, StartError> {
        let settings = StoreSettings::from(&config.store);
        let url = settings.redacted_url().unwrap_or_default();
        let store = Store::open(&settings).map_err(|e| StartError::Store {
            url: url.clone(),
            reason: store_reason(e),
        })?;
        if let Err(e) = store.ping().await {
            tracing::warn!(
                "store.url ({url}): Redis does not answer ({}); serving anyway, sign-in answers 503 until it does",
                store_reason(e)
            );
        }

        let key = match &config.session.secret {
            Some(s) => Key::new(s.expose()),
            None => Key::random(),
        };
        let sessions = SessionCache::new(config.session.revalidate, config.session.store_grace);
        let audit_path = config.log.audit_file.clone();
        let audit = crate::audit::Audit::open(audit_path.as_deref()).map_err(|e| {
            StartError::AuditFile {
                path: audit_path
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                reason: e.to_string(),
            }
        })?;
        let audit = Arc::new(audit);
        let mailer =
            Mailer::start_audited(mail::MailSettings::from(&config), Some(Arc::clone(&audit)))?;
        let metrics = crate::metrics::Metrics::new(config.admin.counts_requests());
        let (client, roots) = crate::oidc::fetch::Client::new(crate::oidc::fetch::TIMEOUT);
        if roots == 0 && !config.providers.is_empty() {
            tracing::warn!("provider: no trusted root certificates found on this system; https providers will fail (set SSL_CERT_FILE)");
        }
        // Active upstream health checks; they end with this configuration.
        crate::transport::upstream::health::start(&config.routes);
        let app = Arc::new(App {
            providers: Arc::new(crate::oidc::Registry::new(client)),
            metrics,
            live: ArcSwap::from_pointee(Live::new(config)),
            store,
            mailer,
            key,
            sessions,
            audit,
        });
        let weak = Arc::downgrade(&app);
        crate::oidc::registry::spawn_refresh(move || {
            let app = weak.upgrade()?;
            let providers = app.live.load().config.providers.clone();
            Some((Arc::clone(&app.providers), providers))
        });
        let weak = Arc::downgrade(&app);
        let mut revoked = app.store.revocations();
        tokio::spawn(async move {
            loop {
                match revoked.recv().await {
                    Ok(hex_tag) => match weak.upgrade() {
                        Some(app) => app.sessions.forget_hex(&hex_tag),
                        None => return,
                    },
                    // Some revocations were dropped: trust no cached session.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        match weak.upgrade() {
                            Some(app) => app.sessions.clear(),
                            None => return,
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(app)
    }

    /// Swaps in a new configuration (SIGHUP). What is read only at start
    /// (listeners, timers, the store, the mailer, the key) stays as it was:
    /// one note "`<key>`: restart to apply" for each such key whose value
    /// changed ([`Config::restart_keys`]).
    pub fn reload(&self, config: Config) -> Vec<String> {
        let old = self.live.load();
        let notes = old
            .config
            .restart_keys(&config)
            .into_iter()
            .map(|key| format!("{key}: restart to apply"))
            .collect();
        self.audit.reopen(config.log.audit_file.as_deref());
        crate::transport::upstream::health::start(&config.routes);
        self.live.store(Arc::new(Live::new(config)));
        notes
    }

    pub fn limits(&self) -> Limits {
        self.live.load().config.server.limits
    }

    pub fn config(&self) -> Arc<Live> {
        self.live.load_full()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn mailer(&self) -> &Mailer {
        &self.mailer
    }

    /// How many live sessions an address has in the store.
    pub async fn session_count(&self, email: &str) -> Result<usize, StoreError> {
        self.store
            .count_sessions(&self.key.hash_hex("email", email.as_bytes()))
            .await
    }

    /// Ends every session of an address, on every instance sharing the store.
    pub async fn revoke(&self, email: &str) -> Result<usize, StoreError> {
        let n = self
            .store
            .revoke_all(&self.key.hash_hex("email", email.as_bytes()))
            .await?;
        self.metrics.sessions_revoked(n as u64);
        let reason = format!("portcullis revoke: {n} session(s)");
        self.audit.record(
            &crate::audit::Entry::new(
                crate::audit::Event::SessionRevoked,
                crate::audit::Outcome::Success,
            )
            .email(email)
            .reason(&reason),
        );
        Ok(n)
    }

    /// Counts a configuration reload that worked (`ok`) or failed.
    pub fn reloaded(&self, ok: bool) {
        self.metrics.reloaded(ok);
    }

    /// The text of one `/metrics` scrape.
    pub fn metrics_text(&self) -> String {
        self.metrics.render(crate::metrics::Others {
            mail: self.mailer.stats(),
            store_errors: self.store.error_counts(),
            store_up: self.store.is_up(),
        })
    }

    /// Writes one audit line (for events outside a request: reloads).
    pub fn audit(&self, entry: &crate::audit::Entry<'_>) {
        self.audit.record(entry);
    }

    /// Resolves once the session `tag` is no longer valid here: logged out
    /// or revoked (on any instance: the revocation broadcast clears the
    /// cache), expired, or unknown to a store that stayed unreachable past
    /// the grace. Checked every [`SESSION_WATCH`].
    pub(crate) fn session_ends(
        self: &Arc<Self>,
        tag: [u8; 32],
        idle: Duration,
    ) -> crate::transport::SessionEnds {
        let app = Arc::downgrade(self);
        Box::pin(async move {
            loop {
                tokio::time::sleep(SESSION_WATCH).await;
                let Some(app) = app.upgrade() else { return };
                match app.sessions.check(&app.store, tag, idle).await {
                    Ok(Some(_)) => {}
                    _ => return,
                }
            }
        })
    }

    /// Reads and verifies the session cookie, then asks the cache.
    pub(crate) async fn identity(
        &self,
        live: &Live,
        headers: &HeaderMap,
        https: bool,
    ) -> Result<Option<Identity>, StoreError> {
        let domain = live.config.session.cookie_domain.as_deref();
        let name = cookies::name(Kind::Session, https, domain);
        let Some(tag) = crate::cookie_header::cookie(headers, name)
            .and_then(|v| session::verify_cookie(&self.key, v))
        else {
            return Ok(None);
        };
        self.sessions
            .check(&self.store, tag, live.config.session.idle_timeout)
            .await
    }
}

/// How often an open WebSocket tunnel checks that its session still holds.
const SESSION_WATCH: Duration = Duration::from_millis(500);

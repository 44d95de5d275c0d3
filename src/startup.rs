//! Wiring: the one place the real clock, OS randomness, SQL store and HTTP
//! router meet the domain. Tests call `build` with a fake clock.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use twostep_domain::crypto::Keyring;
use twostep_domain::notify::outbox::Senders;
use twostep_domain::notify::store::Sender;
use twostep_domain::ports::{Clock, OsRng};
use twostep_domain::rotation::KeyRotation;
use twostep_domain::service::Twostep;
use twostep_domain::settings::Settings;
use twostep_http::{AppState, WebConfig};
use twostep_store::SqlStore;

use crate::config::{KeySource, PhoneProvider, Resolved};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] twostep_store::ConnectError),
    #[error("cannot listen on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("{0}")]
    Domain(String),
}

/// Opens and migrates the store.
pub async fn open_store(
    database_url: &str,
    sqlite_synchronous: twostep_store::Synchronous,
) -> Result<SqlStore, StartError> {
    let store = SqlStore::connect_with(database_url, sqlite_synchronous).await?;
    let report = store.migrate().await?;
    for m in &report.applied {
        tracing::info!(migration = %m, "applied migration");
    }
    Ok(store)
}

/// The master keys as the domain holds them: the current and any retiring
/// ones, read again from the key file when it names a key not yet held.
pub fn keyring(resolved: &Resolved) -> Keyring {
    let keys = Keyring::with_keys(&resolved.master_key, &resolved.retiring_keys);
    match &resolved.key_source {
        KeySource::File(path) | KeySource::Generated(path) => {
            keys.with_source(Arc::new(crate::keyfile::FileKeySource::new(path.clone())))
        }
        KeySource::Config | KeySource::NotYet(_) => keys,
    }
}

/// The domain services over a store. The command line passes no wake-up
/// queue: only the server raises pushes.
pub fn domain(
    store: &SqlStore,
    resolved: &Resolved,
    clock: Arc<dyn Clock>,
    settings: Settings,
    wake_queue: Option<tokio::sync::mpsc::Sender<twostep_domain::factors::push::WakeJob>>,
) -> Result<Arc<Twostep>, StartError> {
    let twostep = Twostep::new(Arc::new(store.clone()), clock, Arc::new(OsRng), keyring(resolved), settings)
        .map_err(|e| StartError::Domain(e.to_string()))?;
    Ok(Arc::new(match wake_queue {
        Some(queue) => twostep.with_wake_queue(queue),
        None => twostep,
    }))
}

/// The server's VAPID key; `None` when Web Push is off (or, with odds of
/// 2⁻³², the derived bytes are no P-256 key). Derived from the original
/// master key until a key rotation pins it in the database.
pub async fn vapid_key(
    resolved: &Resolved,
    store: &SqlStore,
    clock: &dyn Clock,
) -> Result<Option<twostep_delivery::webpush::VapidKey>, StartError> {
    if resolved.push.web_push_subject.is_none() {
        return Ok(None);
    }
    let keys = keyring(resolved);
    let pinned = KeyRotation::new(store, &keys, clock, &OsRng)
        .pinned_vapid_seed()
        .await
        .map_err(|e| StartError::Domain(e.to_string()))?;
    // Before any rotation finished, the original key is the oldest one held.
    let original = resolved.retiring_keys.last().unwrap_or(&resolved.master_key);
    let seed = data_encoding::BASE64URL_NOPAD.encode(&pinned.unwrap_or_else(|| original.vapid_seed()));
    Ok(twostep_delivery::webpush::VapidKey::from_base64url(&seed).ok())
}

/// How push challenges wake devices beyond their long-poll.
fn push_wakers(
    resolved: &Resolved,
    vapid: Option<twostep_delivery::webpush::VapidKey>,
    clock: Arc<dyn Clock>,
) -> Result<Vec<Arc<dyn twostep_domain::factors::push::PushWaker>>, StartError> {
    let mut wakers: Vec<Arc<dyn twostep_domain::factors::push::PushWaker>> = Vec::new();
    if let (Some(key), Some(subject)) = (vapid, &resolved.push.web_push_subject) {
        let mut sender = twostep_delivery::webpush::WebPushSender::new(key, subject.clone())
            .map_err(|e| StartError::Domain(e.to_string()))?
            .with_clock(Arc::clone(&clock));
        if resolved.push.allow_private_endpoints {
            tracing::warn!("push.allow_private_endpoints: Web Push may reach loopback and private addresses");
            sender = sender.allow_private_endpoints().map_err(|e| StartError::Domain(e.to_string()))?;
        }
        wakers.push(Arc::new(twostep_delivery::WebPushWaker::new(sender)));
    }
    if let Some((url, secret)) = &resolved.push.webhook {
        let waker = twostep_delivery::WebhookWaker::new(url, secret.clone().into_bytes(), clock)
            .map_err(|e| StartError::Domain(e.to_string()))?;
        wakers.push(Arc::new(waker));
    }
    Ok(wakers)
}

/// The providers: SMTP for mail; Twilio or a signed webhook for SMS and
/// voice; the dev outbox (console and `/dev/outbox`) for whatever is not
/// configured in dev mode. Outside dev mode an unconfigured channel has no
/// provider: mail to it fails with a log line, and phone set-up is refused.
pub fn senders(resolved: &Resolved, clock: Arc<dyn Clock>) -> Result<Senders, StartError> {
    let dev = || -> Option<Arc<dyn Sender>> { resolved.dev_mode.then(|| Arc::new(twostep_delivery::DevOutbox) as _) };
    let email: Option<Arc<dyn Sender>> = match &resolved.smtp_url {
        Some(url) => Some(Arc::new(
            twostep_delivery::SmtpSender::new(url, &resolved.smtp_from)
                .map_err(|e| StartError::Domain(e.to_string()))?,
        )),
        None => dev(),
    };
    let phone: Option<Arc<dyn Sender>> = match &resolved.phone_provider {
        PhoneProvider::Twilio { account_sid, auth_token, from, base_url } => Some(Arc::new(
            twostep_delivery::TwilioSender::new(twostep_delivery::TwilioConfig {
                account_sid: account_sid.clone(),
                auth_token: auth_token.clone(),
                from: from.clone(),
                base_url: base_url.clone(),
            })
            .map_err(|e| StartError::Domain(e.to_string()))?,
        )),
        PhoneProvider::Webhook { url, secret } => Some(Arc::new(
            twostep_delivery::WebhookSender::new(url, secret.clone().into_bytes(), clock)
                .map_err(|e| StartError::Domain(e.to_string()))?,
        )),
        PhoneProvider::None => dev(),
    };
    if email.is_none() {
        tracing::warn!("no smtp_url: e-mail (notices, reset links, codes) cannot be sent");
    }
    Ok(Senders { email, phone })
}

/// A bound listener and the app to serve on it.
pub struct Server {
    pub listener: TcpListener,
    pub router: axum::Router,
    pub url: String,
    pub store: SqlStore,
    pub twostep: Arc<Twostep>,
    pub outbox: tokio::task::JoinHandle<()>,
    pub health: crate::health::Health,
}

/// Builds everything and binds the port; `settings` lets tests shrink costs.
pub async fn build(resolved: &Resolved, clock: Arc<dyn Clock>, mut settings: Settings) -> Result<Server, StartError> {
    let store = open_store(&resolved.database_url, resolved.sqlite_synchronous).await?;
    let listener = TcpListener::bind(resolved.listen).await.map_err(|e| StartError::Listen(resolved.listen, e))?;
    let bound = listener.local_addr().map_err(|e| StartError::Listen(resolved.listen, e))?;
    let origin = match &resolved.public_url {
        Some(u) => u.origin().ascii_serialization(),
        None => format!("http://{bound}"),
    };
    settings.totp_issuer = resolved.issuer.clone().unwrap_or_else(|| issuer_from(&origin));
    settings.public_url.clone_from(&origin);
    settings.max_concurrent_hashes = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let senders = senders(resolved, Arc::clone(&clock))?;
    let vapid = vapid_key(resolved, &store, clock.as_ref()).await?;
    let vapid_public_key = vapid.as_ref().map(twostep_delivery::webpush::VapidKey::public_key_base64url);
    let wakers = push_wakers(resolved, vapid, Arc::clone(&clock))?;
    let (wake_tx, wake_rx) = crate::workers::wake_queue(&wakers).unzip();
    let oidc = Arc::new(twostep_domain::oidc::Oidc::new(
        Arc::new(store.clone()),
        Arc::clone(&clock),
        Arc::new(OsRng),
        &origin,
    ));
    for declared in &settings.oidc_clients {
        oidc.declare_client(declared.client.clone(), declared.secret_sha256.clone())
            .await
            .map_err(|e| StartError::Domain(format!("oidc client {:?}: {e}", declared.client.id)))?;
    }
    let twostep = domain(&store, resolved, clock, settings, wake_tx)?;
    watch_sessions(&store, &resolved.database_url, &twostep);
    // The outbox worker also picks up what a previous run left undelivered;
    // it stops when `Twostep::drain` is called, and the handle lets shutdown
    // wait for that.
    let outbox = crate::workers::spawn(&twostep, senders, resolved.delivery_poll, wakers, wake_rx);
    crate::workers::spawn_oidc_sweep(&twostep, Arc::clone(&oidc), resolved.delivery_poll);
    if let KeySource::File(path) | KeySource::Generated(path) = &resolved.key_source {
        // Detached: it only ever reads the key file, and ends with the runtime.
        drop(crate::keyfile::watch(path.clone(), Arc::clone(&twostep)));
    }
    let web = WebConfig {
        secure_cookies: origin.starts_with("https://"),
        public_origin: origin.clone(),
        localhost_origin: twostep_domain::factors::webauthn::localhost_origin(&origin),
        dev_mode: resolved.dev_mode,
        trusted_proxies: resolved.trusted_proxies.clone(),
        vapid_public_key,
        place_header: resolved.push.place_header.clone(),
    };
    let health = crate::health::Health::new(store.clone());
    let api = twostep_http::router(AppState { twostep: Arc::clone(&twostep), web: Arc::new(web), oidc });
    let router =
        crate::health::routes(health.clone()).merge(api).layer(axum::middleware::from_fn(crate::metrics::track));
    Ok(Server { listener, router, url: origin, store, twostep, outbox, health })
}

/// Turns the session cache on, with the way this server hears sessions
/// changed elsewhere: on PostgreSQL a `LISTEN` connection, kept up by a task
/// of its own (the cache stands aside until it has connected, and whenever
/// it is down); on SQLite the marker file the command line bumps.
fn watch_sessions(store: &SqlStore, database_url: &str, twostep: &Twostep) {
    let cache = twostep.session_cache();
    match store.backend() {
        twostep_store::Backend::Sqlite => {
            if let Some(marker) = store.session_freshness() {
                cache.watch(marker);
            } else {
                tracing::warn!("the database path is percent-encoded: sessions are not kept in memory");
            }
        }
        twostep_store::Backend::Postgres => {
            let watch = Arc::new(twostep_store::session_watch::ListenerWatch::default());
            cache.watch(Arc::clone(&watch) as _);
            let cache = Arc::clone(cache);
            tokio::spawn(twostep_store::session_watch::follow_session_changes(
                database_url.to_owned(),
                watch,
                move |change| {
                    if let Some(change) = change {
                        cache.evict(&change);
                    } else {
                        cache.clear();
                    }
                },
            ));
        }
    }
}

/// The public URL's host, as authenticator apps show the issuer.
fn issuer_from(origin: &str) -> String {
    url::Url::parse(origin)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .filter(|h| !h.is_empty() && h != "127.0.0.1" && h != "localhost" && h != "[::1]")
        .unwrap_or_else(|| "twostep".to_owned())
}

impl Server {
    /// Serves until `shutdown` resolves, then stops gracefully within the
    /// default bounds (`serve_until` in `shutdown` takes them).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        self.serve_until(shutdown, crate::shutdown::Options::default()).await.map_err(std::io::Error::other)
    }
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down");
}

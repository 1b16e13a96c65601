//! The local HTTP API (axum): the live site as JSON and as Server-Sent Events, session history
//! and the usage report from the store, Prometheus metrics, a health check and a status page.
//! Read-only. It only ever reads the site's watch channel (cloning the `Arc` out at once), so
//! however slow a client is, the control loop never waits for it.
//!
//! Layout: `observe` (what the API keeps of the cycles it saw: last cycle time, the cycle
//! duration histogram, an hour of grid current), `state` (`/api/state`, `/api/grid`,
//! `/healthz`), `events` (`/api/events`), `history` (`/api/sessions`, `/api/report`),
//! `metrics` (`/metrics`), `auth` (the bearer token), `page` (`/`, the status page), `client` (a GET for
//! `evsite status`).

mod auth;
pub mod client;
mod error;
mod events;
mod history;
mod metrics;
pub mod observe;
mod page;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::site::{Site, SiteState};
use crate::store::Store;
use crate::sync::LinkStatus;

pub use error::ApiError;
pub use observe::Observed;

/// What the handlers read: all of it shared, none of it written by the API.
#[derive(Clone)]
pub struct ApiContext {
    pub cfg: Arc<Config>,
    pub state: watch::Receiver<Arc<SiteState>>,
    pub store: Option<Store>,
    pub link: Option<watch::Receiver<LinkStatus>>,
    pub observed: Arc<Observed>,
    /// With a token, every request needs `Authorization: Bearer <token>`.
    pub token: Option<Arc<str>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("api.token_file {path}: {detail}")]
    Token { path: String, detail: String },
}

impl ApiContext {
    /// The context for `site`, reading `[api] token_file` when there is one.
    pub fn for_site(cfg: Arc<Config>, site: &Site) -> Result<Self, StartError> {
        let token = match &cfg.api.token_file {
            Some(path) => Some(auth::read_token(path)?),
            None => None,
        };
        Ok(ApiContext {
            observed: Arc::new(Observed::new(cfg.control.interval)),
            state: site.state.clone(),
            store: site.store.clone(),
            link: site.link_status(),
            cfg,
            token,
        })
    }

    /// How long without a cycle before `/healthz` says the loop is stuck: three intervals,
    /// at least a second.
    pub fn stale_after(&self) -> Duration {
        (self.cfg.control.interval * 3).max(Duration::from_secs(1))
    }
}

/// A running API server.
pub struct ApiServer {
    addr: SocketAddr,
    server: JoinHandle<()>,
    observer: JoinHandle<()>,
}

impl ApiServer {
    /// The address it actually listens on (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.server.abort();
        self.observer.abort();
    }
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Binds `addr` and serves the API there until the returned server is dropped.
pub async fn start(ctx: ApiContext, addr: SocketAddr) -> Result<ApiServer, StartError> {
    let listener = bind(addr).await?;
    serve(listener, ctx).map_err(|source| StartError::Bind { addr, source })
}

/// The daemon's API: started on `[api] listen`, or logged and left out. The site is
/// controlled either way: nothing about control waits for the API.
pub async fn start_logged(cfg: Arc<Config>, site: &Site) -> Option<ApiServer> {
    let started = match ApiContext::for_site(cfg.clone(), site) {
        Ok(ctx) => start(ctx, cfg.api.listen).await,
        Err(e) => Err(e),
    };
    match started {
        Ok(server) => {
            tracing::info!(addr = %server.addr(), url = %format!("http://{}/", server.addr()), "local API listening");
            Some(server)
        }
        Err(e) => {
            tracing::error!(error = %e, "local API not started; the site is controlled without it");
            None
        }
    }
}

/// Serves the API on `listener` until the returned server is dropped.
pub fn serve(listener: TcpListener, ctx: ApiContext) -> std::io::Result<ApiServer> {
    let addr = listener.local_addr()?;
    let observer = tokio::spawn(observe::follow(ctx.state.clone(), ctx.observed.clone()));
    let app = router(ctx);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "local API stopped");
        }
    });
    Ok(ApiServer {
        addr,
        server,
        observer,
    })
}

/// Every route, behind the token check.
pub fn router(ctx: ApiContext) -> Router {
    Router::new()
        .route("/", get(page::page))
        .route("/api/state", get(state::state))
        .route("/api/grid", get(state::grid))
        .route("/api/events", get(events::events))
        .route("/api/sessions", get(history::sessions))
        .route("/api/report", get(history::report))
        .route("/metrics", get(metrics::metrics))
        .route("/healthz", get(state::healthz))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            auth::require_token,
        ))
        .with_state(ctx)
}

//! The local runner: every HTTP function of template.yaml behind one port, routed by reading
//! template.yaml so local and deployed routing cannot differ, with API Gateway's JWT check
//! done locally (HS256, `LOCAL_JWT_SECRET`). It is a development tool, not a Lambda, so it
//! lives outside `functions/`.
//!
//! - [`template`] reads template.yaml (and openapi.yaml's operations, for the route-set test);
//! - [`registry`] maps a function's `CodeUri` to its crate's `handle`;
//! - [`router`] matches a request to a route key and builds the API Gateway v2 event;
//! - [`jwt`] mints and checks local tokens; [`seed`] creates the demo data;
//! - [`policy`] enforces each function's DynamoDB permissions from template.yaml;
//! - [`stripe`] runs the fake Stripe the top-ups are paid on;
//! - [`clock`] moves the runner's time and renews what falls due, as renew-addons does;
//! - [`web`] serves the screens (`web/`) and the local sign-in page that mints their tokens;
//! - [`server`] is the hyper server.
//!
//! Time, for demos: the runner's clock is the real time plus an offset that only grows.
//! `POST /_local/clock` with `{"advance_days": N}` and/or `{"advance_hours": N}` (whole
//! numbers, at most 3660 days or 87840 hours at a time) moves it ahead and runs a renewal pass
//! at once; the answer is the new time, the offset and what the pass did. `GET /_local/clock`
//! answers the time and the offset. The control needs no token (a local tool on 127.0.0.1,
//! not a route of template.yaml). Besides, a renewal pass runs every `LOCAL_RENEWAL_TICK_S`
//! seconds (default 60, 0: never), standing in for the deployed schedule (every 15 minutes).

pub mod clock;
pub mod jwt;
pub mod policy;
pub mod registry;
pub mod router;
pub mod seed;
pub mod server;
pub mod stripe;
pub mod template;
pub mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use billing::Billing;
use domain::OffsetClock;
use store::dynamodb::{DynamoTable, create_table};
use store::memory::MemoryTable;
use store::{Store, Table};

pub use jwt::{TokenRequest, Verifier};
/// For callers that build requests and read responses without depending on lambda_http.
pub use lambda_http::{Body, http};
pub use policy::PolicyTable;
pub use router::{Claims, HttpRequest, Router, RouterError};
pub use server::App;

/// Environment variables the runner reads.
pub const PORT_VAR: &str = "PORT";
pub const TEMPLATE_PATH_VAR: &str = "TEMPLATE_PATH";
pub const JWT_SECRET_VAR: &str = "LOCAL_JWT_SECRET";
pub const DYNAMODB_ENDPOINT_VAR: &str = "DYNAMODB_ENDPOINT";
pub const TABLE_NAME_VAR: &str = runtime::TABLE_NAME_VAR;
pub const RENEWAL_TICK_VAR: &str = "LOCAL_RENEWAL_TICK_S";

pub const DEFAULT_PORT: u16 = 3000;
pub const DEFAULT_TABLE_NAME: &str = "billing-local";
/// Seconds between renewal passes: often enough that a demo sees a renewal soon after the
/// day comes, without a pass per request.
pub const DEFAULT_RENEWAL_TICK_S: u64 = 60;
/// The longest period `LOCAL_RENEWAL_TICK_S` may set: a day.
pub const MAX_RENEWAL_TICK_S: u64 = 86_400;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{var} is invalid: {message}")]
    Config { var: &'static str, message: String },
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error(transparent)]
    Seed(#[from] seed::SeedError),
    #[error("DynamoDB at {endpoint}: {message}")]
    Dynamo { endpoint: String, message: String },
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where the data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// The embedded in-memory store: gone when the runner stops.
    Memory,
    /// DynamoDB (Local, usually) at `endpoint`, in table `table` (created if missing).
    Dynamo { endpoint: String, table: String },
}

/// The runner's configuration, from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub template_path: PathBuf,
    pub jwt_secret: String,
    pub store: StoreConfig,
    /// The port of the fake Stripe (0: any free port).
    pub stripe_fake_port: u16,
    /// How often the renewal ticker runs a pass; `None`: it does not run.
    pub renewal_tick: Option<Duration>,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    pub fn from_env() -> Result<Config, Error> {
        let port = match var(PORT_VAR) {
            None => DEFAULT_PORT,
            Some(p) => {
                p.parse().map_err(|_| Error::Config { var: PORT_VAR, message: format!("{p:?} is not a port") })?
            }
        };
        let template_path =
            var(TEMPLATE_PATH_VAR).map(PathBuf::from).unwrap_or_else(|| template::repo_root().join("template.yaml"));
        let store = match var(DYNAMODB_ENDPOINT_VAR) {
            None => StoreConfig::Memory,
            Some(endpoint) => StoreConfig::Dynamo {
                endpoint,
                table: var(TABLE_NAME_VAR).unwrap_or_else(|| DEFAULT_TABLE_NAME.into()),
            },
        };
        let stripe_fake_port = match var(stripe::FAKE_PORT_VAR) {
            None => stripe::DEFAULT_FAKE_PORT,
            Some(p) => p
                .parse()
                .map_err(|_| Error::Config { var: stripe::FAKE_PORT_VAR, message: format!("{p:?} is not a port") })?,
        };
        let renewal_tick_s = match var(RENEWAL_TICK_VAR) {
            None => DEFAULT_RENEWAL_TICK_S,
            Some(s) => s.parse().ok().filter(|s| *s <= MAX_RENEWAL_TICK_S).ok_or_else(|| Error::Config {
                var: RENEWAL_TICK_VAR,
                message: format!("{s:?} is not a whole number of seconds from 0 (no ticker) to {MAX_RENEWAL_TICK_S}"),
            })?,
        };
        let renewal_tick = (renewal_tick_s > 0).then(|| Duration::from_secs(renewal_tick_s));
        Ok(Config { port, template_path, jwt_secret: jwt_secret(), store, stripe_fake_port, renewal_tick })
    }
}

/// `LOCAL_JWT_SECRET`, or the documented default for local use.
pub fn jwt_secret() -> String {
    var(JWT_SECRET_VAR).unwrap_or_else(|| jwt::DEFAULT_SECRET.to_owned())
}

/// Human-readable logs, filtered by `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false).init();
}

/// Creates `table` as `store::schema::TABLE` defines it, unless it exists.
pub async fn ensure_table(client: &Client, endpoint: &str, table: &str) -> Result<(), Error> {
    let fail = |message: String| Error::Dynamo { endpoint: endpoint.to_owned(), message };
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
            tracing::info!(table, "creating the table");
            create_table(client, table).await.map_err(|e| fail(e.to_string()))
        }
        Err(e) => Err(fail(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())),
    }
}

/// The platform's meters from `PLATFORM_METERS`, as a deployed function reads them.
fn meters() -> Result<domain::Meters, Error> {
    runtime::meters_from_env().map_err(|e| Error::Config { var: runtime::PLATFORM_METERS_VAR, message: e.to_string() })
}

/// The default wholesale floors from `WHOLESALE_FLOORS`, as a deployed function reads them.
fn platform() -> Result<billing::PlatformConfig, Error> {
    runtime::platform_from_env()
        .map_err(|e| Error::Config { var: runtime::WHOLESALE_FLOORS_VAR, message: e.to_string() })
}

/// Starts the runner as `config` says and serves until Ctrl-C.
pub async fn run(config: Config) -> Result<(), Error> {
    let clock = Arc::new(OffsetClock::new());
    match &config.store {
        StoreConfig::Memory => {
            let billing = Billing::new(Store::new(PolicyTable::new(MemoryTable::new())), clock)
                .with_meters(meters()?)
                .with_platform(platform()?);
            serve_with(&config, billing, "the in-memory store (data is lost on exit)".into()).await
        }
        StoreConfig::Dynamo { endpoint, table } => {
            let client = store::dynamodb::local_client(endpoint).await;
            ensure_table(&client, endpoint, table).await?;
            let billing = Billing::new(Store::new(PolicyTable::new(DynamoTable::new(client, table.clone()))), clock)
                .with_meters(meters()?)
                .with_platform(platform()?);
            serve_with(&config, billing, format!("DynamoDB at {endpoint}, table {table}")).await
        }
    }
}

async fn serve_with<T: Table>(config: &Config, billing: Billing<T>, store: String) -> Result<(), Error> {
    let router = Router::<T>::from_template(&config.template_path)?;
    let base_url = format!("http://localhost:{}", config.port);
    let fake = stripe::start_fake(([127, 0, 0, 1], config.stripe_fake_port).into(), &base_url)
        .await
        .map_err(|source| Error::Bind { port: config.stripe_fake_port, source })?;
    stripe::register_fake(&fake);
    let billing = billing.with_payments(stripe::payments(&fake.url));
    seed::seed(&billing, &base_url, &fake).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port))
        .await
        .map_err(|source| Error::Bind { port: config.port, source })?;
    let addr = listener.local_addr()?;
    tracing::info!(
        "{} routes from {} (list them: cargo run -p local -- routes)",
        router.routes().len(),
        config.template_path.display()
    );
    for route in router.iter() {
        let auth = if route.spec.jwt { "jwt" } else { "open" };
        tracing::debug!("  {:<52} -> {} ({auth})", route.key(), route.code_uri);
    }
    tracing::info!("store: {store}");
    tracing::info!("Stripe: the fake at {} (test mode; pay pages at {}/pay/<session>)", fake.url, fake.url);
    tracing::info!(
        "demo data: partner {} with workspaces {}",
        seed::DEMO_PARTNER,
        seed::DEMO_WORKSPACES.map(|w| w.0).join(", ")
    );
    if config.jwt_secret == jwt::DEFAULT_SECRET {
        tracing::info!("tokens are signed with the default {JWT_SECRET_VAR} (local use only)");
    }
    tracing::info!("mint a token: cargo run -p local -- token --partner {} --role partner_admin", seed::DEMO_PARTNER);
    match config.renewal_tick {
        Some(every) => tracing::info!("renewals: a pass every {} s ({RENEWAL_TICK_VAR})", every.as_secs()),
        None => tracing::info!("renewals: no ticker ({RENEWAL_TICK_VAR}=0); each clock move runs a pass"),
    }
    tracing::info!("move time ahead: curl -X POST http://{addr}{} -d '{{\"advance_days\": 31}}'", clock::CLOCK_PATH);
    tracing::info!("listening on http://{addr}");
    tracing::info!("the screens: sign in as a demo user at http://localhost:{}{}", addr.port(), web::SIGN_IN_PATH);
    let app = Arc::new(App { router, billing, verifier: Verifier::new(&config.jwt_secret), web_root: web::web_root() });
    if let Some(every) = config.renewal_tick {
        tokio::spawn(clock::tick(app.clone(), every));
    }
    let shutdown = async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handling on this platform: run until killed.
            std::future::pending::<()>().await;
        }
        tracing::info!("stopping");
    };
    server::serve(app, listener, shutdown).await?;
    Ok(())
}

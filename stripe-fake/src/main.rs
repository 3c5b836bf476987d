//! `cargo run -p stripe-fake`: the fake Stripe on 127.0.0.1, for the local runner.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use stripe_fake::{Fake, FakeConfig};

const USAGE: &str = "\
usage: stripe-fake

environment:
  STRIPE_FAKE_PORT        port on 127.0.0.1 (default 12111)
  STRIPE_SECRET_KEY       the secret key clients must send (default sk_test_fake)
  STRIPE_WEBHOOK_URL      where events are POSTed (default: none, events are only recorded)
  STRIPE_WEBHOOK_SECRET   signs the events (default whsec_fake)
  STRIPE_FAKE_PUBLIC_URL  base of the pay page URLs (default http://127.0.0.1:PORT)
  STRIPE_FAKE_ACCOUNTS    connected accounts that exist from the start, comma-separated acct_... ids
  RUST_LOG                log filter (default info)";

pub const DEFAULT_PORT: u16 = 12111;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn config() -> Result<(FakeConfig, u16), String> {
    let port = match var("STRIPE_FAKE_PORT") {
        None => DEFAULT_PORT,
        Some(p) => p.parse().map_err(|_| format!("STRIPE_FAKE_PORT must be a port number, not {p:?}"))?,
    };
    let secret_key = var("STRIPE_SECRET_KEY").unwrap_or_else(|| "sk_test_fake".into());
    if !secret_key.starts_with("sk_test_") {
        return Err("STRIPE_SECRET_KEY must be a test key (sk_test_...): this is a fake".into());
    }
    let mut config = FakeConfig::new(&secret_key, &var("STRIPE_WEBHOOK_SECRET").unwrap_or_else(|| "whsec_fake".into()));
    config.webhook_url = var("STRIPE_WEBHOOK_URL");
    config.public_url = var("STRIPE_FAKE_PUBLIC_URL");
    config.accounts = var("STRIPE_FAKE_ACCOUNTS")
        .map(|a| a.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if let Some(bad) = config.accounts.iter().find(|a| !a.starts_with("acct_")) {
        return Err(format!("STRIPE_FAKE_ACCOUNTS: {bad:?} is not an acct_... id"));
    }
    Ok((config, port))
}

fn main() -> ExitCode {
    if std::env::args().nth(1).is_some_and(|a| matches!(a.as_str(), "-h" | "--help" | "help")) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let (config, port) = match config() {
        Ok(c) => c,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let webhook = config.webhook_url.clone().unwrap_or_else(|| "none (events are only recorded)".into());
        let running = match Fake::start(config, SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: cannot listen on 127.0.0.1:{port}: {e}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!("fake Stripe on {} (point the gateway's StripeConfig::with_base at it)", running.url);
        tracing::info!("webhooks to {webhook}; control endpoints under {}/_fake", running.url);
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("stopping");
        ExitCode::SUCCESS
    })
}

//! The runner's Stripe: the project's fake (`stripe-fake`), in-process, so the whole top-up
//! works offline. The checkout URL opens the fake's pay page; "Pay now" there posts a signed
//! `checkout.session.completed` to the runner's own `/stripe/webhook`, and the points arrive
//! through the real webhook path. The gateway is the production one (async-stripe), pointed at
//! the fake.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use billing::Payments;
use stripe_fake::{Fake, FakeConfig, RunningFake};
use stripe_gateway::client::{StripeConfig, StripeGateway};

/// The fake's secret key: test mode, local only.
pub const FAKE_SECRET_KEY: &str = "sk_test_local_fake";
/// The secret the fake signs connected accounts' webhooks with.
pub const FAKE_WEBHOOK_SECRET: &str = "whsec_local_fake";
/// The secret the fake signs the platform account's own webhooks with.
pub const FAKE_PLATFORM_WEBHOOK_SECRET: &str = "whsec_local_fake_platform";
/// The demo partner's connected account, which the fake has from the start.
pub const DEMO_ACCOUNT: &str = "acct_demo";
/// The fake listens here unless `STRIPE_FAKE_PORT` says otherwise.
pub const DEFAULT_FAKE_PORT: u16 = 3001;
pub const FAKE_PORT_VAR: &str = "STRIPE_FAKE_PORT";

/// Starts the fake on `addr`; its events go to `runner_url` + `/stripe/webhook` (connected
/// accounts') and `/stripe/platform-webhook` (the platform's own).
pub async fn start_fake(addr: SocketAddr, runner_url: &str) -> std::io::Result<RunningFake> {
    let mut config = FakeConfig::new(FAKE_SECRET_KEY, FAKE_WEBHOOK_SECRET);
    let base = runner_url.trim_end_matches('/');
    config.webhook_url = Some(format!("{base}/stripe/webhook"));
    config.platform_webhook_url = Some(format!("{base}/stripe/platform-webhook"));
    config.platform_webhook_secret = FAKE_PLATFORM_WEBHOOK_SECRET.to_owned();
    config.accounts = vec![DEMO_ACCOUNT.to_owned()];
    Fake::start(config, addr).await
}

/// The fake the runner serves, for its clock: set once when it starts. A runner a test builds
/// around an `App` of its own has none, and its clock moves leave the fake's time alone.
static RUNNER_FAKE: OnceLock<Fake> = OnceLock::new();

/// Makes `fake` the one [`move_fake_clock`] moves.
pub fn register_fake(fake: &Fake) {
    let _ = RUNNER_FAKE.set(fake.clone());
}

/// Moves the runner's fake to `now` (never back), so subscriptions whose period ended by then
/// renew and their events reach the runner's webhook before its own passes run.
pub async fn move_fake_clock(now: time::OffsetDateTime) {
    if let Some(fake) = RUNNER_FAKE.get() {
        let moved = fake.advance_clock_to(now.unix_timestamp()).await;
        tracing::info!(subscriptions = %moved["subscriptions"], "the fake Stripe's clock moved to {now}");
    }
}

/// The deployment's Stripe as the runner has it: the gateway to the fake at `fake_url`, the
/// fake's webhook secret, test mode.
pub fn payments(fake_url: &str) -> Payments {
    let gateway = StripeGateway::new(StripeConfig::new(FAKE_SECRET_KEY).with_base(fake_url))
        .expect("the fake's test key builds a client");
    Payments::new(false)
        .with_gateway(Arc::new(gateway))
        .with_webhook_secrets(vec![FAKE_WEBHOOK_SECRET.to_owned()])
        .with_platform_webhook_secrets(vec![FAKE_PLATFORM_WEBHOOK_SECRET.to_owned()])
}

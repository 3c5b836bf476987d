//! The renew-addons Lambda: the run's limits, then [`runtime::serve_events`] builds the clients
//! once and each scheduled event (whose payload says nothing we need) runs one renewal run. A
//! renewal short of points may top the wallet up on the saved card: the first such charge reads
//! the Stripe key from SSM.

use std::time::{Instant, SystemTime};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    let limits = renew_addons::limits_from_env(|name| std::env::var(name).ok())?;
    runtime::serve_events(runtime::Stripe::Client, |billing, event| async move {
        let deadline = renew_addons::deadline_instant(event.context.deadline(), SystemTime::now(), Instant::now());
        renew_addons::handle(&billing, deadline, limits).await.map(|run| run.summary())
    })
    .await
}

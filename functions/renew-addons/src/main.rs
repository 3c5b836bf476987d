//! The renew-addons Lambda: the run's limits, then [`runtime::serve_events`] builds the clients
//! once and each scheduled event (whose payload says nothing we need) runs one renewal run. It
//! never calls Stripe: a renewal short of points with auto top-up on asks for the top-up, which
//! charge-refills makes (and then renews the workspace).
// A renewal's future nests the store's retrying transaction inside the run's batches inside the
// runtime's service: deeper than the default limit lets rustc compute its layout in a release build.
#![recursion_limit = "256"]

use std::time::{Instant, SystemTime};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    let limits = renew_addons::limits_from_env(|name| std::env::var(name).ok())?;
    runtime::serve_events(runtime::Stripe::None, |billing, event| async move {
        let deadline = runtime::deadline_instant(event.context.deadline(), SystemTime::now(), Instant::now());
        renew_addons::handle(&billing, deadline, limits).await.map(|run| run.summary())
    })
    .await
}

//! The fold-usage Lambda: [`runtime::serve_events`] builds the clients once, then each
//! scheduled event (whose payload says nothing we need) runs one fold. It never calls Stripe: a
//! fold that leaves a partner wallet under its refill threshold asks for the refill, which
//! charge-refills makes.
// The fold's future nests the store's retrying transaction inside the run's loop inside the
// runtime's service: deeper than the default limit lets rustc compute its layout.
#![recursion_limit = "256"]

use std::time::{Instant, SystemTime};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    runtime::serve_events(runtime::Stripe::None, |billing, event| async move {
        let deadline = runtime::deadline_instant(event.context.deadline(), SystemTime::now(), Instant::now());
        fold_usage::handle(&billing, deadline).await.map(|run| run.summary())
    })
    .await
}

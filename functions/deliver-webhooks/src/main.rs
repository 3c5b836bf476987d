//! The deliver-webhooks Lambda: its HTTP client once, then [`runtime::serve_events`] builds the
//! table's client and each invocation (a batch of the table's stream records naming partner
//! events, or the schedule's) runs one pass. It never calls Stripe.
// A pass's future nests the store's retrying writes inside the runtime's service: deeper than
// the default limit lets rustc compute its layout in a release build.
#![recursion_limit = "256"]

use std::sync::Arc;
use std::time::{Instant, SystemTime};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    let sender = Arc::new(deliver_webhooks::HttpSender::new(false).map_err(runtime::Error::from)?);
    runtime::serve_events(runtime::Stripe::None, move |billing, event| {
        let sender = sender.clone();
        async move {
            let deadline = runtime::deadline_instant(event.context.deadline(), SystemTime::now(), Instant::now());
            let run = deliver_webhooks::handle(&billing, sender.as_ref(), &event.payload, deadline).await?;
            Ok::<_, deliver_webhooks::DeliverError>(serde_json::json!({
                "partners": run.partners,
                "sent": run.sent,
                "delivered": run.delivered,
                "retrying": run.retrying,
                "failed": run.failed,
            }))
        }
    })
    .await
}

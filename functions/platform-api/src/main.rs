//! The platform-api Lambda: [`runtime::serve_http`] builds the clients once, then hands each
//! request to [`platform_api::handle`]. A usage debit below a workspace's refill threshold charges its
//! saved card (auto top-up): the first such charge reads the Stripe key from SSM.

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    runtime::serve_http(
        runtime::Stripe::Client,
        |billing, req| async move { platform_api::handle(&billing, req).await },
    )
    .await
}

//! The create-checkout Lambda: [`runtime::serve_http`] builds the clients once, then hands each
//! request to [`create_checkout::handle`]. Every request creates a Checkout Session: the first one reads the Stripe
//! key from SSM and builds the client.

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    runtime::serve_http(
        runtime::Stripe::Client,
        |billing, req| async move { create_checkout::handle(&billing, req).await },
    )
    .await
}

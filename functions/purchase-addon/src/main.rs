//! The purchase-addon Lambda: [`runtime::serve_http`] builds the clients once, then hands each
//! request to [`purchase_addon::handle`]. It never calls Stripe.

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    runtime::serve_http(
        runtime::Stripe::None,
        |billing, req| async move { purchase_addon::handle(&billing, req).await },
    )
    .await
}

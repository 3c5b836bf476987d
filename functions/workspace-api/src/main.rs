//! The workspace-api Lambda: [`runtime::serve_http`] builds the clients once, then hands each
//! request to [`workspace_api::handle`]. It never calls Stripe.

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    runtime::serve_http(runtime::Stripe::None, |billing, req| async move { workspace_api::handle(&billing, req).await })
        .await
}

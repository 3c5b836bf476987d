//! The platform-api Lambda: [`runtime::serve_http`] builds the clients once, then hands each
//! request to [`platform_api::handle`]. It never calls Stripe: a usage debit that leaves a workspace
//! under its refill threshold asks for the refill, which charge-refills makes.

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    runtime::serve_http(runtime::Stripe::None, |billing, req| async move { platform_api::handle(&billing, req).await })
        .await
}

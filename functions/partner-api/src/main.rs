//! The partner-api Lambda: [`runtime::serve_http`] builds the clients once, then hands each
//! request to [`partner_api::handle`]. Only its Stripe routes (connecting an account, a partner wallet's
//! checkout) call Stripe: the first of them reads the key from SSM, the other routes never do.

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    runtime::serve_http(runtime::Stripe::Client, |billing, req| async move { partner_api::handle(&billing, req).await })
        .await
}

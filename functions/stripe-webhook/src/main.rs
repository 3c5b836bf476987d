//! The stripe-webhook Lambda: [`runtime::serve_http`] builds the clients once, then hands each
//! request to [`stripe_webhook::handle`]. Every request checks a Stripe signature, so the signing secrets
//! are read from SSM at init. It calls Stripe only to read a subscription an event says changed
//! (its key read from SSM on that first call).

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    runtime::serve_http(runtime::Stripe::WebhookSecretsAndClient, |billing, req| async move {
        stripe_webhook::handle(&billing, req).await
    })
    .await
}

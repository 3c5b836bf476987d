//! The adjust-points Lambda: [`runtime::serve_http`] builds the clients once, then hands each
//! request to [`adjust_points::handle`]. It never calls Stripe.

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    runtime::serve_http(runtime::Stripe::None, |billing, req| async move { adjust_points::handle(&billing, req).await })
        .await
}

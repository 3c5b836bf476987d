//! A Stripe gateway built on its first call instead of at init.
//!
//! Most requests of the functions that may call Stripe never do (a partner reading its
//! workspaces, a usage debit that leaves the wallet above its refill threshold, a renewal run
//! with enough points), yet reading the secret key from SSM and building the client (an HTTPS
//! connector that parses the system's root certificates, twice) used to cost every cold start
//! about 12 ms. [`LazyGateway`] moves that cost to the first request that needs Stripe.
//!
//! A failed build (SSM unreachable, the parameter missing, a key of the other mode than the
//! deployment's) is logged as an error and answered as [`GatewayError::Unavailable`]: that
//! request fails as retryable (503 `stripe_unavailable` at the edge; an auto top-up keeps its
//! attempt for the next run), Stripe was not called, and nothing is cached, so the next call
//! builds again and a fixed parameter takes effect without a redeploy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use stripe_gateway::gateway::{
    Account, CheckoutSession, ConnectedAccount, CreatedCheckoutSession, EventPage, EventQuery, Gateway, GatewayError,
    NewCheckoutSession, NewCustomer, NewSetupSession, OffSessionCharge, OffSessionOutcome, PaymentGateway,
    ReceiptLinks,
};
use stripe_gateway::ids::{
    CheckoutId, CustomerId, IdempotencyKey, InvoiceId, OAuthCode, PaymentMethodId, PriceId, ReceiptId, SubscriptionId,
};
use stripe_gateway::subscription::{
    InvoiceCharge, InvoiceOutcome, InvoicePage, NewSubscriptionCheckout, PriceSpec, Subscription, SubscriptionChange,
};
use tokio::sync::OnceCell;

use crate::ConfigError;

type Build = Pin<Box<dyn Future<Output = Result<Arc<dyn Gateway>, ConfigError>> + Send>>;

/// The gateway `build` makes, made on the first call that needs it; concurrent first calls wait
/// for one build.
pub struct LazyGateway {
    built: OnceCell<Arc<dyn Gateway>>,
    build: Box<dyn Fn() -> Build + Send + Sync>,
}

impl LazyGateway {
    pub fn new<F, Fut>(build: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<dyn Gateway>, ConfigError>> + Send + 'static,
    {
        Self { built: OnceCell::new(), build: Box::new(move || Box::pin(build())) }
    }

    /// Whether the gateway has been built (by an earlier call).
    pub fn is_built(&self) -> bool {
        self.built.initialized()
    }

    async fn gateway(&self) -> Result<&dyn Gateway, GatewayError> {
        match self.built.get_or_try_init(|| (self.build)()).await {
            Ok(gateway) => Ok(gateway.as_ref()),
            Err(e) => {
                tracing::error!(error = %e, "the Stripe client could not be built: no Stripe call made, the next one tries again");
                Err(GatewayError::Unavailable)
            }
        }
    }
}

impl std::fmt::Debug for LazyGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyGateway").field("built", &self.is_built()).finish_non_exhaustive()
    }
}

impl PaymentGateway for LazyGateway {
    async fn create_customer(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        customer: &NewCustomer,
    ) -> Result<CustomerId, GatewayError> {
        self.gateway().await?.create_customer(account, key, customer).await
    }

    async fn create_checkout_session(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        session: &NewCheckoutSession,
    ) -> Result<CreatedCheckoutSession, GatewayError> {
        self.gateway().await?.create_checkout_session(account, key, session).await
    }

    async fn retrieve_checkout_session(
        &self,
        account: Account<'_>,
        id: &CheckoutId,
    ) -> Result<CheckoutSession, GatewayError> {
        self.gateway().await?.retrieve_checkout_session(account, id).await
    }

    async fn create_setup_session(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        session: &NewSetupSession,
    ) -> Result<CreatedCheckoutSession, GatewayError> {
        self.gateway().await?.create_setup_session(account, key, session).await
    }

    async fn detach_payment_method(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        id: &PaymentMethodId,
    ) -> Result<(), GatewayError> {
        self.gateway().await?.detach_payment_method(account, key, id).await
    }

    async fn charge_off_session(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        charge: &OffSessionCharge,
    ) -> Result<OffSessionOutcome, GatewayError> {
        self.gateway().await?.charge_off_session(account, key, charge).await
    }

    async fn list_events(&self, account: Account<'_>, query: &EventQuery<'_>) -> Result<EventPage, GatewayError> {
        self.gateway().await?.list_events(account, query).await
    }

    async fn retrieve_receipt(
        &self,
        account: Account<'_>,
        id: &ReceiptId,
    ) -> Result<Option<ReceiptLinks>, GatewayError> {
        self.gateway().await?.retrieve_receipt(account, id).await
    }

    async fn connect_account(&self, code: &OAuthCode) -> Result<ConnectedAccount, GatewayError> {
        self.gateway().await?.connect_account(code).await
    }

    async fn create_price(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        spec: &PriceSpec,
    ) -> Result<PriceId, GatewayError> {
        self.gateway().await?.create_price(account, key, spec).await
    }

    async fn create_subscription_checkout(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        session: &NewSubscriptionCheckout,
    ) -> Result<CreatedCheckoutSession, GatewayError> {
        self.gateway().await?.create_subscription_checkout(account, key, session).await
    }

    async fn retrieve_subscription(
        &self,
        account: Account<'_>,
        id: &SubscriptionId,
    ) -> Result<Subscription, GatewayError> {
        self.gateway().await?.retrieve_subscription(account, id).await
    }

    async fn update_subscription(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        id: &SubscriptionId,
        change: &SubscriptionChange,
    ) -> Result<Subscription, GatewayError> {
        self.gateway().await?.update_subscription(account, key, id, change).await
    }

    async fn charge_invoice(
        &self,
        account: Account<'_>,
        key: &IdempotencyKey,
        charge: &InvoiceCharge,
    ) -> Result<InvoiceOutcome, GatewayError> {
        self.gateway().await?.charge_invoice(account, key, charge).await
    }

    async fn list_invoices(
        &self,
        account: Account<'_>,
        customer: &CustomerId,
        limit: u8,
        starting_after: Option<&InvoiceId>,
    ) -> Result<InvoicePage, GatewayError> {
        self.gateway().await?.list_invoices(account, customer, limit, starting_after).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use stripe_gateway::ids::AccountId;

    use super::*;

    /// Answers every OAuth code with one account; nothing else is called here.
    struct Connects;

    impl PaymentGateway for Connects {
        async fn create_customer(
            &self,
            _: Account<'_>,
            _: &IdempotencyKey,
            _: &NewCustomer,
        ) -> Result<CustomerId, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn create_checkout_session(
            &self,
            _: Account<'_>,
            _: &IdempotencyKey,
            _: &NewCheckoutSession,
        ) -> Result<CreatedCheckoutSession, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn retrieve_checkout_session(
            &self,
            _: Account<'_>,
            _: &CheckoutId,
        ) -> Result<CheckoutSession, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn create_setup_session(
            &self,
            _: Account<'_>,
            _: &IdempotencyKey,
            _: &NewSetupSession,
        ) -> Result<CreatedCheckoutSession, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn detach_payment_method(
            &self,
            _: Account<'_>,
            _: &IdempotencyKey,
            _: &PaymentMethodId,
        ) -> Result<(), GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn charge_off_session(
            &self,
            _: Account<'_>,
            _: &IdempotencyKey,
            _: &OffSessionCharge,
        ) -> Result<OffSessionOutcome, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn list_events(&self, _: Account<'_>, _: &EventQuery<'_>) -> Result<EventPage, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn retrieve_receipt(&self, _: Account<'_>, _: &ReceiptId) -> Result<Option<ReceiptLinks>, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn connect_account(&self, _: &OAuthCode) -> Result<ConnectedAccount, GatewayError> {
            Ok(ConnectedAccount { account: AccountId::parse("acct_lazy").unwrap(), livemode: false })
        }
        async fn create_price(
            &self,
            _: Account<'_>,
            _: &IdempotencyKey,
            _: &PriceSpec,
        ) -> Result<PriceId, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn create_subscription_checkout(
            &self,
            _: Account<'_>,
            _: &IdempotencyKey,
            _: &NewSubscriptionCheckout,
        ) -> Result<CreatedCheckoutSession, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn retrieve_subscription(
            &self,
            _: Account<'_>,
            _: &SubscriptionId,
        ) -> Result<Subscription, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn update_subscription(
            &self,
            _: Account<'_>,
            _: &IdempotencyKey,
            _: &SubscriptionId,
            _: &SubscriptionChange,
        ) -> Result<Subscription, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn charge_invoice(
            &self,
            _: Account<'_>,
            _: &IdempotencyKey,
            _: &InvoiceCharge,
        ) -> Result<InvoiceOutcome, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
        async fn list_invoices(
            &self,
            _: Account<'_>,
            _: &CustomerId,
            _: u8,
            _: Option<&InvoiceId>,
        ) -> Result<InvoicePage, GatewayError> {
            Err(GatewayError::Fatal("not in this test".into()))
        }
    }

    /// A gateway whose builds fail while `failures` lasts, counting them all.
    fn counted(builds: Arc<AtomicU32>, failures: u32) -> LazyGateway {
        LazyGateway::new(move || {
            let n = builds.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if n <= failures {
                    return Err(ConfigError::Parameter { name: "/key".into(), why: "unreachable".into() });
                }
                Ok(Arc::new(Connects) as Arc<dyn Gateway>)
            }
        })
    }

    fn code() -> OAuthCode {
        OAuthCode::parse("ac_lazy").unwrap()
    }

    #[tokio::test]
    async fn builds_on_the_first_call_and_never_again() {
        let builds = Arc::new(AtomicU32::new(0));
        let lazy = counted(builds.clone(), 0);
        assert_eq!(builds.load(Ordering::SeqCst), 0, "nothing built before a call");
        assert!(!lazy.is_built());
        for _ in 0..3 {
            let got = PaymentGateway::connect_account(&lazy, &code()).await.unwrap();
            assert_eq!(got.account.as_str(), "acct_lazy");
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
        assert!(lazy.is_built());
    }

    #[tokio::test]
    async fn a_failed_build_is_retryable_and_tried_again_on_the_next_call() {
        let builds = Arc::new(AtomicU32::new(0));
        let lazy = counted(builds.clone(), 2);
        for expected_builds in 1..=2 {
            let err = PaymentGateway::connect_account(&lazy, &code()).await.unwrap_err();
            assert_eq!(err, GatewayError::Unavailable);
            assert!(err.is_retryable());
            assert_eq!(builds.load(Ordering::SeqCst), expected_builds);
            assert!(!lazy.is_built());
        }
        PaymentGateway::connect_account(&lazy, &code()).await.unwrap();
        PaymentGateway::connect_account(&lazy, &code()).await.unwrap();
        assert_eq!(builds.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_first_calls_share_one_build() {
        let builds = Arc::new(AtomicU32::new(0));
        let lazy = Arc::new(counted(builds.clone(), 0));
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let lazy = lazy.clone();
                tokio::spawn(async move { PaymentGateway::connect_account(lazy.as_ref(), &code()).await })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }
}

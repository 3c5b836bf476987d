//! The reconciliation sweep: what Stripe says happened, applied through the webhook's own path.
//!
//! Stripe retries a webhook delivery for three days, then gives up. An endpoint that missed
//! events for longer (a secret rotated badly, a deploy answering 500s, a misconfigured endpoint)
//! would leave a paid checkout uncredited, or a refund not taken back. The sweep lists each
//! account's events (the platform's own, and every connected partner's) since its position in
//! them, oldest first, and applies each exactly as a delivery of it ([`Billing::apply_event`]).
//! Every effect there is keyed by the object it changes (the checkout, the PaymentIntent, the
//! payment's record), never by the event, so the webhook and the sweep credit once between them,
//! in any order, even at the same time.
//!
//! - **Position**: per account, `SWEEP#<account> / SWEEP`: the start (unix s, Stripe's clock)
//!   of the next window to list. A new account starts [`LOOKBACK`] back (Stripe lists 30 days
//!   of events), or when it was connected if that is later.
//! - **Windows**: `[position, end)`, at most [`SweepLimits::window`] long and ending
//!   [`SweepLimits::lag`] before now (Stripe lists an event a moment after it happened). Its
//!   events are listed newest first, page by page; a window with more than
//!   [`SweepLimits::max_pages`] pages is halved, so a run never holds more than that many pages.
//!   Once every event of a window is applied, its end is stored as the position, under the
//!   version read: a run that overlaps another stops on that account instead of racing it.
//! - **Failures**: an event the webhook would refuse (400) is logged and passed; one that fails
//!   for a reason that may clear (the store busy, a conflict) stops the account's window, which
//!   the next run lists again; so does an account Stripe won't list. No account holds up
//!   another.
//! - **Bounded time**: accounts are taken in partner order, [`SweepLimits::concurrency`] at a
//!   time, from where the last run ran out of time (`SWEEP / CURSOR`), the platform's first,
//!   until the deadline.
//!
//! Stripe calls: one `GET /v1/events` per window page; an account with nothing new costs one
//! call a run (docs/operations.md works out what 10,000 partners cost).

use time::{Duration, OffsetDateTime};

use domain::PartnerId;
use store::records::{self, SweepPosition};
use store::{Attr, Condition, Guard, StoreError, Table, Write, keys};
use stripe_gateway::event::Event;
use stripe_gateway::gateway::{Account, EventQuery, ListedEvent};
use stripe_gateway::ids::AccountId;

use super::payments::stripe_error;
use super::{Billing, OpError, WebhookEndpoint, WebhookOutcome};

/// How far back a new account's events are listed: all that Stripe keeps.
pub const LOOKBACK: Duration = Duration::days(30);

/// The event types the webhook acts on: the only ones listed. Stripe takes 20 at most.
pub const SWEPT_TYPES: [&str; 20] = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "setup_intent.succeeded",
    "payment_method.attached",
    "payment_method.updated",
    "payment_method.automatically_updated",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
    "charge.dispute.closed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
];

/// How a run goes through the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepLimits {
    /// The longest window listed at once.
    pub window: Duration,
    /// How long before now a window ends: an event is listed a moment after Stripe makes it.
    /// Never below zero: a window ending in the future would pass over the events made before
    /// its end but after the listing.
    pub lag: Duration,
    /// Pages of 100 events one window may take before it is halved.
    pub max_pages: usize,
    /// Partners' accounts read per page of the partner list.
    pub partners_per_page: usize,
    /// Accounts swept at once (at least 1). Each lists its windows one page at a time: 3 at
    /// Stripe's usual 100 to 200 ms a call make 15 to 30 calls a second, about the 25 Stripe
    /// allows one endpoint (its 429s are retried with backoff by the client), and well under the
    /// 100 a second the platform's other calls share.
    pub concurrency: usize,
}

impl Default for SweepLimits {
    fn default() -> Self {
        Self {
            window: Duration::days(1),
            lag: Duration::minutes(1),
            max_pages: 10,
            partners_per_page: 100,
            concurrency: 8,
        }
    }
}

/// What a run found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepRun {
    /// Accounts whose events were listed.
    pub accounts: u32,
    /// Events listed and applied.
    pub events: u32,
    /// Of those, the ones that changed something: what the webhook had missed.
    pub fixed: u32,
    /// Events the webhook would refuse, passed over (each logged).
    pub refused: u32,
    /// Accounts whose window stopped on a failure that may clear: listed again next run.
    pub failed: u32,
    /// Every account was caught up before the deadline.
    pub finished: bool,
}

impl SweepRun {
    fn add(&mut self, other: &SweepRun) {
        self.accounts += other.accounts;
        self.events += other.events;
        self.fixed += other.fixed;
        self.refused += other.refused;
        self.failed += other.failed;
    }

    pub fn summary(&self) -> serde_json::Value {
        let SweepRun { accounts, events, fixed, refused, failed, finished } = self;
        serde_json::json!({
            "accounts": accounts, "events": events, "fixed": fixed, "refused": refused, "failed": failed,
            "finished": finished,
        })
    }
}

/// An account the sweep reads: the platform's (`None`) or a partner's connected one.
struct Swept {
    account: Option<AccountId>,
    /// When its connection was made: nothing before is its business.
    since: Option<OffsetDateTime>,
}

impl<T: Table> Billing<T> {
    /// Sweeps every account's events until `past_deadline` says stop (asked between windows).
    pub async fn sweep(&self, past_deadline: impl Fn() -> bool, limits: SweepLimits) -> Result<SweepRun, OpError> {
        let mut run = SweepRun::default();
        let [cursor] = self.read([keys::sweep_cursor()]).await?;
        let resume = cursor.as_ref().map(records::sweep_cursor_from).transpose()?.flatten();
        if resume.is_none() {
            run.add(&self.sweep_account(&Swept { account: None, since: None }, &limits, &past_deadline).await?);
        }
        let mut after = resume;
        loop {
            let start = after.as_ref().map(|p| keys::partner_ref(p).sk);
            let refs = self
                .store
                .query_prefix(keys::PARTNERS_PK, keys::PARTNER_REF_PREFIX, start.as_deref(), limits.partners_per_page)
                .await?;
            let partners: Vec<PartnerId> =
                refs.iter().map(|i| records::partner_ref_from(i).map(|r| r.id)).collect::<Result<_, _>>()?;
            let stripe_keys: Vec<_> = partners.iter().map(keys::partner_stripe).collect();
            let connections = self.store.get_many(&stripe_keys).await?;
            let mut swept = Vec::with_capacity(partners.len());
            for connection in &connections {
                let connection = connection.as_ref().map(records::stripe_connection_from).transpose()?;
                swept.push(
                    self.usable(connection).map(|c| Swept { account: Some(c.account), since: Some(c.connected_at) }),
                );
            }
            // A few accounts at once: each waits on Stripe most of its time.
            let at_once = limits.concurrency.max(1);
            for (chunk, accounts) in partners.chunks(at_once).zip(swept.chunks(at_once)) {
                if past_deadline() {
                    // The next run goes on after the last partner swept.
                    self.store.write(vec![cursor_write(after.as_ref())]).await?;
                    return Ok(run);
                }
                let runs =
                    super::join_all(accounts.iter().flatten().map(|a| self.sweep_account(a, &limits, &past_deadline)))
                        .await;
                for account_run in runs {
                    run.add(&account_run?);
                }
                after = chunk.last().cloned();
            }
            if partners.len() < limits.partners_per_page {
                break;
            }
        }
        self.store.write(vec![cursor_write(None)]).await?;
        run.finished = !past_deadline();
        Ok(run)
    }

    /// Lists and applies `swept`'s events, window after window, until it is caught up or the
    /// deadline comes.
    async fn sweep_account(
        &self,
        swept: &Swept,
        limits: &SweepLimits,
        past_deadline: &impl Fn() -> bool,
    ) -> Result<SweepRun, OpError> {
        let mut run = SweepRun { accounts: 1, ..SweepRun::default() };
        let account = swept.account.as_ref();
        let [stored] = self.read([keys::sweep_position(account)]).await?;
        let now = OffsetDateTime::now_utc();
        let mut at = match stored.as_ref().map(records::sweep_position_from).transpose()? {
            Some(p) => p,
            None => {
                let from = swept.since.map_or(now - LOOKBACK, |since| since.max(now - LOOKBACK));
                SweepPosition { position: from.unix_timestamp(), version: 0 }
            }
        };
        let until = (now - limits.lag.max(Duration::ZERO)).unix_timestamp();
        let mut window = limits.window.whole_seconds().max(1);
        while at.position < until && !past_deadline() {
            let end = until.min(at.position.saturating_add(window));
            let listed = match self.list_window(account, at.position, end, limits).await {
                Ok(listed) => listed,
                // Stripe refusing or unreachable for this account (one that revoked our access
                // before its deauthorization came): the others go on; the next run lists it again.
                Err(e) => {
                    run.failed += 1;
                    tracing::warn!(
                        account = account.map(AccountId::as_str),
                        error = super::error_chain(&e),
                        "the sweep could not list an account's events; the next run tries again"
                    );
                    return Ok(run);
                }
            };
            let Some(mut events) = listed else {
                // Too many for one window: half as long, down to a second.
                window = ((end - at.position) / 2).max(1);
                continue;
            };
            // Oldest first, as Stripe made them (the list is newest first).
            events.reverse();
            for listed in &events {
                match self.apply_listed(account, listed).await {
                    Ok(outcome) => {
                        run.events += 1;
                        if outcome.changed() {
                            run.fixed += 1;
                            tracing::warn!(account = account.map(AccountId::as_str), event = %listed.id,
                                outcome = outcome.as_str(), "the sweep applied an event the webhook had not");
                        }
                    }
                    Err(OpError::Invalid { param, message }) => {
                        run.refused += 1;
                        tracing::error!(event = %listed.id, param, message, "an event the webhook refuses: passed");
                    }
                    Err(e) => {
                        run.failed += 1;
                        tracing::warn!(event = %listed.id, error = super::error_chain(&e),
                            "the sweep stopped on an account; the next run lists the window again");
                        return Ok(run);
                    }
                }
            }
            let next = SweepPosition { position: end, version: at.version + 1 };
            let guard = match at.version {
                0 => Condition::not_exists(Guard::SweepPositionVersion),
                v => Condition::equals(Guard::SweepPositionVersion, "version", Attr::n(v)),
            };
            let put = Write::Put { item: records::sweep_position_item(account, &next), condition: guard };
            match self.store.write(vec![put]).await {
                Ok(()) => at = next,
                // Another run sweeps this account too: it goes on, this one stops here.
                Err(StoreError::ConditionFailed { .. }) => return Ok(run),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(run)
    }

    /// Every event of `account` in `[from, to)`, newest first, or `None` when they take more
    /// than the window's pages.
    async fn list_window(
        &self,
        account: Option<&AccountId>,
        from: i64,
        to: i64,
        limits: &SweepLimits,
    ) -> Result<Option<Vec<ListedEvent>>, OpError> {
        let gateway = self.payments()?.gateway()?;
        let on = account.map_or(Account::Platform, Account::Connected);
        let mut events: Vec<ListedEvent> = Vec::new();
        for _ in 0..limits.max_pages {
            let query = EventQuery {
                created_gte: from,
                created_lt: to,
                types: &SWEPT_TYPES,
                limit: 100,
                starting_after: events.last().map(|e| e.id.as_str()),
            };
            let page = gateway.list_events(on, &query).await.map_err(|e| stripe_error("events.list", e))?;
            events.extend(page.events);
            if !page.has_more {
                return Ok(Some(events));
            }
        }
        // A window of one second takes whatever it holds.
        if to - from <= 1 {
            return Err(OpError::Internal(format!("more than {} pages of events in one second", limits.max_pages)));
        }
        Ok(None)
    }

    /// One listed event, applied as its webhook delivery would be: on the endpoint of its
    /// account, naming the account it was listed from.
    async fn apply_listed(&self, account: Option<&AccountId>, listed: &ListedEvent) -> Result<WebhookOutcome, OpError> {
        let mut event = Event::parse(listed.payload.as_bytes()).map_err(|e| OpError::invalid("body", e.to_string()))?;
        match (account, &event.account) {
            (Some(listed_on), None) => event.account = Some(listed_on.clone()),
            (Some(listed_on), Some(named)) if named != listed_on => {
                return Err(OpError::invalid("account", "an event listed on one account names another"));
            }
            _ => {}
        }
        let endpoint = if account.is_some() { WebhookEndpoint::Connect } else { WebhookEndpoint::Platform };
        self.apply_event(endpoint, &event).await
    }
}

fn cursor_write(after: Option<&PartnerId>) -> Write {
    Write::Put { item: records::sweep_cursor_item(after), condition: Condition::Always }
}

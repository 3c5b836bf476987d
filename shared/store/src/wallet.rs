//! Wallets and their ledgers: the one operation every balance change goes through.
//!
//! The rules, and where they are kept:
//! 1. A change is ONE transaction: the wallet put conditioned on `version = :expected`, the
//!    ledger entry `LEDGER#<new version>` conditioned on not existing, the idempotency record
//!    conditioned on not existing (or expired), and every other item the caller adds.
//! 2. Hence the ledger is gapless and `sum(amounts) == balance`; [`Store::verify`] proves it.
//! 3. The overdraft guard is checked against the balance the transaction is conditioned on.
//! 4. A version conflict is retried with the fresh state the cancelled transaction returns
//!    (no extra read), with jittered backoff, at most [`RetryPolicy::max_attempts`] times.
//! 5. A replay returns the stored first response; the same key with another request is refused.
//!
//! Cost of one change: one consistent read and one transaction, plus one read only when a
//! debit is refused (to tell a replay from a real shortfall).

use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use domain::{
    Actor, Balance, EntryKind, LedgerEntry, LedgerEntryId, Month, MonthRun, MonthTotals, Overdraft, PartnerId,
    PointsDelta, WalletId, WorkspaceId,
};

use super::cursor::{LedgerCursor, PartnerLedgerCursor};
use super::item::{Attr, Condition, Guard, Item, Key, MalformedItem, Order, Write};
use super::keys;
use super::records::rfc3339;
use super::schema::{PARTNER_LEDGER_INDEX, WORKSPACE_LIST_INDEX};
use super::table::{FailedGuards, IndexQuery, MAX_QUERY_LIMIT, MAX_TRANSACTION_ACTIONS, Query, Table, TableError};
use super::{Store, StoreError};

/// How long an idempotency record answers replays. Longer than Stripe's 3 days of webhook
/// retries, so a late retry of anything keyed by an event still finds its record.
pub const IDEMPOTENCY_TTL_S: i64 = 7 * 24 * 60 * 60;
/// Stripe's limit, which we share: keys are at most 255 characters.
pub const IDEMPOTENCY_KEY_MAX_LEN: usize = 255;
/// Actions a wallet change itself uses at most: wallet, ledger entry, idempotency record, and
/// the month before written into its own item when the change begins a new month; a top-up two
/// more (its month's top-ups, and its partner's).
pub const POSTING_OWN_ACTIONS: usize = 4;
/// The wallet item's attributes of the month it is in start with this.
pub(crate) const RUN_PREFIX: &str = "month_";

/// Bounded retries with full jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Transactions attempted before giving up with a conflict (or unavailable) error.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// Measured with `scripts/test --bench` on DynamoDB Local: against 64 clients on one
    /// wallet, a 1 s cap wasted a third as many transactions per debit as a 200 ms cap did.
    /// Without contention no retry happens, so these cost nothing then.
    pub const DEFAULT: RetryPolicy =
        RetryPolicy { max_attempts: 12, base_delay: Duration::from_millis(5), max_delay: Duration::from_millis(1000) };

    /// Full jitter: a random delay in `[0, min(max, base * 2^attempt))`.
    fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.base_delay.saturating_mul(1u32 << attempt.min(16)).min(self.max_delay);
        let ceiling_us = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX).max(1);
        Duration::from_micros(fastrand::u64(0..ceiling_us))
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// An `Idempotency-Key` bound to who may use it and to the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    scope: String,
    key: String,
    request_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1 to 255 printable ASCII characters")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    /// `scope` says whose key this is (a workspace, a partner, Stripe); `request` is what the
    /// key promises: the same key with a different request is refused, never applied.
    pub fn new(scope: &str, key: &str, request: &[u8]) -> Result<Self, InvalidIdempotencyKey> {
        let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if key.is_empty() || key.len() > IDEMPOTENCY_KEY_MAX_LEN || !printable(key) || !printable(scope) {
            return Err(InvalidIdempotencyKey);
        }
        let hash = Sha256::digest(request);
        Ok(Self { scope: scope.to_owned(), key: key.to_owned(), request_hash: hex(&hash) })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// A short stand-in for the scope and key (hex SHA-256): to derive the keys of the calls
    /// this request makes elsewhere (Stripe), so that its retries make the same calls.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.scope.as_bytes());
        h.update(b"\n");
        h.update(self.key.as_bytes());
        hex(&h.finalize())
    }

    pub(crate) fn item_key(&self) -> Key {
        keys::idempotency(&self.scope, &self.key)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A balance change and everything that must land with it.
#[derive(Debug, Clone)]
pub struct Posting {
    pub wallet: WalletId,
    pub amount: PointsDelta,
    pub overdraft: Overdraft,
    pub kind: EntryKind,
    pub actor: Actor,
    pub at: OffsetDateTime,
    pub idempotency: IdempotencyKey,
    /// The partner of a workspace's wallet, which lists the wallet's balance with its
    /// workspaces (GSI3); `None` for a partner's own wallet.
    pub partner: Option<PartnerId>,
    /// Whether a workspace's entry is also in its partner's cross-workspace ledger (GSI2).
    pub in_partner_ledger: bool,
    /// Other items that change in the same transaction (an add-on, a checkout's status...).
    /// If some of their conditions fail, nothing is written and the caller gets
    /// [`StoreError::ConditionFailed`] naming their guards. None of them may carry one of
    /// [`Guard::STORE_OWN`].
    pub also: Vec<Write>,
}

/// A write that goes with a posting only when the posting leaves the balance under `below`
/// ([`Store::post_crossing`]): with `across`, only when it took the balance there from at or
/// above it (something told once); without, whenever the balance is left under it. `write`
/// builds it from the entry.
#[derive(Clone)]
pub struct Crossing {
    pub below: Balance,
    pub across: bool,
    pub write: std::sync::Arc<dyn Fn(&LedgerEntry) -> Write + Send + Sync>,
}

impl Crossing {
    fn applies(&self, before: Balance, after: Balance) -> bool {
        after < self.below && (!self.across || before >= self.below)
    }
}

impl std::fmt::Debug for Crossing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crossing").field("below", &self.below).field("across", &self.across).finish_non_exhaustive()
    }
}

/// What became of a posting. Every variant but `Applied` wrote nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Applied {
        entry: Box<LedgerEntry>,
        response: Value,
    },
    /// The key was used before with the same request: here is the first response.
    Replayed {
        response: Value,
    },
    /// A debit the overdraft guard refuses.
    InsufficientBalance {
        balance: Balance,
    },
    /// The key was used before with a different request.
    KeyReused,
}

/// A wallet's state. A wallet that was never written is at version 0 with balance 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalletState {
    pub balance: Balance,
    pub version: u64,
    /// When its last entry was made (`None`: never written). The next is dated no earlier, so
    /// that a wallet's entries are in time order as they are in `seq` order, whatever the
    /// clocks of the machines that wrote them.
    pub updated_at: Option<OffsetDateTime>,
    /// The month its last entry is in, and what that month's entries add up to so far (`None`:
    /// never written, or written before months were kept).
    pub month: Option<MonthRun>,
}

impl WalletState {
    /// The state `entry`, the wallet's next change, leaves it in.
    pub fn after(&self, entry: &LedgerEntry) -> WalletState {
        WalletState {
            balance: entry.balance_after,
            version: entry.id.seq,
            updated_at: Some(entry.created_at),
            month: Some(MonthRun::next(self.month, entry)),
        }
    }
}

/// What a client asks of a listing: at most `limit` items, after the position `after` (from the
/// start when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<C> {
    pub after: Option<C>,
    pub limit: usize,
}

/// One page of a listing, and where the next starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C = LedgerCursor> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// What [`Store::verify`] found in a healthy wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub balance: Balance,
}

/// Entries read per page while verifying, and the most a verification reads before it stops
/// (an admin can page further; nothing real comes near it).
const VERIFY_PAGE: usize = MAX_QUERY_LIMIT - 1;
const VERIFY_MAX_ENTRIES: u64 = 50_000_000;

fn wallet_from_item(item: &Item) -> Result<WalletState, MalformedItem> {
    let balance = item.num("balance")?;
    Ok(WalletState {
        balance: Balance::from_decimal(balance)
            .map_err(|_| MalformedItem { key: item.key(), attr: "balance".into() })?,
        version: item.u64("version")?,
        updated_at: item
            .get("updated_at")
            .map(|_| item.parsed("updated_at", |s| OffsetDateTime::parse(s, &Rfc3339)))
            .transpose()?,
        month: super::statements::run_from(item, RUN_PREFIX)?,
    })
}

fn wallet_item(wallet: &WalletId, partner: Option<&PartnerId>, state: WalletState) -> Item {
    let mut item = Item::new(&keys::wallet(wallet), "wallet")
        .with("balance", Attr::N(state.balance.as_decimal()))
        .with("version", Attr::n(state.version));
    if let Some(at) = state.updated_at {
        item.set("updated_at", Attr::s(rfc3339(at)));
    }
    if let Some(run) = &state.month {
        for (name, value) in super::statements::run_attrs(run, RUN_PREFIX) {
            item.set(&name, value);
        }
    }
    match (wallet, partner) {
        (WalletId::Workspace(w), Some(p)) => item
            .with(WORKSPACE_LIST_INDEX.partition, Attr::s(keys::partner_pk(p)))
            .with(WORKSPACE_LIST_INDEX.sort, Attr::s(keys::workspace_list_sk(w, keys::ListedPart::Wallet))),
        _ => item,
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("ledger types serialize to JSON")
}

fn partner_ledger_sk(entry: &LedgerEntry) -> String {
    let ns = u128::try_from(entry.created_at.unix_timestamp_nanos()).unwrap_or(0);
    keys::partner_ledger_sk(ns, &entry.id.wallet, entry.id.seq)
}

fn entry_item(entry: &LedgerEntry, partner: Option<&PartnerId>) -> Item {
    let mut item = base_entry_item(entry);
    if let Some(p) = partner {
        item.set(PARTNER_LEDGER_INDEX.partition, Attr::s(keys::partner_pk(p)));
        item.set(PARTNER_LEDGER_INDEX.sort, Attr::s(partner_ledger_sk(entry)));
    }
    item
}

fn base_entry_item(entry: &LedgerEntry) -> Item {
    Item::new(&keys::ledger_entry(&entry.id.wallet, entry.id.seq), "ledger_entry")
        .with("seq", Attr::n(entry.id.seq))
        .with("amount", Attr::N(entry.amount.as_decimal()))
        .with("balance_after", Attr::N(entry.balance_after.as_decimal()))
        .with("kind", Attr::s(entry.kind.name()))
        .with("detail", Attr::s(json(&entry.kind)))
        .with("actor", Attr::s(json(&entry.actor)))
        .with("created_at", Attr::s(rfc3339(entry.created_at)))
        .with("idempotency_key", Attr::s(&entry.idempotency_key))
}

fn entry_from_item(wallet: &WalletId, item: &Item) -> Result<LedgerEntry, MalformedItem> {
    let bad = |attr: &str| MalformedItem { key: item.key(), attr: attr.to_owned() };
    Ok(LedgerEntry {
        id: LedgerEntryId { wallet: wallet.clone(), seq: item.u64("seq")? },
        amount: PointsDelta::from_decimal(item.num("amount")?).map_err(|_| bad("amount"))?,
        balance_after: Balance::from_decimal(item.num("balance_after")?).map_err(|_| bad("balance_after"))?,
        kind: item.parsed("detail", |s| serde_json::from_str(s))?,
        actor: item.parsed("actor", |s| serde_json::from_str(s))?,
        created_at: item.parsed("created_at", |s| OffsetDateTime::parse(s, &Rfc3339))?,
        idempotency_key: item.str("idempotency_key")?.to_owned(),
    })
}

fn idempotency_item(
    idem: &IdempotencyKey,
    at: OffsetDateTime,
    response: &Value,
    entry: Option<&LedgerEntryId>,
) -> Item {
    let mut item = Item::new(&idem.item_key(), "idempotency")
        .with("request_hash", Attr::s(&idem.request_hash))
        .with("response", Attr::s(response.to_string()))
        .with("created_at", Attr::s(rfc3339(at)))
        .with(super::TTL_ATTR, Attr::n(at.unix_timestamp() + IDEMPOTENCY_TTL_S));
    if let Some(id) = entry {
        item.set("ledger_entry", Attr::s(id.to_string()));
    }
    item
}

fn idempotency_write(
    idem: &IdempotencyKey,
    at: OffsetDateTime,
    response: &Value,
    entry: Option<&LedgerEntryId>,
) -> Write {
    Write::Put {
        item: idempotency_item(idem, at, response, entry),
        condition: Condition::not_exists_or_expired(Guard::IdempotencyNew, super::TTL_ATTR, at.unix_timestamp()),
    }
}

/// A stored idempotency record still in force answers a replay (same request) or refuses
/// a reuse (different request). An expired record no longer counts.
fn replay_of(idem: &IdempotencyKey, record: &Item, now: OffsetDateTime) -> Result<Option<Outcome>, StoreError> {
    let expires = record.num(super::TTL_ATTR)?;
    if expires < Decimal::from(now.unix_timestamp()) {
        return Ok(None);
    }
    if record.str("request_hash")? != idem.request_hash {
        return Ok(Some(Outcome::KeyReused));
    }
    let response = record.parsed("response", |s| serde_json::from_str(s))?;
    Ok(Some(Outcome::Replayed { response }))
}

/// What an idempotency record in force answers for `idem` ([`replay_of`]) for a change that
/// moves no points: the stored response for the same request, [`Committed::KeyReused`] for
/// another one, `None` if it expired.
pub(crate) fn replay_of_record(
    idem: &IdempotencyKey,
    record: &Item,
    now: OffsetDateTime,
) -> Result<Option<Committed>, StoreError> {
    Ok(match replay_of(idem, record, now)? {
        Some(Outcome::Replayed { response }) => Some(Committed::Replayed { response }),
        Some(_) => Some(Committed::KeyReused),
        None => None,
    })
}

/// A wallet's state from its item as read (`None`: never written, version 0).
pub fn wallet_state(item: Option<&Item>) -> Result<WalletState, StoreError> {
    Ok(item.map(wallet_from_item).transpose()?.unwrap_or_default())
}

impl<T: Table> Store<T> {
    /// Several items in one consistent read (`BatchGetItem`), in the order of `keys`, each in
    /// today's shape ([`upgrade`](crate::upgrade)); transient failures are retried like any read.
    pub async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Item>>, StoreError> {
        let mut attempt = 0;
        loop {
            match self.table.get_many(keys).await {
                Ok(items) => {
                    let mut upgraded = Vec::with_capacity(items.len());
                    for item in items {
                        upgraded.push(self.upgraded_opt(item).await?);
                    }
                    return Ok(upgraded);
                }
                Err(e) if e.is_retryable() && attempt + 1 < self.retry.max_attempts => {
                    tracing::warn!(error = %e, attempt, "batch read failed, retrying");
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(StoreError::from_table(e)),
            }
        }
    }

    /// The wallet's balance and version (a consistent read).
    pub async fn wallet(&self, wallet: &WalletId) -> Result<WalletState, StoreError> {
        let item = self.retrying_get(&keys::wallet(wallet)).await?;
        Ok(item.as_ref().map(wallet_from_item).transpose()?.unwrap_or_default())
    }

    async fn retrying_get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let mut attempt = 0;
        loop {
            match self.table.get(key).await {
                Ok(item) => return Ok(item),
                Err(e) if e.is_retryable() && attempt + 1 < self.retry.max_attempts => {
                    tracing::warn!(error = %e, attempt, "read failed, retrying");
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(StoreError::from_table(e)),
            }
        }
    }

    /// Applies `posting` exactly once (see the module doc). `respond` renders the response to
    /// store with the idempotency record; a replay returns that same response.
    pub async fn post(
        &self,
        posting: Posting,
        respond: impl Fn(&LedgerEntry) -> Value + Send + Sync,
    ) -> Result<Outcome, StoreError> {
        let state = self.wallet(&posting.wallet).await?;
        self.post_from(posting, state, respond).await
    }

    /// [`Store::post`] from a wallet state the caller just read (to decide the amount), saving
    /// the read. A state that moved since fails the wallet's condition, and the cancelled
    /// transaction hands back the current one: correct either way, one read fewer when not.
    pub async fn post_from(
        &self,
        posting: Posting,
        state: WalletState,
        respond: impl Fn(&LedgerEntry) -> Value + Send + Sync,
    ) -> Result<Outcome, StoreError> {
        self.post_crossing(posting, state, &[], respond).await
    }

    /// [`Store::post_from`], and the writes of `crossings` that belong to the change: those
    /// whose balance it leaves under, decided on the state each attempt is conditioned on, so a
    /// retry after the wallet moved decides again (a low-balance event is written once, by the
    /// debit that crossed).
    pub async fn post_crossing(
        &self,
        posting: Posting,
        state: WalletState,
        crossings: &[Crossing],
        respond: impl Fn(&LedgerEntry) -> Value + Send + Sync,
    ) -> Result<Outcome, StoreError> {
        assert_callers_own(&posting.also);
        assert_eq!(
            matches!(posting.wallet, WalletId::Workspace(_)),
            posting.partner.is_some(),
            "a workspace's posting names its partner, a partner wallet's none"
        );
        let own = POSTING_OWN_ACTIONS + 2 * usize::from(matches!(posting.kind, EntryKind::TopUp { .. }));
        let extra = crossings.len();
        assert!(
            posting.also.len() + own + extra <= MAX_TRANSACTION_ACTIONS,
            "a posting carries at most {} other writes",
            MAX_TRANSACTION_ACTIONS - own
        );
        let mut state = state;
        let mut attempt = 0;
        loop {
            let balance_after = state.balance.apply(posting.amount).ok_or(StoreError::BalanceOutOfRange)?;
            if !posting.overdraft.permits(posting.amount, balance_after) {
                return self.refused_debit(&posting, state.balance).await;
            }
            let entry = LedgerEntry {
                id: LedgerEntryId { wallet: posting.wallet.clone(), seq: state.version + 1 },
                amount: posting.amount,
                balance_after,
                kind: posting.kind.clone(),
                actor: posting.actor.clone(),
                created_at: state.updated_at.map_or(posting.at, |last| last.max(posting.at)),
                idempotency_key: posting.idempotency.key.clone(),
            };
            let response = respond(&entry);
            let mut writes = self.transaction(&posting, state, &entry, &response);
            writes.extend(
                crossings.iter().filter(|c| c.applies(state.balance, balance_after)).map(|c| (c.write)(&entry)),
            );

            let retry_after = match self.table.transact(writes).await {
                Ok(()) => return Ok(Outcome::Applied { entry: Box::new(entry), response }),
                Err(TableError::ConditionFailed { failed }) => {
                    match self.after_cancellation(&posting, &failed)? {
                        Cancelled::Done(outcome) => return Ok(*outcome),
                        // The first conflict retries at once with the state the cancelled
                        // transaction handed back (no read). After that the wallet is hot:
                        // back off so contenders spread out, then read afresh, because state
                        // that aged through a sleep would only conflict again.
                        Cancelled::WalletMoved(fresh) if attempt == 0 => {
                            state = *fresh;
                            None
                        }
                        Cancelled::WalletMoved(_) => Some(self.retry.delay(attempt)),
                    }
                }
                Err(e) if e.is_retryable() => {
                    if attempt + 1 >= self.retry.max_attempts {
                        return Err(StoreError::from_table(e));
                    }
                    // After an ambiguous failure the write may have landed: the read after
                    // the backoff sees it, and the idempotency record answers the retry.
                    tracing::warn!(error = %e, attempt, wallet = %posting.wallet, "transaction failed, retrying");
                    Some(self.retry.delay(attempt))
                }
                Err(e) => return Err(StoreError::from_table(e)),
            };
            attempt += 1;
            if attempt >= self.retry.max_attempts {
                return Err(StoreError::Conflict { attempts: attempt });
            }
            if let Some(delay) = retry_after {
                tokio::time::sleep(delay).await;
                state = self.wallet(&posting.wallet).await?;
            }
        }
    }

    fn transaction(&self, posting: &Posting, state: WalletState, entry: &LedgerEntry, response: &Value) -> Vec<Write> {
        let wallet_condition = if state.version == 0 {
            Condition::not_exists(Guard::WalletVersion)
        } else {
            Condition::equals(Guard::WalletVersion, "version", Attr::n(state.version))
        };
        let new_state = state.after(entry);
        let mut writes = Vec::with_capacity(POSTING_OWN_ACTIONS + posting.also.len());
        writes.push(Write::Put {
            item: wallet_item(&posting.wallet, posting.partner.as_ref(), new_state),
            condition: wallet_condition,
        });
        writes.push(Write::Put {
            item: entry_item(entry, posting.partner.as_ref().filter(|_| posting.in_partner_ledger)),
            condition: Condition::not_exists(Guard::LedgerEntryNew),
        });
        writes.push(idempotency_write(&posting.idempotency, posting.at, response, Some(&entry.id)));
        writes.extend(super::statements::month_writes(entry, posting.partner.as_ref(), state.month, state.balance));
        writes.extend(posting.also.iter().cloned());
        writes
    }

    /// Reads a cancelled transaction's reasons, most decisive first: a used idempotency key
    /// settles the request; a moved wallet means retry; only then is a caller's condition
    /// failure the caller's to handle.
    fn after_cancellation(&self, posting: &Posting, failed: &FailedGuards) -> Result<Cancelled, StoreError> {
        if let Some(record) = failed.current(Guard::IdempotencyNew)
            && let Some(outcome) = replay_of(&posting.idempotency, record, posting.at)?
        {
            return Ok(Cancelled::Done(Box::new(outcome)));
        }
        if let Some(wallet) = failed.get(Guard::WalletVersion) {
            let fresh = wallet.current.as_ref().map(wallet_from_item).transpose()?.unwrap_or_default();
            return Ok(Cancelled::WalletMoved(Box::new(fresh)));
        }
        if failed.contains(Guard::LedgerEntryNew) {
            // The wallet said version v, yet entry v+1 exists: the ledger and the wallet
            // disagree. Never paper over that.
            return Err(StoreError::Corrupt(format!("ledger entry exists ahead of wallet {}", posting.wallet)));
        }
        callers_failure(failed, "transaction")
    }

    /// A debit the guard refuses writes nothing, but it may be the replay of a request that
    /// succeeded when the balance was higher: the stored response wins over a refusal.
    async fn refused_debit(&self, posting: &Posting, balance: Balance) -> Result<Outcome, StoreError> {
        if let Some(record) = self.retrying_get(&posting.idempotency.item_key()).await?
            && let Some(outcome) = replay_of(&posting.idempotency, &record, posting.at)?
        {
            return Ok(outcome);
        }
        Ok(Outcome::InsufficientBalance { balance })
    }

    /// A page of a wallet's ledger, newest first or oldest first.
    pub async fn ledger(
        &self,
        wallet: &WalletId,
        after: Option<&LedgerCursor>,
        limit: usize,
        order: Order,
    ) -> Result<Page<LedgerEntry>, StoreError> {
        assert!(limit > 0 && limit < MAX_QUERY_LIMIT, "page size {limit} out of range");
        let start = after.map(LedgerCursor::sort_key);
        // One more than asked tells whether a next page exists, so a last page that happens to
        // be full carries no cursor to an empty page.
        let mut items = self
            .table
            .query(Query {
                pk: &keys::wallet_pk(wallet),
                sk_prefix: keys::LEDGER_PREFIX,
                start_after: start.as_deref(),
                limit: limit + 1,
                order,
            })
            .await
            .map_err(StoreError::from_table)?;
        let more = items.len() > limit;
        items.truncate(limit);
        let entries = items.iter().map(|i| entry_from_item(wallet, i)).collect::<Result<Vec<_>, _>>()?;
        let next = more.then(|| entries.last().map(|e| LedgerCursor::after(e.id.seq))).flatten();
        Ok(Page { items: entries, next })
    }

    /// A page of partner `p`'s ledger: the entries of all its workspaces, newest first. Read
    /// from a global secondary index, so an entry appears there a moment after it is written.
    pub async fn partner_ledger(
        &self,
        p: &PartnerId,
        after: Option<&PartnerLedgerCursor>,
        limit: usize,
    ) -> Result<Page<LedgerEntry, PartnerLedgerCursor>, StoreError> {
        assert!(limit > 0 && limit < MAX_QUERY_LIMIT, "page size {limit} out of range");
        let position = after.map(PartnerLedgerCursor::index_position);
        let mut items = self
            .table
            .query_index(IndexQuery {
                index: &PARTNER_LEDGER_INDEX,
                pk: &keys::partner_pk(p),
                start_after: position.as_ref(),
                limit: limit + 1,
                order: Order::Descending,
            })
            .await
            .map_err(StoreError::from_table)?;
        let more = items.len() > limit;
        items.truncate(limit);
        let mut entries = Vec::with_capacity(items.len());
        for item in &items {
            let pk = item.str(super::item::PK)?;
            let w = pk.strip_prefix("WS#").and_then(|w| WorkspaceId::parse(w).ok()).ok_or_else(|| {
                StoreError::Corrupt(format!("partner ledger lists an entry of {pk}, not a workspace"))
            })?;
            entries.push(entry_from_item(&WalletId::Workspace(w), item)?);
        }
        let next = match items.last() {
            Some(last) if more => {
                let sk = last.str(PARTNER_LEDGER_INDEX.sort)?;
                let position = PartnerLedgerCursor::from_index_sk(sk)
                    .ok_or_else(|| StoreError::Corrupt(format!("partner ledger index sort key {sk:?}")))?;
                Some(position)
            }
            _ => None,
        };
        Ok(Page { items: entries, next })
    }

    /// Proves the wallet's invariants: entries numbered 1..=version without a gap, each
    /// `balance_after` equal to the previous one plus its amount, and the last one equal to
    /// the wallet's balance (so `sum(amounts) == balance`).
    pub async fn verify(&self, wallet: &WalletId) -> Result<Verified, StoreError> {
        let state = self.wallet(wallet).await?;
        let corrupt = |what: String| Err(StoreError::Corrupt(format!("wallet {wallet}: {what}")));
        let mut expected_seq = 1u64;
        let mut running = Balance::ZERO;
        let mut cursor = None;
        let mut months: Vec<MonthTotals> = Vec::new();
        let mut last_at = None;
        loop {
            let page = self.ledger(wallet, cursor.as_ref(), VERIFY_PAGE, Order::Ascending).await?;
            for entry in &page.items {
                if entry.id.seq != expected_seq {
                    return corrupt(format!("expected entry {expected_seq}, found {}", entry.id.seq));
                }
                running = match running.apply(entry.amount) {
                    Some(b) if b == entry.balance_after => b,
                    _ => return corrupt(format!("entry {} does not add up", entry.id.seq)),
                };
                if last_at.is_some_and(|at| entry.created_at < at) {
                    return corrupt(format!("entry {} is dated before the one before it", entry.id.seq));
                }
                last_at = Some(entry.created_at);
                match months.last_mut() {
                    Some(m) if m.month == Month::of(entry.created_at) => m.add(entry),
                    _ => months.push(MonthTotals::starting(entry)),
                }
                expected_seq += 1;
            }
            if expected_seq > VERIFY_MAX_ENTRIES {
                let what = format!("wallet {wallet} has over {VERIFY_MAX_ENTRIES} entries to verify");
                return Err(StoreError::Fatal(TableError::fatal(what)));
            }
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        let entries = expected_seq - 1;
        if entries != state.version {
            return corrupt(format!("{entries} entries for version {}", state.version));
        }
        if running != state.balance {
            return corrupt(format!("entries sum to {running}, balance is {}", state.balance));
        }
        let stored = self.wallet_months(wallet).await?.months;
        if stored != months {
            return corrupt(format!("month totals {stored:?} are not those of its entries {months:?}"));
        }
        Ok(Verified { entries, balance: state.balance })
    }
}

/// What became of an idempotent change that moves no points.
#[derive(Debug, Clone, PartialEq)]
pub enum Committed {
    Applied,
    /// The key was used before with the same request: here is the first response.
    Replayed {
        response: Value,
    },
    /// The key was used before with a different request.
    KeyReused,
}

impl<T: Table> Store<T> {
    /// Writes `writes` and the idempotency record for `response` in one transaction, exactly
    /// once per key. The caller's failed conditions come back as [`StoreError::ConditionFailed`]
    /// naming their guards, and nothing is written. `writes` never carry [`Guard::STORE_OWN`].
    pub async fn commit(
        &self,
        idem: &IdempotencyKey,
        at: OffsetDateTime,
        writes: Vec<Write>,
        response: &Value,
    ) -> Result<Committed, StoreError> {
        assert!(writes.len() < MAX_TRANSACTION_ACTIONS, "a commit carries at most 99 writes");
        assert_callers_own(&writes);
        let mut all = Vec::with_capacity(writes.len() + 1);
        all.push(idempotency_write(idem, at, response, None));
        all.extend(writes);
        let mut attempt = 0;
        loop {
            match self.table.transact(all.clone()).await {
                Ok(()) => return Ok(Committed::Applied),
                Err(TableError::ConditionFailed { failed }) => {
                    if let Some(record) = failed.current(Guard::IdempotencyNew) {
                        match replay_of(idem, record, at)? {
                            Some(Outcome::Replayed { response }) => return Ok(Committed::Replayed { response }),
                            Some(_) => return Ok(Committed::KeyReused),
                            None => {}
                        }
                    }
                    return callers_failure(&failed, "commit");
                }
                Err(e) if e.is_retryable() && attempt + 1 < self.retry.max_attempts => {
                    tracing::warn!(error = %e, attempt, "commit failed, retrying");
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(StoreError::from_table(e)),
            }
        }
    }

    /// Writes `writes` in one transaction without an idempotency record: for changes whose own
    /// conditions make them safe to repeat (a state move guarded by the state it leaves). Transient
    /// failures are retried; failed conditions come back with their guards, nothing written.
    /// `writes` never carry [`Guard::STORE_OWN`].
    pub async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        assert!(writes.len() <= MAX_TRANSACTION_ACTIONS, "a transaction carries at most 100 writes");
        assert_callers_own(&writes);
        let mut attempt = 0;
        loop {
            match self.table.transact(writes.clone()).await {
                Ok(()) => return Ok(()),
                Err(TableError::ConditionFailed { failed }) => return callers_failure(&failed, "write"),
                Err(e) if e.is_retryable() && attempt + 1 < self.retry.max_attempts => {
                    tracing::warn!(error = %e, attempt, "write failed, retrying");
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(StoreError::from_table(e)),
            }
        }
    }

    /// One item by key, in today's shape ([`upgrade`](crate::upgrade)); a consistent read,
    /// transient failures retried.
    pub async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let item = self.retrying_get(key).await?;
        self.upgraded_opt(item).await
    }

    /// Items a query of an index found, in today's shape ([`upgrade`](crate::upgrade)).
    pub async fn upgrade_all(&self, items: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut upgraded = Vec::with_capacity(items.len());
        for item in items {
            upgraded.push(self.upgraded(item).await?);
        }
        Ok(upgraded)
    }

    /// A page of one partition's items whose sort key starts with `prefix`.
    pub async fn query_prefix(
        &self,
        pk: &str,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        self.table
            .query(Query { pk, sk_prefix: prefix, start_after, limit, order: Order::Ascending })
            .await
            .map_err(StoreError::from_table)
    }
}

/// The failures of a cancelled transaction that are the caller's, once the store has handled
/// its own: an error naming their guards.
fn callers_failure<T>(failed: &FailedGuards, what: &str) -> Result<T, StoreError> {
    let callers = failed.without(&Guard::STORE_OWN);
    if callers.is_empty() {
        return Err(StoreError::Corrupt(format!("{what} cancelled without a reason we know: {failed}")));
    }
    Err(StoreError::ConditionFailed { failed: callers })
}

/// A caller's write guarded like one of the store's own would make a failure ambiguous: a
/// programmer's error.
fn assert_callers_own(writes: &[Write]) {
    for w in writes {
        let guard = w.condition().guard();
        assert!(!guard.is_some_and(|g| Guard::STORE_OWN.contains(&g)), "a caller's write guarded by {guard:?}");
    }
}

enum Cancelled {
    Done(Box<Outcome>),
    WalletMoved(Box<WalletState>),
}

//! Every key of the single table is built here, and nowhere else.
//!
//! | PK | SK | entity_type |
//! |---|---|---|
//! | `WS#w` / `PARTNER#p` | `WALLET` | `wallet` (a workspace's: GSI3 `PARTNER#p` / `WS#w#WALLET`) |
//! | `WS#w` / `PARTNER#p` | `LEDGER#<seq, 20 digits>` | `ledger_entry` (a workspace's: GSI2 `PARTNER#p` / `<ns>#WS#w#<seq>`) |
//! | `IDEMP#<scope>#<key>` | `IDEMP` | `idempotency` |
//! | `PARTNER#p` | `PROFILE` | `partner` |
//! | `PARTNER#p` | `ADDON#<code>` | `partner_addon` |
//! | `PARTNER#p` | `PLAN#<id>` | `plan` |
//! | `PARTNER#p` | `TOPUPS` | `topup_options` (the whole list, replaced at once) |
//! | `PARTNER#p` | `RATE` | `credit_rate` |
//! | `PARTNER#p` | `WS#w` | `workspace_ref` (lists a partner's workspaces) |
//! | `PARTNER#p` | `EVENT#<ns, 20 digits><seq, 10 digits>#<id>` | `partner_event` (the outbox) |
//! | `PARTNERS` | `PARTNER#p` | `partner_ref` (lists the platform's partners) |
//! | `WS#w` | `PROFILE` | `workspace` (GSI1 `DUE#<shard>` / `<renews_on>#w`: renewals due; GSI3 `PARTNER#p` / `WS#w#PROFILE`: the partner's list) |
//! | `WS#w` | `ADDON#<add-on id>` | `workspace_addon` (the history of one that ended; those held are in the profile) |
//! | `PARTNER#p` | `STRIPE` | `stripe_connection` (the partner's connected account) |
//! | `ACCOUNT#acct_..` | `ACCOUNT` | `stripe_account` (which partner connected it) |
//! | `WS#w` | `AUTOTOPUP` | `auto_topup` (on/off, the option, failures, the attempt in flight) |
//! | `WS#w` | `BILLING_MANAGERS` | `billing_managers` (the users its partner lets manage its billing) |
//! | `WS#w` | `CUSTOMER` | `stripe_customer` (the workspace's customer on its partner's account, which it names; saved card) |
//! | `WS#w` | `STRIPE#acct_..` | `stripe_customer` (the same, as stored before it moved to `CUSTOMER`) |
//! | `CHECKOUT#cs_..` | `CHECKOUT` | `checkout` (points promised, pending/awaiting_payment/credited/expired/failed) |
//! | `PAYMENT#pi_..` | `PAYMENT` | `payment` (a credited payment: points, amount, refunded and disputed shares) |
//! | `PM#pm_..` | `PM` | `payment_method` (a saved card's details and whose it is, as Stripe's events told of them) |
//! | `PARTNER#p` | `BILLING` | `partner_billing` (prepaid or postpaid, set by the platform) |
//! | `PARTNER#p` | `CUSTOMER` | `platform_customer` (the partner as the platform's Stripe customer, saved card) |
//! | `PARTNER#p` | `REFILL` | `partner_refill` (the partner wallet's auto-refill: amount, threshold, attempts) |
//! | `ACCRUAL#<shard>` | `<partner>#<source>` | `accrual` (a wholesale charge waiting to be folded into the partner's wallet) |
//! | `ACCRUED#<partner>#<shard>` | `ACCRUED` | `accrued` (the sum of the partner's accruals in that shard) |
//! | `PLAN_EDITS` | `<partner>#<plan>` | `plan_edit` (an edited plan whose workspaces' status the pass has yet to settle) |
//! | `REFILLS` | `WS#w` / `PARTNER#p` | `refill_request` (a refill a debit or a renewal asked for, which the charging pass has yet to make) |
//! | `SWEEP#acct_..` / `SWEEP#platform` | `SWEEP` | `sweep_position` (where the reconciliation sweep goes on in that account's events) |
//! | `SWEEP` | `CURSOR` | `sweep_cursor` (the partner the last sweep run stopped after) |

use domain::{AddonCode, AddonId, CheckoutId, PartnerId, PlanId, WalletId, WorkspaceId};

use domain::stripe_ids::{AccountId, PaymentIntentId, PaymentMethodId, ReceiptId};

use super::item::Key;

pub const WALLET_SK: &str = "WALLET";
pub const LEDGER_PREFIX: &str = "LEDGER#";
pub const IDEMP_SK: &str = "IDEMP";
pub const PROFILE_SK: &str = "PROFILE";
pub const ADDON_PREFIX: &str = "ADDON#";
pub const PLAN_PREFIX: &str = "PLAN#";
pub const WORKSPACE_REF_PREFIX: &str = "WS#";
pub const TOPUPS_SK: &str = "TOPUPS";
pub const RATE_SK: &str = "RATE";
pub const STRIPE_SK: &str = "STRIPE";
pub const AUTO_TOPUP_SK: &str = "AUTOTOPUP";

pub fn workspace_auto_topup(w: &WorkspaceId) -> Key {
    Key::new(workspace_pk(w), AUTO_TOPUP_SK)
}

pub fn billing_managers(w: &WorkspaceId) -> Key {
    Key::new(workspace_pk(w), "BILLING_MANAGERS")
}
pub const STRIPE_PREFIX: &str = "STRIPE#";

/// Renewals are due on a write-sharded index: every workspace profile
/// carries `GSI1PK = DUE#<shard>` and `GSI1SK = <renews_on>#<workspace>`, the shard a stable hash
/// of the workspace id. Sharding spreads a month's renewals (all due on the 1st, say) over
/// partitions that the scheduler reads in parallel, instead of one hot index partition.
pub const DUE_SHARDS: u32 = 16;

/// FNV-1a of the id, modulo [`DUE_SHARDS`]: stable across processes and releases (a shard
/// that moved would leave a due renewal where nobody looks).
pub fn due_shard(w: &WorkspaceId) -> u32 {
    shard_of(w, DUE_SHARDS)
}

fn shard_of(w: &WorkspaceId, shards: u32) -> u32 {
    let hash =
        w.as_str().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    u32::try_from(hash % u64::from(shards)).expect("below the shard count")
}

/// A partner's wallet is shared by all its workspaces, so it must not be one item that every
/// usage event rewrites (a partition takes about 1,000 writes a second, and a busy partner's
/// workspaces would queue on it). Each wholesale charge is instead written
/// once, as its own item, into one of these partitions (by a stable hash of the workspace), and
/// the fold moves them into the partner's ledger in batches. No item is written more than
/// twice (created, then deleted by the fold), and each partition takes 1/16 of the platform's
/// usage events.
pub const ACCRUAL_SHARDS: u32 = 16;

pub fn accrual_shard(w: &WorkspaceId) -> u32 {
    shard_of(w, ACCRUAL_SHARDS)
}

pub fn accrual_pk(shard: u32) -> String {
    format!("ACCRUAL#{shard}")
}

/// The partner first, so one partner's charges in a shard are one key range, then what the
/// charge is for (unique: a usage event, an add-on bought, a renewal).
pub fn accrual_sk(p: &PartnerId, source: &str) -> String {
    format!("{p}#{source}")
}

/// The sort-key prefix of partner `p`'s charges in any shard.
pub fn accrual_prefix(p: &PartnerId) -> String {
    format!("{p}#")
}

pub fn accrual(w: &WorkspaceId, p: &PartnerId, source: &str) -> Key {
    Key::new(accrual_pk(accrual_shard(w)), accrual_sk(p, source))
}

/// What partner `p`'s accruals in one shard add up to, kept beside them: every accrual adds to
/// its shard's item in its own transaction, and the fold that deletes accruals takes their sum
/// off in its. A partition per partner and shard, so a partner's usage spreads these
/// additions over [`ACCRUAL_SHARDS`] items rather than rewriting one.
pub fn accrued(p: &PartnerId, shard: u32) -> Key {
    Key::new(format!("ACCRUED#{p}#{shard}"), "ACCRUED")
}

/// Every shard's [`accrued`] item of partner `p`: read together, what it owes unfolded.
pub fn accrued_all(p: &PartnerId) -> Vec<Key> {
    (0..ACCRUAL_SHARDS).map(|shard| accrued(p, shard)).collect()
}

pub fn partner_customer(p: &PartnerId) -> Key {
    Key::new(partner_pk(p), "CUSTOMER")
}

pub fn partner_refill(p: &PartnerId) -> Key {
    Key::new(partner_pk(p), "REFILL")
}

pub fn partner_billing(p: &PartnerId) -> Key {
    Key::new(partner_pk(p), "BILLING")
}

pub fn due_pk(shard: u32) -> String {
    format!("DUE#{shard}")
}

/// Sorts by due date, so a shard's due renewals are the first items of its partition.
pub fn due_sk(renews_on: &str, w: &WorkspaceId) -> String {
    format!("{renews_on}#{w}")
}

pub fn partner_stripe(p: &PartnerId) -> Key {
    Key::new(partner_pk(p), STRIPE_SK)
}

pub fn stripe_account(account: &AccountId) -> Key {
    Key::new(format!("ACCOUNT#{account}"), "ACCOUNT")
}

/// The workspace's customer on its partner's connected account: one key whatever the account
/// (the record names it), so the first read of a checkout or an auto top-up change finds it.
pub fn workspace_customer(w: &WorkspaceId) -> Key {
    Key::new(workspace_pk(w), "CUSTOMER")
}

/// Where a workspace's customer on `account` was kept before it moved to
/// [`workspace_customer`]: read when that key holds none on the account.
pub fn earlier_workspace_customer(w: &WorkspaceId, account: &AccountId) -> Key {
    Key::new(workspace_pk(w), format!("{STRIPE_PREFIX}{account}"))
}

pub fn checkout(id: &CheckoutId) -> Key {
    Key::new(format!("CHECKOUT#{id}"), "CHECKOUT")
}

/// Keyed by the PaymentIntent that refunds and disputes name.
/// Where the reconciliation sweep goes on in an account's events: a connected account's, or
/// the platform's own (`None`).
pub fn sweep_position(account: Option<&AccountId>) -> Key {
    Key::new(format!("SWEEP#{}", account.map_or("platform", AccountId::as_str)), "SWEEP")
}

/// The partner the last sweep run stopped after, when its time ran out.
pub fn sweep_cursor() -> Key {
    Key::new("SWEEP", "CURSOR")
}

pub fn payment_method(pm: &PaymentMethodId) -> Key {
    Key::new(format!("PM#{pm}"), "PM")
}

pub fn payment(payment_intent: &PaymentIntentId) -> Key {
    Key::new(format!("PAYMENT#{payment_intent}"), "PAYMENT")
}

/// Keyed by the receipt's own id (`in_...`, `ch_...`), so that the one read of a request for it
/// finds whose it is.
pub fn receipt(id: &ReceiptId) -> Key {
    Key::new(format!("RECEIPT#{id}"), "RECEIPT")
}

/// The one partition of the platform's partner index: written once per partner sign-up and
/// status change, far below a partition's write limit.
pub const PARTNERS_PK: &str = "PARTNERS";
pub const PARTNER_REF_PREFIX: &str = "PARTNER#";

pub fn partner_ref(p: &PartnerId) -> Key {
    Key::new(PARTNERS_PK, format!("{PARTNER_REF_PREFIX}{p}"))
}

pub fn partner_profile(p: &PartnerId) -> Key {
    Key::new(partner_pk(p), PROFILE_SK)
}

pub fn partner_addon(p: &PartnerId, code: AddonCode) -> Key {
    Key::new(partner_pk(p), format!("{ADDON_PREFIX}{}", code.as_str()))
}

pub fn partner_plan(p: &PartnerId, plan: PlanId) -> Key {
    Key::new(partner_pk(p), format!("{PLAN_PREFIX}{}", plan.as_str()))
}

/// The one partition of the plan edits waiting for their pass: written once per plan edit and
/// deleted once by the pass, far below a partition's write limit.
pub const PLAN_EDITS_PK: &str = "PLAN_EDITS";

/// Partner first, so one edit per plan: an edit made before the pass got to the last one
/// replaces it.
pub fn plan_edit(p: &PartnerId, plan: PlanId) -> Key {
    Key::new(PLAN_EDITS_PK, format!("{p}#{}", plan.as_str()))
}

pub const REFILLS_PK: &str = "REFILLS";

/// One per wallet: a request made before the pass got to the last one replaces it.
pub fn refill_request(wallet: &WalletId) -> Key {
    Key::new(REFILLS_PK, wallet_pk(wallet))
}

pub fn partner_topups(p: &PartnerId) -> Key {
    Key::new(partner_pk(p), TOPUPS_SK)
}

pub fn partner_credit_rate(p: &PartnerId) -> Key {
    Key::new(partner_pk(p), RATE_SK)
}

pub fn workspace_ref(p: &PartnerId, w: &WorkspaceId) -> Key {
    Key::new(partner_pk(p), format!("{WORKSPACE_REF_PREFIX}{w}"))
}

/// A workspace's items in its partner's workspace list (GSI3, under [`partner_pk`]): its
/// profile's, then its wallet's, so a Query from a workspace on reads each workspace whole.
pub fn workspace_list_sk(w: &WorkspaceId, part: ListedPart) -> String {
    let part = match part {
        ListedPart::Profile => "PROFILE",
        ListedPart::Wallet => "WALLET",
    };
    format!("{WORKSPACE_REF_PREFIX}{w}#{part}")
}

/// Which of a workspace's items a workspace-list index entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListedPart {
    Profile,
    Wallet,
}

pub fn workspace_profile(w: &WorkspaceId) -> Key {
    Key::new(workspace_pk(w), PROFILE_SK)
}

pub fn workspace_addon(w: &WorkspaceId, id: &AddonId) -> Key {
    Key::new(workspace_pk(w), format!("{ADDON_PREFIX}{id}"))
}

pub fn workspace_pk(w: &WorkspaceId) -> String {
    format!("WS#{w}")
}

pub fn partner_pk(p: &PartnerId) -> String {
    format!("PARTNER#{p}")
}

pub fn wallet_pk(wallet: &WalletId) -> String {
    match wallet {
        WalletId::Workspace(w) => workspace_pk(w),
        WalletId::Partner(p) => partner_pk(p),
    }
}

/// The wallet whose partition key is `pk` ([`wallet_pk`]), if it is one.
pub fn wallet_of_pk(pk: &str) -> Option<WalletId> {
    if let Some(w) = pk.strip_prefix("WS#") {
        return WorkspaceId::parse(w).ok().map(WalletId::Workspace);
    }
    PartnerId::parse(pk.strip_prefix("PARTNER#")?).ok().map(WalletId::Partner)
}

pub fn wallet(wallet: &WalletId) -> Key {
    Key::new(wallet_pk(wallet), WALLET_SK)
}

/// Zero-padded so that the sort key order is the sequence order.
pub fn ledger_sk(seq: u64) -> String {
    format!("{LEDGER_PREFIX}{seq:020}")
}

pub fn ledger_entry(wallet: &WalletId, seq: u64) -> Key {
    Key::new(wallet_pk(wallet), ledger_sk(seq))
}

/// The partner-ledger index's sort key of entry `seq` of `wallet`: time first (nanoseconds,
/// fixed width, so that text order is time order), then the wallet and sequence to make it
/// unique.
pub fn partner_ledger_sk(written_ns: u128, wallet: &WalletId, seq: u64) -> String {
    format!("{written_ns:020}#{}#{seq:020}", wallet_pk(wallet))
}

pub const EVENT_PREFIX: &str = "EVENT#";

/// A partner event's sort key: when it was written (nanoseconds, then the writing process's
/// sequence for ties), then its id.
pub fn event_sk(written_ns: u128, seq: u64, id: &str) -> String {
    format!("{EVENT_PREFIX}{written_ns:020}{seq:010}#{id}")
}

pub fn ledger_seq(sk: &str) -> Option<u64> {
    let digits = sk.strip_prefix(LEDGER_PREFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `scope` names who may use the key (e.g. a workspace and an operation), so two tenants'
/// keys never collide.
pub fn idempotency(scope: &str, key: &str) -> Key {
    Key::new(format!("IDEMP#{scope}#{key}"), IDEMP_SK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_shards_are_stable_and_spread() {
        let w = |s: &str| WorkspaceId::parse(s).unwrap();
        // Fixed values: a change here moves due renewals to shards nobody reads.
        assert_eq!(due_shard(&w("demo-ws-1")), due_shard(&w("demo-ws-1")));
        let mut seen = [0_u32; DUE_SHARDS as usize];
        for i in 0..1600 {
            seen[due_shard(&w(&format!("ws-{i}"))) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (50..=150).contains(&n)), "{seen:?}");
    }

    #[test]
    fn a_wallets_partition_key_names_it_back() {
        for wallet in [
            WalletId::Workspace(WorkspaceId::parse("ws-1").unwrap()),
            WalletId::Partner(PartnerId::parse("p-1").unwrap()),
        ] {
            assert_eq!(wallet_of_pk(&wallet_pk(&wallet)), Some(wallet));
        }
        for other in ["REFILLS", "WS#", "PARTNER#bad id", "ACCOUNT#acct_1"] {
            assert_eq!(wallet_of_pk(other), None, "{other}");
        }
    }

    #[test]
    fn ledger_keys_sort_by_sequence() {
        assert!(ledger_sk(9) < ledger_sk(10));
        assert_eq!(ledger_seq(&ledger_sk(u64::MAX)), Some(u64::MAX));
        assert_eq!(ledger_seq("LEDGER#12"), None);
        assert_eq!(ledger_seq("WALLET"), None);
    }
}

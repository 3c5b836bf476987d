//! The store contract: the same tests, unchanged, against the memory store and DynamoDB Local.

use domain::{Balance, Overdraft, PartnerId, Points, PointsDelta};
use serde_json::json;
use store::item::{Attr, Condition, Guard, Item, Write};
use store::{
    InvalidCursor, LedgerCursor, Order, Outcome, PartnerLedgerCursor, Store, StoreError, Table, TableError, keys,
};
use time::Duration;

use crate::support::{T0, new_wallet, posting, respond};

fn bal(s: &str) -> Balance {
    Balance::parse(s).unwrap()
}

async fn credit_and_debit_keep_the_ledger<T: Table>(store: Store<T>) {
    let w = new_wallet();
    let first = store.post(posting(&w, "100", Overdraft::Forbid, "k1"), respond).await.unwrap();
    let Outcome::Applied { entry, response } = first else { panic!("{first:?}") };
    assert_eq!((entry.id.seq, entry.balance_after), (1, bal("100")));
    assert_eq!(response, json!({"entry": 1, "balance": "100.00"}));

    let second = store.post(posting(&w, "-30.2575", Overdraft::Forbid, "k2"), respond).await.unwrap();
    assert!(matches!(second, Outcome::Applied { ref entry, .. } if entry.balance_after == bal("69.7425")));

    let state = store.wallet(&w).await.unwrap();
    assert_eq!((state.balance, state.version), (bal("69.7425"), 2));
    let page = store.ledger(&w, None, 10, Order::Descending).await.unwrap();
    let seen: Vec<_> =
        page.items.iter().map(|e| (e.id.seq, e.amount.to_string(), e.balance_after.to_string())).collect();
    assert_eq!(seen, [(2, "-30.2575".into(), "69.7425".into()), (1, "100.00".into(), "100.00".into())]);
    assert_eq!(page.items[1].created_at, T0);
    assert_eq!(page.next, None);
    assert_eq!(store.verify(&w).await.unwrap().entries, 2);
}

async fn a_refused_debit_writes_nothing<T: Table>(store: Store<T>) {
    let w = new_wallet();
    store.post(posting(&w, "10", Overdraft::Forbid, "fund"), respond).await.unwrap();
    let refused = store.post(posting(&w, "-10.01", Overdraft::Forbid, "too-much"), respond).await.unwrap();
    assert_eq!(refused, Outcome::InsufficientBalance { balance: bal("10") });
    assert_eq!(store.wallet(&w).await.unwrap().version, 1);
    // Nothing was recorded under the key: once funded, the same request goes through.
    store.post(posting(&w, "0.01", Overdraft::Forbid, "top"), respond).await.unwrap();
    let later = store.post(posting(&w, "-10.01", Overdraft::Forbid, "too-much"), respond).await.unwrap();
    assert!(matches!(later, Outcome::Applied { ref entry, .. } if entry.balance_after.is_zero()));
    store.verify(&w).await.unwrap();
}

async fn overdraft_only_when_allowed<T: Table>(store: Store<T>) {
    let w = new_wallet();
    let out = store.post(posting(&w, "-5.5", Overdraft::Allow, "usage"), respond).await.unwrap();
    assert!(matches!(out, Outcome::Applied { ref entry, .. } if entry.balance_after == bal("-5.5")));
    // A credit to a negative wallet is always fine, even under Forbid.
    let out = store.post(posting(&w, "2", Overdraft::Forbid, "credit"), respond).await.unwrap();
    assert!(matches!(out, Outcome::Applied { ref entry, .. } if entry.balance_after == bal("-3.5")));
    let out = store.post(posting(&w, "-1", Overdraft::Forbid, "debit"), respond).await.unwrap();
    assert_eq!(out, Outcome::InsufficientBalance { balance: bal("-3.5") });
    store.verify(&w).await.unwrap();
}

async fn a_replay_returns_the_first_response<T: Table>(store: Store<T>) {
    let w = new_wallet();
    store.post(posting(&w, "10", Overdraft::Forbid, "fund"), respond).await.unwrap();
    let first = store.post(posting(&w, "-10", Overdraft::Forbid, "buy"), respond).await.unwrap();
    let Outcome::Applied { response, .. } = first else { panic!("{first:?}") };
    // The balance is now 0: a replay must still answer with the stored success, not a 402.
    for _ in 0..2 {
        let again = store.post(posting(&w, "-10", Overdraft::Forbid, "buy"), respond).await.unwrap();
        assert_eq!(again, Outcome::Replayed { response: response.clone() });
    }
    let state = store.wallet(&w).await.unwrap();
    assert_eq!((state.balance, state.version), (bal("0"), 2));
}

async fn a_reused_key_is_refused<T: Table>(store: Store<T>) {
    let w = new_wallet();
    store.post(posting(&w, "10", Overdraft::Forbid, "k"), respond).await.unwrap();
    let reuse = store.post(posting(&w, "11", Overdraft::Forbid, "k"), respond).await.unwrap();
    assert_eq!(reuse, Outcome::KeyReused);
    // Also when the different request is a debit the guard would refuse.
    let reuse = store.post(posting(&w, "-50", Overdraft::Forbid, "k"), respond).await.unwrap();
    assert_eq!(reuse, Outcome::KeyReused);
    assert_eq!(store.wallet(&w).await.unwrap().version, 1);
}

async fn keys_are_scoped<T: Table>(store: Store<T>) {
    let (a, b) = (new_wallet(), new_wallet());
    store.post(posting(&a, "1", Overdraft::Forbid, "same"), respond).await.unwrap();
    let out = store.post(posting(&b, "1", Overdraft::Forbid, "same"), respond).await.unwrap();
    assert!(matches!(out, Outcome::Applied { .. }), "{out:?}");
}

async fn an_expired_key_can_be_used_again<T: Table>(store: Store<T>) {
    let w = new_wallet();
    store.post(posting(&w, "1", Overdraft::Forbid, "k"), respond).await.unwrap();
    let mut later = posting(&w, "2", Overdraft::Forbid, "k");
    later.at = T0 + Duration::days(8);
    let out = store.post(later, respond).await.unwrap();
    assert!(matches!(out, Outcome::Applied { ref entry, .. } if entry.balance_after == bal("3")), "{out:?}");
}

async fn other_writes_land_with_the_change_or_not_at_all<T: Table>(store: Store<T>) {
    let w = new_wallet();
    let addon = keys::idempotency("test", "an-item-of-the-caller");
    let mut p = posting(&w, "5", Overdraft::Forbid, "with-item");
    p.also.push(Write::Put {
        item: Item::new(&addon, "addon").with("status", Attr::s("active")),
        condition: Condition::not_exists(Guard::CheckoutNew),
    });
    assert!(matches!(store.post(p, respond).await.unwrap(), Outcome::Applied { .. }));
    assert_eq!(store.table().get(&addon).await.unwrap().unwrap().get("status"), Some(&Attr::s("active")));

    // The caller's condition fails: no balance change, no ledger entry, no idempotency record.
    let mut p = posting(&w, "7", Overdraft::Forbid, "second");
    p.also.push(Write::Update {
        key: addon.clone(),
        set: vec![("status".into(), Attr::s("credited"))],
        condition: Condition::equals(Guard::CheckoutStatus, "status", Attr::s("pending")),
    });
    let err = store.post(p.clone(), respond).await.unwrap_err();
    let StoreError::ConditionFailed { failed } = err else { panic!("{err:?}") };
    assert_eq!(failed.guards().collect::<Vec<_>>(), [Guard::CheckoutStatus]);
    assert_eq!(failed.current(Guard::CheckoutStatus).and_then(|i| i.get("status")), Some(&Attr::s("active")));
    let state = store.wallet(&w).await.unwrap();
    assert_eq!((state.balance, state.version), (bal("5"), 1));
    // The key was not consumed: the same request fails the same way rather than replaying.
    let err = store.post(p, respond).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ConditionFailed { ref failed } if failed.contains(Guard::CheckoutStatus)),
        "{err:?}"
    );
    store.verify(&w).await.unwrap();
}

async fn zero_amounts_are_recorded<T: Table>(store: Store<T>) {
    let w = new_wallet();
    let out = store.post(posting(&w, "0", Overdraft::Forbid, "free"), respond).await.unwrap();
    assert!(matches!(out, Outcome::Applied { ref entry, .. } if entry.id.seq == 1 && entry.amount.is_zero()));
    assert_eq!(store.verify(&w).await.unwrap().entries, 1);
}

async fn balances_stay_in_range<T: Table>(store: Store<T>) {
    let w = new_wallet();
    store.post(posting(&w, "1000000000000", Overdraft::Forbid, "max"), respond).await.unwrap();
    let err = store.post(posting(&w, "0.0001", Overdraft::Forbid, "over"), respond).await.unwrap_err();
    assert_eq!(err, StoreError::BalanceOutOfRange);
    assert_eq!(store.wallet(&w).await.unwrap().version, 1);
}

async fn ledgers_page_with_opaque_cursors<T: Table>(store: Store<T>) {
    let w = new_wallet();
    for i in 1..=25 {
        store.post(posting(&w, &i.to_string(), Overdraft::Forbid, &format!("k{i}")), respond).await.unwrap();
    }
    for order in [Order::Ascending, Order::Descending] {
        let mut seqs = Vec::new();
        let mut cursor: Option<LedgerCursor> = None;
        let mut pages = 0;
        loop {
            let page = store.ledger(&w, cursor.as_ref(), 10, order).await.unwrap();
            seqs.extend(page.items.iter().map(|e| e.id.seq));
            pages += 1;
            // A cursor survives a round trip through a client as a string.
            match page.next {
                Some(c) => cursor = Some(LedgerCursor::decode(&c.encode(&w), &w).unwrap()),
                None => break,
            }
        }
        let mut expected: Vec<u64> = (1..=25).collect();
        if order == Order::Descending {
            expected.reverse();
        }
        assert_eq!((seqs, pages), (expected, 3));
    }
    // A last page that is exactly full has no cursor to an empty page.
    let exact = store.ledger(&w, None, 25, Order::Ascending).await.unwrap();
    assert_eq!((exact.items.len(), exact.next), (25, None));
    assert_eq!(LedgerCursor::decode("not-a-cursor", &w), Err(InvalidCursor));
    assert_eq!(LedgerCursor::decode("V0FMTEVU", &w), Err(InvalidCursor), "base64 of WALLET is not a ledger position");
}

async fn verify_catches_a_tampered_ledger<T: Table>(store: Store<T>) {
    let w = new_wallet();
    store.post(posting(&w, "10", Overdraft::Forbid, "a"), respond).await.unwrap();
    store.post(posting(&w, "-4", Overdraft::Forbid, "b"), respond).await.unwrap();
    let key = keys::ledger_entry(&w, 2);
    let mut entry = store.table().get(&key).await.unwrap().unwrap();
    entry.set("amount", Attr::N(PointsDelta::parse("-3").unwrap().as_decimal()));
    store.table().transact(vec![Write::Put { item: entry, condition: Condition::Always }]).await.unwrap();
    assert!(matches!(store.verify(&w).await, Err(StoreError::Corrupt(_))));
}

async fn an_entry_ahead_of_its_wallet_is_corruption<T: Table>(store: Store<T>) {
    let w = new_wallet();
    let stray = Item::new(&keys::ledger_entry(&w, 1), "ledger_entry");
    let ahead = Condition::not_exists(Guard::LedgerEntryNew);
    store.table().transact(vec![Write::Put { item: stray, condition: ahead }]).await.unwrap();
    let err = store.post(posting(&w, "1", Overdraft::Forbid, "k"), respond).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

async fn partner_ledger_lists_all_its_workspaces<T: Table>(store: Store<T>) {
    let p = PartnerId::parse(&format!("p-{:08x}", fastrand::u32(..))).unwrap();
    let (a, b) = (new_wallet(), new_wallet());
    for i in 0..7i64 {
        let w = if i % 2 == 0 { &a } else { &b };
        let mut posting = posting(w, &format!("{}", i + 1), Overdraft::Forbid, &format!("k{i}"));
        posting.at = T0 + Duration::seconds(i);
        posting.partner = Some(p.clone());
        posting.in_partner_ledger = true;
        store.post(posting, respond).await.unwrap();
    }
    // An entry not indexed for the partner stays out of its listing.
    store.post(posting(&a, "100", Overdraft::Forbid, "unlisted"), respond).await.unwrap();
    let mut amounts = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let page = store.partner_ledger(&p, cursor.as_ref(), 3).await.unwrap();
        amounts.extend(page.items.iter().map(|e| e.amount.to_string()));
        match page.next {
            // The cursor survives a trip through a client as a string.
            Some(c) => cursor = Some(PartnerLedgerCursor::decode(&c.encode(&p), &p).unwrap()),
            None => break,
        }
    }
    assert_eq!(amounts, ["7.00", "6.00", "5.00", "4.00", "3.00", "2.00", "1.00"], "newest first, all workspaces");
    assert_eq!(PartnerLedgerCursor::decode("bm9wZQ", &p), Err(InvalidCursor));
}

/// The table layer itself, where the two implementations could most easily differ.
async fn tables_agree_on_conditions<T: Table>(store: Store<T>) {
    let t = store.table();
    let a = keys::idempotency("contract", &format!("a{}", fastrand::u32(..)));
    let b = keys::idempotency("contract", &format!("b{}", fastrand::u32(..)));
    // Update creates a missing item, as DynamoDB's UpdateItem does.
    t.transact(vec![Write::Update {
        key: a.clone(),
        set: vec![("n".into(), Attr::n(1))],
        condition: Condition::Always,
    }])
    .await
    .unwrap();
    assert_eq!(t.get(&a).await.unwrap().unwrap().get("n"), Some(&Attr::n(1)));
    // A failed check returns every failed action's current item, and writes nothing.
    let err = t
        .transact(vec![
            Write::Put { item: Item::new(&b, "x"), condition: Condition::not_exists(Guard::EventNew) },
            Write::Check { key: a.clone(), condition: Condition::equals(Guard::WorkspaceVersion, "n", Attr::n(2)) },
            Write::Delete { key: a.clone().with_sk_suffix(), condition: Condition::exists(Guard::AccrualExists) },
        ])
        .await
        .unwrap_err();
    let TableError::ConditionFailed { failed } = err else { panic!("{err:?}") };
    let summary: Vec<_> =
        failed.iter().map(|f| (f.guard, f.current.as_ref().and_then(|i| i.get("n").cloned()))).collect();
    assert_eq!(summary, [(Guard::WorkspaceVersion, Some(Attr::n(1))), (Guard::AccrualExists, None)]);
    assert_eq!(t.get(&b).await.unwrap(), None);
    // Numbers compare by value, whatever their scale.
    t.transact(vec![Write::Check {
        key: a.clone(),
        condition: Condition::equals(Guard::WorkspaceVersion, "n", Attr::N("1.000".parse().unwrap())),
    }])
    .await
    .unwrap();
    // OneOf: the attribute is one of the values (a state machine's "from" states); a missing
    // item or attribute is not.
    t.transact(vec![Write::Update {
        key: a.clone(),
        set: vec![("s".into(), Attr::s("pending"))],
        condition: Condition::Always,
    }])
    .await
    .unwrap();
    let moves = |from: &[&str]| Write::Update {
        key: a.clone(),
        set: vec![("s".into(), Attr::s("credited"))],
        condition: Condition::one_of(Guard::CheckoutStatus, "s", from),
    };
    assert!(matches!(t.transact(vec![moves(&["expired", "failed"])]).await, Err(TableError::ConditionFailed { .. })));
    t.transact(vec![moves(&["awaiting", "pending"])]).await.unwrap();
    assert_eq!(t.get(&a).await.unwrap().unwrap().get("s"), Some(&Attr::s("credited")));
    let credited = Condition::one_of(Guard::CheckoutStatus, "s", &["credited"]);
    let on_missing = Write::Check { key: a.clone().with_sk_suffix(), condition: credited };
    assert!(matches!(t.transact(vec![on_missing]).await, Err(TableError::ConditionFailed { .. })));
    let no_attr =
        Write::Check { key: a.clone(), condition: Condition::one_of(Guard::CheckoutStatus, "absent", &["credited"]) };
    assert!(matches!(t.transact(vec![no_attr]).await, Err(TableError::ConditionFailed { .. })));
    // NotExistsOrEquals: a missing item, or one whose attribute has the value.
    let claim = |key: &store::Key, v: &str| Write::Put {
        item: Item::new(key, "x").with("s", Attr::s(v)),
        condition: Condition::not_exists_or_equals(Guard::StripeAccountClaim, "s", Attr::s(v)),
    };
    let unclaimed = a.clone().with_sk_suffix();
    t.transact(vec![claim(&unclaimed, "mine")]).await.unwrap();
    t.transact(vec![claim(&unclaimed, "mine")]).await.unwrap();
    let err = t.transact(vec![claim(&unclaimed, "theirs")]).await.unwrap_err();
    let TableError::ConditionFailed { failed } = err else { panic!("{err:?}") };
    assert_eq!(failed.current(Guard::StripeAccountClaim).and_then(|i| i.get("s")), Some(&Attr::s("mine")));
    // Two actions on one item are refused.
    let twice = vec![
        Write::Check { key: a.clone(), condition: Condition::exists(Guard::WorkspaceExists) },
        Write::Delete { key: a, condition: Condition::Always },
    ];
    assert!(matches!(t.transact(twice).await, Err(TableError::Fatal { .. })));
}

/// A transaction whose caller's writes fail in part names exactly the guards that failed (not
/// the ones that held, nor the store's own), wherever their writes sit, and writes nothing:
/// through a balance change, an idempotent commit and a plain write alike.
async fn a_cancelled_transaction_names_exactly_its_failed_guards<T: Table>(store: Store<T>) {
    let tag = fastrand::u32(..);
    let (held, moved, missing) = (
        keys::idempotency("guards", &format!("held{tag}")),
        keys::idempotency("guards", &format!("moved{tag}")),
        keys::idempotency("guards", &format!("missing{tag}")),
    );
    let at_version = |n: i64| Item::new(&moved, "x").with("version", Attr::n(n));
    store.table().transact(vec![Write::Put { item: at_version(2), condition: Condition::Always }]).await.unwrap();
    let writes = || {
        vec![
            Write::Put { item: Item::new(&held, "x"), condition: Condition::not_exists(Guard::PaymentNew) },
            Write::Put {
                item: at_version(2),
                condition: Condition::equals(Guard::WorkspaceVersion, "version", Attr::n(1)),
            },
            Write::Check { key: missing.clone(), condition: Condition::exists(Guard::PartnerExists) },
        ]
    };
    let expect = |err: StoreError| {
        let StoreError::ConditionFailed { failed } = err else { panic!("{err:?}") };
        assert_eq!(failed.guards().collect::<Vec<_>>(), [Guard::WorkspaceVersion, Guard::PartnerExists]);
        assert_eq!(failed.current(Guard::WorkspaceVersion).and_then(|i| i.get("version")), Some(&Attr::n(2)));
        assert!(failed.get(Guard::PartnerExists).is_some_and(|f| f.current.is_none()));
        assert!(!failed.contains(Guard::PaymentNew) && !failed.contains(Guard::WalletVersion));
    };

    let w = new_wallet();
    let mut p = posting(&w, "5", Overdraft::Forbid, "guards");
    p.also = writes();
    expect(store.post(p, respond).await.unwrap_err());
    assert_eq!(store.wallet(&w).await.unwrap().version, 0);

    let idem = store::IdempotencyKey::new("guards", &format!("commit{tag}"), b"commit").unwrap();
    expect(store.commit(&idem, T0, writes(), &json!({})).await.unwrap_err());
    expect(store.write(writes()).await.unwrap_err());
    assert_eq!(store.table().get(&held).await.unwrap(), None);
    assert_eq!(store.load(&idem, T0, &[]).await.unwrap().used, None);
}

trait KeyExt {
    fn with_sk_suffix(self) -> Self;
}
impl KeyExt for store::Key {
    fn with_sk_suffix(mut self) -> Self {
        self.sk.push_str("-missing");
        self
    }
}

/// A batch read answers in the order asked, `None` for what is missing, and on both stores
/// refuses an empty batch and a key asked twice (DynamoDB's validation).
async fn batch_reads_answer_in_order<T: Table>(store: Store<T>) {
    let (a, b) = (new_wallet(), new_wallet());
    store.post(posting(&a, "1", Overdraft::Forbid, "a"), respond).await.unwrap();
    store.post(posting(&b, "2", Overdraft::Forbid, "b"), respond).await.unwrap();
    let missing = keys::wallet(&new_wallet());
    let got = store.table().get_many(&[keys::wallet(&b), missing.clone(), keys::wallet(&a)]).await.unwrap();
    let balances: Vec<_> = got.iter().map(|i| i.as_ref().map(|i| i.num("balance").unwrap().normalize())).collect();
    assert_eq!(balances, [Some(2.into()), None, Some(1.into())]);
    assert!(matches!(store.table().get_many(&[missing.clone(), missing]).await, Err(TableError::Fatal { .. })));
}

/// An operation's one read: its idempotency record (answered before, reused, expired or
/// unused) and its items, repeats allowed, in one batch.
async fn one_load_reads_the_record_and_the_items<T: Table>(store: Store<T>) {
    let tag = fastrand::u32(..);
    let idem = |request: &[u8]| store::IdempotencyKey::new("load", &format!("k{tag}"), request).unwrap();
    let w = new_wallet();
    store.post(posting(&w, "3", Overdraft::Forbid, "fund"), respond).await.unwrap();
    let (wallet, missing) = (keys::wallet(&w), keys::wallet(&new_wallet()));
    let asked = [wallet.clone(), missing.clone(), wallet.clone()];

    let fresh = store.load(&idem(b"first"), T0, &asked).await.unwrap();
    assert_eq!(fresh.used, None);
    assert_eq!(fresh.snapshot.get(&wallet).and_then(|i| i.get("version")), Some(&Attr::n(1)));
    assert_eq!(fresh.snapshot.get(&missing), None);

    store.commit(&idem(b"first"), T0, vec![], &json!({ "answer": 1 })).await.unwrap();
    let replay = store.load(&idem(b"first"), T0, &asked).await.unwrap();
    assert_eq!(replay.used, Some(store::Committed::Replayed { response: json!({ "answer": 1 }) }));
    assert!(replay.snapshot.get(&wallet).is_some(), "the items come with a replay too");
    let reused = store.load(&idem(b"another request"), T0, &[]).await.unwrap();
    assert_eq!(reused.used, Some(store::Committed::KeyReused));
    let expired = store.load(&idem(b"another request"), T0 + Duration::days(8), &asked).await.unwrap();
    assert_eq!(expired.used, None);
}

#[test]
#[should_panic(expected = "was not in the operation's read")]
fn a_key_the_load_did_not_read_is_a_bug() {
    let never_read = keys::wallet(&new_wallet());
    store::Snapshot::default().get(&never_read);
}

#[test]
fn points_used_here_are_exact() {
    // Guard for the fixtures above: "-30.2575" really has 4 places and survives parsing.
    assert_eq!(Points::parse("30.2575").unwrap().to_string(), "30.2575");
}

macro_rules! contract_suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[tokio::test] async fn $name() { super::$name(crate::support::memory_store()).await } )*
        }
        mod dynamodb {
            $( #[tokio::test] async fn $name() { super::$name(crate::support::dynamo_store().await).await } )*
        }
    };
}

contract_suite!(
    credit_and_debit_keep_the_ledger,
    a_refused_debit_writes_nothing,
    overdraft_only_when_allowed,
    a_replay_returns_the_first_response,
    a_reused_key_is_refused,
    keys_are_scoped,
    an_expired_key_can_be_used_again,
    other_writes_land_with_the_change_or_not_at_all,
    zero_amounts_are_recorded,
    balances_stay_in_range,
    ledgers_page_with_opaque_cursors,
    verify_catches_a_tampered_ledger,
    an_entry_ahead_of_its_wallet_is_corruption,
    tables_agree_on_conditions,
    partner_ledger_lists_all_its_workspaces,
    batch_reads_answer_in_order,
    a_cancelled_transaction_names_exactly_its_failed_guards,
    one_load_reads_the_record_and_the_items,
);

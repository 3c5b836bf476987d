//! Balance alerts: thresholds a partner chooses, for its workspaces' wallets and for its own,
//! told as partner events: `balance.low` when a wallet's balance goes under one, then
//! `balance.recovered` when it is back at or above it.
//!
//! They are worked out after the change, from the table's stream (the `deliver-webhooks`
//! function), not on the change's path: a usage debit writes nothing more, and a wallet that
//! moves a thousand times a minute is looked at once per stream batch. What is compared is the
//! wallet's balance as read then against what was last told (`<wallet> / ALERT_STATE`: the
//! thresholds it is under, at the wallet version it was worked out from), so an alert is told
//! once per crossing whatever order or how many times the stream hands the entries over, and a
//! dip and recovery inside one batch tells nothing (the balance never stayed under).

use std::collections::BTreeSet;

use serde_json::json;

use domain::{Balance, PartnerId, Points, WalletId};
use store::{Attr, Condition, Guard, Item, Key, StoreError, Table, Write, keys, wallet_state};

use super::events::{PartnerEventKind, wallet_event_write};
use super::{Billing, Mutation, OpError, Replied};

/// Most thresholds of each kind.
pub const MAX_THRESHOLDS: usize = 5;

const ALERTS_SK: &str = "ALERTS";
const STATE_SK: &str = "ALERT_STATE";

fn alerts_key(p: &PartnerId) -> Key {
    Key::new(keys::partner_pk(p), ALERTS_SK)
}

fn state_key(wallet: &WalletId) -> Key {
    Key::new(keys::wallet_pk(wallet), STATE_SK)
}

/// A partner's thresholds: for each of its workspaces' wallets, and for its own wallet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BalanceAlerts {
    pub workspace: Vec<Points>,
    pub wallet: Vec<Points>,
}

impl BalanceAlerts {
    /// Checked and in order: at most [`MAX_THRESHOLDS`] of each, each once.
    pub fn new(workspace: Vec<Points>, wallet: Vec<Points>) -> Result<Self, OpError> {
        let check = |name: &str, mut list: Vec<Points>| {
            if list.len() > MAX_THRESHOLDS {
                return Err(OpError::invalid(name, format!("at most {MAX_THRESHOLDS} thresholds")));
            }
            for t in &list {
                t.check_price().map_err(|e| OpError::invalid(name, e))?;
            }
            list.sort();
            list.dedup();
            Ok(list)
        };
        Ok(Self { workspace: check("workspace", workspace)?, wallet: check("wallet", wallet)? })
    }

    fn for_wallet(&self, wallet: &WalletId) -> &[Points] {
        match wallet {
            WalletId::Workspace(_) => &self.workspace,
            WalletId::Partner(_) => &self.wallet,
        }
    }
}

fn points_list(item: &Item, name: &str) -> Result<Vec<Points>, OpError> {
    Ok(item.parsed(name, |s| serde_json::from_str::<Vec<Points>>(s))?)
}

fn alerts_from(item: &Item) -> Result<BalanceAlerts, OpError> {
    Ok(BalanceAlerts { workspace: points_list(item, "workspace")?, wallet: points_list(item, "wallet")? })
}

fn json_list(list: &[Points]) -> Attr {
    Attr::s(serde_json::to_string(list).expect("points serialize"))
}

/// What [`Billing::check_balance_alerts`] did for one wallet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertsTold {
    pub low: u32,
    pub recovered: u32,
}

impl<T: Table> Billing<T> {
    pub async fn balance_alerts(&self, p: &PartnerId) -> Result<BalanceAlerts, OpError> {
        self.partner_settings(p).await?;
        let item = self.store.get(&alerts_key(p)).await?;
        Ok(item.as_ref().map(alerts_from).transpose()?.unwrap_or_default())
    }

    /// Replaces the partner's thresholds (the last writer wins, under the request's key). A
    /// wallet already under a new threshold is told at its next change.
    pub async fn put_balance_alerts(
        &self,
        p: &PartnerId,
        alerts: BalanceAlerts,
        m: Mutation<'_, BalanceAlerts>,
    ) -> Replied {
        if let super::load::Read::Answered(reply) = self.load_for_partner(p, m.key(), &[]).await? {
            return Ok(reply);
        }
        let item = Item::new(&alerts_key(p), "balance_alerts")
            .with("workspace", json_list(&alerts.workspace))
            .with("wallet", json_list(&alerts.wallet));
        let writes = vec![
            Write::Put { item, condition: Condition::Always },
            Write::Check { key: keys::partner_profile(p), condition: Condition::exists(Guard::PartnerExists) },
        ];
        self.commit(m.key(), writes, m.answer(&alerts), |_| OpError::NotFound("partner")).await
    }

    /// Tells what `wallet`'s balance crossed since it was last looked at: its wallet, its
    /// partner's thresholds and what was told before in one read, and the events with the new
    /// state in one transaction (under the state's version; a pass that lost the race leaves it
    /// to the one that won).
    pub async fn check_balance_alerts(&self, wallet: &WalletId) -> Result<AlertsTold, OpError> {
        let read = self.store.get_many(&[keys::wallet(wallet), state_key(wallet)]).await?;
        let (Some(wallet_item), state) = (&read[0], &read[1]) else { return Ok(AlertsTold::default()) };
        let partner = match wallet {
            WalletId::Partner(p) => p.clone(),
            WalletId::Workspace(_) => {
                let pk = wallet_item.str(store::schema::WORKSPACE_LIST_INDEX.partition)?;
                let p = pk.strip_prefix("PARTNER#").and_then(|p| PartnerId::parse(p).ok());
                p.ok_or_else(|| OpError::Internal(format!("wallet {wallet} names no partner")))?
            }
        };
        let now = wallet_state(Some(wallet_item))?;
        let alerts = self.store.get(&alerts_key(&partner)).await?;
        let alerts = alerts.as_ref().map(alerts_from).transpose()?.unwrap_or_default();
        let (was_under, told_version, version) = match state {
            Some(s) => (
                s.parsed("under", |t| serde_json::from_str::<BTreeSet<Points>>(t))?,
                s.u64("seq")?,
                Some(s.u64("version")?),
            ),
            None => (BTreeSet::new(), 0, None),
        };
        if now.version <= told_version && state.is_some() {
            return Ok(AlertsTold::default());
        }
        let under: BTreeSet<Points> = alerts
            .for_wallet(wallet)
            .iter()
            .copied()
            .filter(|t| now.balance < Balance::from_decimal(t.as_decimal()).expect("a threshold is a balance"))
            .collect();
        // Thresholds no longer set are forgotten without a word.
        let kept: BTreeSet<Points> =
            was_under.intersection(&alerts.for_wallet(wallet).iter().copied().collect()).copied().collect();
        let (low, recovered): (Vec<Points>, Vec<Points>) =
            (under.difference(&kept).copied().collect(), kept.difference(&under).copied().collect());
        if low.is_empty() && recovered.is_empty() && state.is_some() && under == was_under {
            return Ok(AlertsTold::default());
        }
        let at = self.clock.now();
        let mut writes = Vec::with_capacity(low.len() + recovered.len() + 1);
        for (kind, thresholds) in
            [(PartnerEventKind::BalanceLow, &low), (PartnerEventKind::BalanceRecovered, &recovered)]
        {
            for t in thresholds {
                let data = json!({ "threshold": t, "balance": now.balance, "wallet_version": now.version });
                writes.push(wallet_event_write(&partner, wallet, kind, data, at));
            }
        }
        let state_item = Item::new(&state_key(wallet), "alert_state")
            .with("under", Attr::s(serde_json::to_string(&under).expect("points serialize")))
            .with("seq", Attr::n(now.version))
            .with("version", Attr::n(version.map_or(1, |v| v + 1)));
        let condition = match version {
            None => Condition::not_exists(Guard::AlertStateVersion),
            Some(v) => Condition::equals(Guard::AlertStateVersion, "version", Attr::n(v)),
        };
        writes.push(Write::Put { item: state_item, condition });
        match self.store.write(writes).await {
            Ok(()) => Ok(AlertsTold {
                low: u32::try_from(low.len()).unwrap_or(u32::MAX),
                recovered: u32::try_from(recovered.len()).unwrap_or(u32::MAX),
            }),
            Err(StoreError::ConditionFailed { .. }) => Ok(AlertsTold::default()),
            Err(e) => Err(e.into()),
        }
    }
}

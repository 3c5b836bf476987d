//! A warning before a renewal the balance will not cover: `renewal.at_risk`, told to the
//! partner [`WARN_DAYS`] days ahead (or as soon as a run sees it within them), once per workspace
//! and renewal, so the partner can ask its customer to top up before add-ons lapse.
//!
//! The scheduled renewal run makes this pass after renewing: the due index lists renewals by
//! date, so the workspaces renewing within the next days are the next few entries of each shard.
//! The renewal is priced as it would be now (the partner's current prices, the add-ons held now,
//! cancelling ones left out), against the balance now. Told once: the event and a marker
//! (`WS#w / WARNED#<renews_on>`, gone a week after the renewal) in one transaction, the marker
//! conditioned on not existing.

use serde_json::json;
use time::Date;

use domain::{Cycle, Points, WalletId, plan_renewal};
use store::records::{self, format_date};
use store::schema::DUE_INDEX;
use store::table::{IndexPosition, MAX_QUERY_LIMIT};
use store::{Attr, Condition, Guard, Item, Key, StoreError, Table, Write, keys, wallet_state};

use super::events::{PartnerEventKind, event_write};
use super::{Billing, OpError};

/// How many days ahead a renewal the balance will not cover is told.
pub const WARN_DAYS: i64 = 3;
/// How long a warning's marker outlives its renewal.
const MARKER_DAYS: i64 = 7;

fn marker_key(w: &domain::WorkspaceId, renews_on: Date) -> Key {
    Key::new(keys::workspace_pk(w), format!("WARNED#{}", format_date(renews_on)))
}

/// What a pass told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WarningRun {
    /// Workspaces renewing within [`WARN_DAYS`] that were looked at.
    pub looked_at: u32,
    /// `renewal.at_risk` events written.
    pub warned: u32,
    pub finished: bool,
}

fn internal(e: impl std::fmt::Display) -> OpError {
    OpError::Internal(e.to_string())
}

impl<T: Table> Billing<T> {
    /// Tells every renewal due after today and within [`WARN_DAYS`] whose price the balance
    /// does not cover, once, until `out_of_time()`.
    pub async fn warn_renewals_ahead(&self, out_of_time: impl Fn() -> bool) -> Result<WarningRun, OpError> {
        let today = self.clock.now().date();
        let horizon =
            today.checked_add(time::Duration::days(WARN_DAYS)).ok_or_else(|| internal("date out of range"))?;
        let (today_text, horizon_text) = (format_date(today), format_date(horizon));
        let mut run = WarningRun::default();
        for shard in 0..keys::DUE_SHARDS {
            let pk = keys::due_pk(shard);
            let mut after: Option<IndexPosition> = None;
            'shard: loop {
                if out_of_time() {
                    return Ok(run);
                }
                let (items, next) = self.due_page(&pk, after.as_ref(), MAX_QUERY_LIMIT).await?;
                for item in &items {
                    // `<yyyy-mm-dd>#<workspace>`: dates compare as strings.
                    let sk = item.str(DUE_INDEX.sort)?;
                    let Some(day) = sk.get(..10) else { continue };
                    if day > horizon_text.as_str() {
                        break 'shard;
                    }
                    if day <= today_text.as_str() {
                        continue;
                    }
                    run.looked_at += 1;
                    let ws = records::workspace_from(item)?;
                    match self.warn_if_short(&ws).await {
                        Ok(true) => run.warned += 1,
                        Ok(false) => {}
                        // The next run looks again.
                        Err(e) => tracing::warn!(workspace = %ws.id, error = %e, "renewal warning failed"),
                    }
                }
                match next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        run.finished = true;
        Ok(run)
    }

    /// Warns about `ws`'s next renewal if its balance does not cover it and it was not warned
    /// about before. Answers whether it warned now.
    async fn warn_if_short(&self, ws: &domain::Workspace) -> Result<bool, OpError> {
        let marker = marker_key(&ws.id, ws.renews_on);
        let wallet = WalletId::Workspace(ws.id.clone());
        let read =
            self.store.get_many(&[keys::wallet(&wallet), marker.clone(), keys::workspace_auto_topup(&ws.id)]).await?;
        if read[1].is_some() {
            return Ok(false);
        }
        let balance = wallet_state(read[0].as_ref())?.balance;
        let auto_topup = read[2].as_ref().map(records::auto_topup_from).transpose()?.unwrap_or_default();
        let ended_on = ws.renews_on.previous_day().ok_or_else(|| internal("renews_on is the first day"))?;
        let ended = Cycle::containing(ws.anchor, ended_on).map_err(internal)?;
        let prices = self.partner_addons(&ws.partner).await?;
        let price = |code| prices.iter().find(|p| p.code == code).map(|p| p.points);
        let plan = plan_renewal(ended, &ws.addons, price).map_err(internal)?;
        let shortfall = plan.shortfall(balance);
        if shortfall == Points::ZERO {
            return Ok(false);
        }
        let now = self.clock.now();
        let data = json!({
            "renews_on": format_date(ws.renews_on),
            "due": plan.total,
            "balance": balance,
            "shortfall": shortfall,
            "auto_topup": auto_topup.enabled,
        });
        let expires = ws.renews_on.midnight().assume_utc().unix_timestamp() + MARKER_DAYS * 24 * 3600;
        let writes = vec![
            Write::Put {
                item: Item::new(&marker, "renewal_warning")
                    .with("due", Attr::N(plan.total.as_decimal()))
                    .with(store::TTL_ATTR, Attr::n(expires)),
                condition: Condition::not_exists(Guard::RenewalWarningNew),
            },
            event_write(&ws.partner, &ws.id, PartnerEventKind::RenewalAtRisk, data, now),
        ];
        match self.store.write(writes).await {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

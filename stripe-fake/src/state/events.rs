//! Events: what each change emits, kept for the control endpoints and the List Events API
//! (`GET /v1/events`), and queued for delivery.

use std::cmp::Reverse;
use std::ops::RangeInclusive;

use serde_json::{Value, json};

use super::{
    API_VERSION, Acct, R, Reply, State, check_known_params, invalid, list, missing, push_bounded, random_id,
    unknown_param,
};
use crate::form::Param;

/// `GET /v1/events`'s page size when `limit` is not given, and the largest it takes (Stripe's).
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: i64 = 100;
/// Most `types[]` one list call takes (Stripe's).
const MAX_TYPES: usize = 20;

/// How events leave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryMode {
    /// Keep new events until released (`/_fake/events/release`), in the order asked for.
    #[serde(default)]
    pub hold: bool,
    /// Send every event twice.
    #[serde(default)]
    pub duplicate: bool,
    /// Send every event this late (in the background); 0 sends it before the call that caused
    /// it answers, so a test needs no waiting.
    #[serde(default)]
    pub delay_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub at_ms: i64,
    /// The receiver's status code; `None` if it could not be reached.
    pub status: Option<u16>,
    pub error: Option<String>,
}

/// Whether `release` will send an event. `deliver` sends any event on demand, whatever its hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Hold {
    /// Sent as the delivery mode said (or on its way, late).
    #[default]
    NotHeld,
    /// Kept until `release` (or `deliver`) sends it.
    Held,
    /// A held event whose delivery is lost for good: `release` passes it over, as a webhook
    /// Stripe never managed to send; only `deliver` still sends it, and it stays dropped.
    Dropped,
}

/// Shown as two flags, `held` and `dropped`, in `GET /_fake/events`.
impl serde::Serialize for Hold {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut flags = serializer.serialize_map(Some(2))?;
        flags.serialize_entry("held", &(*self == Hold::Held))?;
        flags.serialize_entry("dropped", &(*self == Hold::Dropped))?;
        flags.end()
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub account: Acct,
    pub created: i64,
    /// The exact body sent (and signed), and what `GET /v1/events` lists.
    pub payload: String,
    #[serde(flatten)]
    pub hold: Hold,
    pub deliveries: Vec<Delivery>,
}

impl State {
    pub(super) fn emit(&mut self, type_: &str, account: &Acct, object: Value, previous: Option<Value>) -> String {
        let id = random_id("evt_", 24);
        let created = self.now();
        let mut data = json!({ "object": object });
        if let Some(previous) = previous {
            data["previous_attributes"] = previous;
        }
        let mut event = json!({
            "id": id,
            "object": "event",
            "api_version": API_VERSION,
            "created": created,
            "data": data,
            "livemode": false,
            "pending_webhooks": 1,
            "request": { "id": null, "idempotency_key": null },
            "type": type_,
        });
        if let Some(account) = account {
            event["account"] = json!(account);
        }
        push_bounded(
            &mut self.events,
            Event {
                id: id.clone(),
                type_: type_.to_owned(),
                account: account.clone(),
                created,
                payload: event.to_string(),
                hold: Hold::NotHeld,
                deliveries: Vec::new(),
            },
        );
        self.outbox.push(id.clone());
        id
    }

    pub fn event_mut(&mut self, id: &str) -> Option<&mut Event> {
        self.events.iter_mut().find(|e| e.id == id)
    }

    /// Loses a held event's delivery for good ([`Hold::Dropped`]).
    pub fn drop_event(&mut self, id: &str) -> Result<(), String> {
        let event = self.event_mut(id).ok_or_else(|| format!("no event {id}"))?;
        match event.hold {
            Hold::Held => {
                event.hold = Hold::Dropped;
                Ok(())
            }
            Hold::NotHeld => Err(format!("event {id} is not held: only a held event can be dropped")),
            Hold::Dropped => Err(format!("event {id} is already dropped")),
        }
    }

    /// `GET /v1/events`: what happened on the calling account, newest first, each event as its
    /// webhook's body, whether that webhook left, is held, late, dropped or never had a URL to go
    /// to: the list is what happened, not what was delivered. Only the events the fake still keeps
    /// ([`super::MAX_LOG`]); Stripe keeps 30 days.
    pub fn list_events(&self, acct: &Acct, p: &Param) -> R<Reply> {
        check_known_params(p, &["created", "ending_before", "expand", "limit", "starting_after", "type", "types"])?;
        let query = EventQuery::parse(p)?;
        let (page, has_more) = query.page(&self.events_newest_first(acct))?;
        let data = page.iter().map(|e| serde_json::from_str(&e.payload).expect("the fake wrote this JSON")).collect();
        let mut body = list("/v1/events", data);
        body["has_more"] = json!(has_more);
        Ok(Reply::ok(body))
    }

    /// The account's events in Stripe's list order: by `created`, newest first, and the events
    /// of one second newest first too (`events` is in creation order; the sort is stable).
    fn events_newest_first(&self, acct: &Acct) -> Vec<&Event> {
        let mut events: Vec<&Event> = self.events.iter().rev().filter(|e| &e.account == acct).collect();
        events.sort_by_key(|e| Reverse(e.created));
        events
    }
}

/// A checked `GET /v1/events` query.
struct EventQuery<'a> {
    /// `created`, `created[gt]`, `[gte]`, `[lt]` and `[lte]`, all given at once, as one range of
    /// seconds.
    created: RangeInclusive<i64>,
    types: TypeFilter<'a>,
    limit: usize,
    cursor: Option<Cursor<'a>>,
}

/// Which types `type` or `types[]` keep.
enum TypeFilter<'a> {
    Any,
    /// `types[]`: exactly one of these.
    OneOf(Vec<&'a str>),
    /// `type`: one type, or a group of them with `*` wildcards (`charge.dispute.*`).
    Pattern(&'a str),
}

/// Where a page starts, named by an event of the calling account.
enum Cursor<'a> {
    /// The next page: the events older than this one.
    StartingAfter(&'a str),
    /// The page before: the events immediately newer than this one.
    EndingBefore(&'a str),
}

impl<'a> EventQuery<'a> {
    fn parse(p: &'a Param) -> R<Self> {
        let cursor = match (scalar(p, "starting_after")?, scalar(p, "ending_before")?) {
            (Some(_), Some(_)) => {
                let message = "You may only specify one of these parameters: ending_before, starting_after.";
                return Err(invalid(None, message, None));
            }
            (Some(id), None) => Some(Cursor::StartingAfter(id)),
            (None, Some(id)) => Some(Cursor::EndingBefore(id)),
            (None, None) => None,
        };
        Ok(Self { created: created_range(p)?, types: TypeFilter::parse(p)?, limit: limit(p)?, cursor })
    }

    /// The page of `newest_first` (the account's events) asked for, in list order, and whether
    /// more lie beyond it in its direction (older, or with `ending_before` newer).
    fn page<'e>(&self, newest_first: &[&'e Event]) -> R<(Vec<&'e Event>, bool)> {
        let at = |id: &str, param: &str| {
            newest_first.iter().position(|e| e.id == id).ok_or_else(|| missing("event", id, Some(param)))
        };
        let kept = |events: &[&'e Event]| events.iter().copied().filter(|e| self.keeps(e)).collect::<Vec<_>>();
        let mut older = match self.cursor {
            None => kept(newest_first),
            Some(Cursor::StartingAfter(id)) => kept(&newest_first[at(id, "starting_after")? + 1..]),
            Some(Cursor::EndingBefore(id)) => {
                let newer = kept(&newest_first[..at(id, "ending_before")?]);
                let start = newer.len().saturating_sub(self.limit);
                return Ok((newer[start..].to_vec(), start > 0));
            }
        };
        let has_more = older.len() > self.limit;
        older.truncate(self.limit);
        Ok((older, has_more))
    }

    fn keeps(&self, event: &Event) -> bool {
        self.created.contains(&event.created) && self.types.keeps(&event.type_)
    }
}

impl<'a> TypeFilter<'a> {
    /// Stripe takes `type` or `types[]` (at most [`MAX_TYPES`]), not both.
    fn parse(p: &'a Param) -> R<Self> {
        match (scalar(p, "type")?, p.get("types")) {
            (None, None) => Ok(Self::Any),
            (Some(_), Some(_)) => Err(invalid(None, "You may pass either `type` or `types`, but not both.", None)),
            (Some(pattern), None) => Ok(Self::Pattern(pattern)),
            (None, Some(Param::Value(_))) => Err(invalid(None, "Invalid array", Some("types"))),
            (None, Some(Param::Map(given))) => {
                let types =
                    given.values().map(|t| t.as_str().ok_or_else(|| invalid(None, "Invalid array", Some("types"))));
                let types = types.collect::<R<Vec<&str>>>()?;
                if types.len() > MAX_TYPES {
                    let message = format!("Array types exceeded maximum {MAX_TYPES} allowed elements.");
                    return Err(invalid(None, &message, Some("types")));
                }
                Ok(Self::OneOf(types))
            }
        }
    }

    fn keeps(&self, type_: &str) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(types) => types.contains(&type_),
            Self::Pattern(pattern) => wildcard_match(pattern, type_),
        }
    }
}

/// Whether `type_` matches `pattern`, where each `*` stands for any run of characters, dots
/// included: `charge.dispute.*` matches `charge.dispute.closed`, `charge.*` matches it too, `*`
/// matches everything, and a pattern without `*` only itself.
fn wildcard_match(pattern: &str, type_: &str) -> bool {
    let mut pieces = pattern.split('*');
    let head = pieces.next().unwrap_or_default();
    let Some(mut rest) = type_.strip_prefix(head) else { return false };
    let Some(tail) = pieces.next_back() else { return rest.is_empty() };
    // The earliest place for each middle piece leaves the most room for the ones after it.
    for piece in pieces {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(tail)
}

/// A parameter that must be a single value, not a hash.
fn scalar<'a>(p: &'a Param, name: &str) -> R<Option<&'a str>> {
    match p.get(name) {
        None => Ok(None),
        Some(Param::Value(v)) => Ok(Some(v)),
        Some(Param::Map(_)) => Err(invalid(None, &format!("Invalid string: {name} must be a string"), Some(name))),
    }
}

fn integer(raw: &str, param: &str) -> R<i64> {
    raw.parse().map_err(|_| invalid(Some("parameter_invalid_integer"), &format!("Invalid integer: {raw}"), Some(param)))
}

/// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] if not given.
fn limit(p: &Param) -> R<usize> {
    let Some(raw) = scalar(p, "limit")? else { return Ok(DEFAULT_LIMIT) };
    let limit = integer(raw, "limit")?;
    if limit < 1 {
        return Err(invalid(None, "This value must be greater than or equal to 1.", Some("limit")));
    }
    if limit > MAX_LIMIT {
        let message = format!("This value must be less than or equal to {MAX_LIMIT}.");
        return Err(invalid(None, &message, Some("limit")));
    }
    Ok(usize::try_from(limit).expect("limit is 1 to MAX_LIMIT"))
}

/// `created=T` (that second), or any of `created[gt]`, `[gte]`, `[lt]`, `[lte]` (unix seconds),
/// each narrowing the range; none: every second.
fn created_range(p: &Param) -> R<RangeInclusive<i64>> {
    let bounds = match p.get("created") {
        None => return Ok(i64::MIN..=i64::MAX),
        Some(Param::Value(at)) => {
            let at = integer(at, "created")?;
            return Ok(at..=at);
        }
        Some(Param::Map(bounds)) => bounds,
    };
    let (mut first, mut last) = (i64::MIN, i64::MAX);
    for (op, value) in bounds {
        let name = format!("created[{op}]");
        let at = || integer(value.as_str().unwrap_or_default(), &name);
        match op.as_str() {
            "gt" => first = first.max(at()?.saturating_add(1)),
            "gte" => first = first.max(at()?),
            "lt" => last = last.min(at()?.saturating_sub(1)),
            "lte" => last = last.min(at()?),
            _ => return Err(unknown_param(&name)),
        }
    }
    Ok(first..=last)
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn type_patterns_match_as_stripe_documents() {
        let matches = |pattern: &str, type_: &str| wildcard_match(pattern, type_);
        assert!(matches("charge.dispute.*", "charge.dispute.closed"));
        assert!(matches("charge.*", "charge.dispute.closed"));
        assert!(matches("*", "payment_intent.succeeded"));
        assert!(matches("*.succeeded", "payment_intent.succeeded"));
        assert!(matches("checkout.*.expired", "checkout.session.expired"));
        assert!(matches("charge.refunded", "charge.refunded"));
        assert!(!matches("charge.dispute.*", "charge.refunded"));
        assert!(!matches("charge.*", "charges.x"));
        assert!(!matches("charge", "charge.refunded"), "without a star, only the type itself");
        assert!(!matches("*.created", "charge.dispute.closed"));
        assert!(!matches("a*a", "a"), "the pieces may not overlap");
    }
}

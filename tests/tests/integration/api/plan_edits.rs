//! A plan edit pauses or resumes its workspaces in the plan edits' pass, not in the request:
//! the request's DynamoDB calls do not grow with the partner's workspaces, and the pass writes
//! each workspace's status and event once, however often it runs.

use billing::{PlanEditLimits, PlanEditRun};
use domain::WorkspaceId;
use integration_tests::{Call, CountingTable, Fault, FaultyTable, fresh_table};
use serde_json::{Value, json};
use store::memory::MemoryTable;
use store::table::MAX_TRANSACTION_ACTIONS;
use store::{Condition, Guard, Table, TableError, Write, records};

use super::{Api, P, Q, W, X, partner_admin, req, starter_limits};

/// P's workspaces on the starter plan besides `W`.
const MORE: [&str; 4] = ["ws-acme-2", "ws-acme-3", "ws-acme-4", "ws-acme-5"];
/// P's workspace on another plan.
const GROWTH: &str = "ws-acme-growth";

/// Small batches, so that a handful of workspaces takes several.
const SMALL: PlanEditLimits = PlanEditLimits { per_batch: 2, batches: 100 };

/// Both tenants, P with five starter workspaces and one on growth; every workspace uses one bot
/// (the starter plan's limit) and one member.
async fn five_on_starter<T: Table>(api: &Api<T>) -> Vec<&'static str> {
    api.tenants().await;
    for w in MORE {
        api.workspace(P, w, "starter").await;
    }
    api.workspace(P, GROWTH, "growth").await;
    let starter: Vec<&str> = std::iter::once(W).chain(MORE).collect();
    for w in starter.iter().chain([&GROWTH, &X]) {
        assert_eq!(api.usage(w, 1, 1, 0).await.ok(200)["workspace"]["status"], "active");
    }
    starter
}

/// `PUT /partner/plans/starter` with `bots` bots.
async fn edit_starter<T: Table>(api: &Api<T>, p: &str, bots: u32) {
    let body = json!({
        "label": "Starter",
        "limits": starter_limits(bots, 2),
        "monthly_price": { "amount_minor": 4900, "currency": "usd" },
    });
    let put = req("PUT /partner/plans/{id}").param("id", "starter").by(partner_admin(p)).json(body);
    api.call(put).await.ok(200);
}

async fn pass<T: Table>(api: &Api<T>, limits: PlanEditLimits) -> PlanEditRun {
    api.billing.apply_plan_edits(|| false, limits).await.expect("the pass runs")
}

/// The status stored on the workspace (views evaluate it when read).
async fn stored_status<T: Table>(api: &Api<T>, w: &str) -> String {
    let ws = api.billing.workspace(&WorkspaceId::parse(w).unwrap()).await.unwrap();
    if ws.status.is_paused() { "paused" } else { "active" }.to_owned()
}

/// `(workspace, type)` of every pause and resume event of `p`, oldest first.
async fn status_events<T: Table>(api: &Api<T>, p: &str) -> Vec<(String, String)> {
    let page = api.call(req("GET /partner/events").by(partner_admin(p)).query("limit", "100")).await.ok(200);
    let mut events: Vec<_> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"].as_str().is_some_and(|t| t.starts_with("workspace.")))
        .map(|e| (e["workspace_id"].as_str().unwrap().to_owned(), e["type"].as_str().unwrap().to_owned()))
        .collect();
    events.reverse();
    events
}

/// One `(workspace, kind)` per workspace, in the order of `ws`.
fn each(ws: &[&str], kind: &str) -> Vec<(String, String)> {
    ws.iter().map(|w| ((*w).to_owned(), kind.to_owned())).collect()
}

fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort();
    v
}

async fn lowering_a_limit_pauses_every_workspace_in_one_pass_and_raising_it_resumes_them<T: Table>(api: Api<T>) {
    let starter = five_on_starter(&api).await;
    edit_starter(&api, P, 0).await;
    assert_eq!(stored_status(&api, W).await, "active", "the request leaves the stored status to the pass");
    assert_eq!(api.view(P, W).await["status"], "paused", "views evaluate the new limits at once");

    let run = pass(&api, SMALL).await;
    assert_eq!(run, PlanEditRun { edits: 1, paused: 5, resumed: 0, failed: 0, finished: true });
    for w in &starter {
        assert_eq!(stored_status(&api, w).await, "paused", "{w}");
    }
    assert_eq!(stored_status(&api, GROWTH).await, "active", "another plan");
    assert_eq!(stored_status(&api, X).await, "active", "another partner's starter plan");
    assert_eq!(sorted(status_events(&api, P).await), sorted(each(&starter, "workspace.paused")));
    assert_eq!(status_events(&api, Q).await, vec![]);

    // Nothing is pending: another pass writes nothing.
    assert_eq!(pass(&api, SMALL).await, PlanEditRun { finished: true, ..Default::default() });
    edit_starter(&api, P, 1).await;
    let run = pass(&api, SMALL).await;
    assert_eq!(run, PlanEditRun { edits: 1, paused: 0, resumed: 5, failed: 0, finished: true });
    for w in &starter {
        assert_eq!(stored_status(&api, w).await, "active", "{w}");
    }
    let events = status_events(&api, P).await;
    let (paused, resumed) = events.split_at(5);
    assert_eq!(
        (sorted(paused.to_vec()), sorted(resumed.to_vec())),
        (sorted(each(&starter, "workspace.paused")), sorted(each(&starter, "workspace.resumed"))),
        "one event each way per workspace"
    );
}

/// A pass out of batches stops part way and says so; the next goes on from there, and an edit
/// made in between starts the plan over on the newest limits.
async fn a_pass_out_of_batches_leaves_the_rest_to_the_next<T: Table>(api: Api<T>) {
    let starter = five_on_starter(&api).await;
    edit_starter(&api, P, 0).await;
    // P's list in id order: W, ws-acme-2..5, then the growth workspace.
    let one_batch = PlanEditLimits { per_batch: 2, batches: 1 };
    assert_eq!(pass(&api, one_batch).await, PlanEditRun { paused: 2, ..Default::default() });
    assert_eq!(pass(&api, one_batch).await, PlanEditRun { paused: 2, ..Default::default() });
    assert_eq!(stored_status(&api, MORE[3]).await, "active", "not reached yet");
    // The limit goes back up before the pass reached the last one: the new edit replaces the
    // old, and the next pass resumes the four it had paused.
    edit_starter(&api, P, 1).await;
    let run = pass(&api, SMALL).await;
    assert_eq!(run, PlanEditRun { edits: 1, paused: 0, resumed: 4, failed: 0, finished: true });
    for w in &starter {
        assert_eq!(stored_status(&api, w).await, "active", "{w}");
    }
    let events = status_events(&api, P).await;
    assert_eq!(events.len(), 8, "{events:?}");
    assert_eq!(pass(&api, SMALL).await, PlanEditRun { finished: true, ..Default::default() });
}

api_suite!(
    lowering_a_limit_pauses_every_workspace_in_one_pass_and_raising_it_resumes_them,
    a_pass_out_of_batches_leaves_the_rest_to_the_next,
);

/// The pass dies after a workspace's status was written (its answer lost), half way through:
/// the pass that follows settles the rest, and every workspace has exactly one event.
async fn a_pass_that_dies_mid_batch_then_runs_again_writes_each_event_once<T: Table>(api: Api<FaultyTable<T>>) {
    let starter = five_on_starter(&api).await;
    edit_starter(&api, P, 0).await;
    let table = api.billing.store.table();
    // The first batch: two pauses and where the pass got to; then the second batch's first pause.
    for _ in 0..3 {
        table.inject(Call::Transact, Fault::Pass);
    }
    table.inject(Call::Transact, Fault::After(TableError::fatal("the process died")));
    let crashed = pass(&api, SMALL).await;
    assert_eq!(crashed, PlanEditRun { paused: 2, failed: 1, ..Default::default() });
    assert_eq!(table.committed_despite_error.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(status_events(&api, P).await.len(), 3, "the third pause is written, its answer lost");

    let run = pass(&api, SMALL).await;
    assert_eq!(
        run,
        PlanEditRun { edits: 1, paused: 2, resumed: 0, failed: 0, finished: true },
        "the third found paused"
    );
    for w in &starter {
        assert_eq!(stored_status(&api, w).await, "paused", "{w}");
    }
    assert_eq!(sorted(status_events(&api, P).await), sorted(each(&starter, "workspace.paused")));
    assert_eq!(pass(&api, SMALL).await, PlanEditRun { finished: true, ..Default::default() });
}

#[tokio::test]
async fn memory_a_pass_that_dies_mid_batch_then_runs_again_writes_each_event_once() {
    a_pass_that_dies_mid_batch_then_runs_again_writes_each_event_once(
        Api::over(FaultyTable::new(MemoryTable::new())).await,
    )
    .await;
}

#[tokio::test]
async fn dynamodb_a_pass_that_dies_mid_batch_then_runs_again_writes_each_event_once() {
    a_pass_that_dies_mid_batch_then_runs_again_writes_each_event_once(
        Api::over(FaultyTable::new(fresh_table().await)).await,
    )
    .await;
}

/// Adds `n` more starter workspaces to P, written straight to the table (their profiles and list
/// entries, copies of `W`'s), many per transaction: what the plan edit is measured against.
async fn copies_of_w<T: Table>(api: &Api<T>, n: usize) {
    let w = api.billing.workspace(&WorkspaceId::parse(W).unwrap()).await.unwrap();
    let writes: Vec<Write> = (0..n)
        .flat_map(|i| {
            let copy = domain::Workspace { id: WorkspaceId::parse(&format!("ws-copy-{i:05}")).unwrap(), ..w.clone() };
            [
                Write::Put {
                    item: records::workspace_item(&copy),
                    condition: Condition::not_exists(Guard::WorkspaceNew),
                },
                Write::Put {
                    item: records::workspace_ref_item(&w.partner, &copy),
                    condition: Condition::not_exists(Guard::WorkspaceNew),
                },
            ]
        })
        .collect();
    for chunk in writes.chunks(MAX_TRANSACTION_ACTIONS) {
        api.billing.store.table().transact(chunk.to_vec()).await.expect("write the copies");
    }
}

/// The DynamoDB calls of one `PUT /partner/plans/starter` by a partner with `workspaces` starter
/// workspaces: (reads, queries, transactions).
async fn plan_edit_calls<T: Table>(api: &Api<CountingTable<T>>, workspaces: usize) -> (u64, u64, u64) {
    api.tenants().await;
    assert_eq!(api.usage(W, 1, 1, 0).await.ok(200)["workspace"]["status"], "active");
    copies_of_w(api, workspaces - 1).await;
    let listed = api.call(req("GET /partner/workspaces").by(partner_admin(P)).query("limit", "1")).await.ok(200);
    assert_ne!(listed["next_cursor"], Value::Null, "more than one workspace");
    let table = api.billing.store.table();
    for counter in [&table.gets, &table.queries, &table.transactions] {
        counter.store(0, std::sync::atomic::Ordering::Relaxed);
    }
    edit_starter(api, P, 0).await;
    let calls = table.counts();
    // The edit is not lost for all that: the pass pauses what the request did not read.
    let run = pass(api, PlanEditLimits::default()).await;
    assert_eq!((run.edits, run.paused, run.finished), (1, u64::try_from(workspaces).unwrap(), true));
    calls
}

async fn the_plan_edit_costs_the_same_with_10_and_1000_workspaces<T: Table>(
    ten: Api<CountingTable<T>>,
    thousand: Api<CountingTable<T>>,
) {
    let few = plan_edit_calls(&ten, 10).await;
    let many = plan_edit_calls(&thousand, 1000).await;
    eprintln!(
        "PUT /partner/plans/{{id}}: (reads, queries, transactions) = {few:?} at 10 workspaces, {many:?} at 1,000"
    );
    assert_eq!(few, many);
    assert_eq!(few, (1, 0, 1), "its idempotency record and the caller's partner in one read, one transaction");
}

#[tokio::test]
async fn memory_the_plan_edit_costs_the_same_with_10_and_1000_workspaces() {
    the_plan_edit_costs_the_same_with_10_and_1000_workspaces(
        Api::over(CountingTable::new(MemoryTable::new())).await,
        Api::over(CountingTable::new(MemoryTable::new())).await,
    )
    .await;
}

#[tokio::test]
async fn dynamodb_the_plan_edit_costs_the_same_with_10_and_1000_workspaces() {
    the_plan_edit_costs_the_same_with_10_and_1000_workspaces(
        Api::over(CountingTable::new(fresh_table().await)).await,
        Api::over(CountingTable::new(fresh_table().await)).await,
    )
    .await;
}

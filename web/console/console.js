// The partner console: the Stripe connection, credit billing and the brand, add-on prices
// beside their cost price, plans, top-up options and the credit rate against the wholesale
// floor, the workspaces (points, status, why paused; points added or deducted with a reason,
// add-ons removed, plan and re-billing changed), the partner wallet and its auto-refill, the
// ledger and the events. Points and amounts are strings from the API, shown as they come;
// money typed in is turned into minor units by its text (shared/money.js), never by floats.

import { call, claimsOf, keepToken, newKey, takeToken } from "../shared/api.js";
import { MINIMUM_MINOR, THREE_DECIMAL, ZERO_DECIMAL, formatMoney, majorOf, minorOf } from "../shared/money.js";
import { act, entryDetail, fill, h, kindLabel, openDialog, say, when } from "../shared/ui.js";

/** @typedef {import("../types/api").components["schemas"]["PartnerSettings"]} PartnerSettings */
/** @typedef {import("../types/api").components["schemas"]["LedgerEntry"]} LedgerEntry */

const PAGE = 10;
const PLANS = ["starter", "growth", "agency"];

/** @type {string} */
let token = "";
/** @type {PartnerSettings | null} */
let settings = null;
/** @type {any[]} */
let workspaces = [];

/** @param {string} method @param {string} path @param {{body?: unknown, key?: string}} [options] */
const api = (method, path, options) => call(token, /** @type {any} */ (method), path, options);

/**
 * A button that runs `action` (its message said once done).
 * @param {string} label
 * @param {() => Promise<string | void>} action
 * @param {Record<string, any>} [attrs]
 */
function actionButton(label, action, attrs = {}) {
  const button = /** @type {HTMLButtonElement} */ (h("button", { type: "button", ...attrs }, label));
  button.addEventListener("click", () => act(button, action));
  return button;
}

/** @param {string} id @param {string} text @param {HTMLElement} input @param {string} [hint] */
const field = (id, text, input, hint) => h("div", { class: "field" }, h("label", { for: id }, text), input, hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null);

/** @param {PartnerSettings} next */
async function saveSettings(next) {
  settings = await api("PUT", "/partner/settings", { body: next });
}

async function loadStripe() {
  const [{ connection }, current] = await Promise.all([api("GET", "/partner/stripe"), api("GET", "/partner/settings")]);
  settings = current;
  const s = /** @type {PartnerSettings} */ (current);
  const mode = connection ? (connection.livemode ? "live" : "test") : null;
  const credit = h("input", { type: "checkbox", id: "credit-billing", checked: s.credit_billing });
  fill(
    "stripe",
    connection
      ? h(
          "p",
          { id: "stripe-line" },
          `Connected account ${connection.account} `,
          h("span", { class: `pill ${mode}` }, mode === "live" ? "Live mode" : "Test mode"),
          connection.deauthorized_at ? h("span", { class: "pill paused" }, ` revoked ${when(connection.deauthorized_at)}`) : "",
        )
      : h("p", { id: "stripe-line" }, "No Stripe account connected: connect one to sell points and add-ons."),
    h("div", { class: "row" }, credit, h("label", { for: "credit-billing" }, "Credit billing for add-ons"), actionButton("Save", async () => {
      await saveSettings({ ...s, credit_billing: /** @type {HTMLInputElement} */ (credit).checked });
      return settings && settings.credit_billing ? "Credit billing is on: workspaces may buy add-ons and points." : "Credit billing is off.";
    }, { id: "credit-save" })),
    h("p", { class: "muted" }, `Grace days for unpaid renewals: ${s.grace_days}. Points are called "${s.unit_name}".`),
  );
  renderBrand();
}

function renderBrand() {
  if (!settings) return;
  const s = settings;
  const b = s.brand || {};
  const name = h("input", { id: "brand-name-input", value: b.name || "", maxLength: 80 });
  const logo = h("input", { id: "brand-logo", type: "url", value: b.logo_url || "" });
  const primary = h("input", { id: "brand-primary", value: b.primary_color || "", placeholder: "#1d4ed8", size: 9 });
  const accent = h("input", { id: "brand-accent", value: b.accent_color || "", placeholder: "#7c2d12", size: 9 });
  const unitName = h("input", { id: "brand-unit", value: s.unit_name, maxLength: 20 });
  const origins = h("input", { id: "brand-origins", value: (b.embed_origins || []).join(" ") });
  /** @param {HTMLElement} input */
  const text = (input) => /** @type {HTMLInputElement} */ (input).value.trim() || null;
  fill(
    "brand",
    field("brand-name-input", "Name shown", name),
    field("brand-logo", "Logo URL (https)", logo),
    h("div", { class: "row" }, field("brand-primary", "Primary colour", primary), field("brand-accent", "Accent colour", accent)),
    h("p", { class: "hint" }, "Colours as #rrggbb, dark enough for white text (contrast 4.5:1)."),
    field("brand-unit", "What your points are called", unitName),
    field("brand-origins", "Sites that may embed the billing page", origins, "Origins separated by spaces, like https://app.example.com"),
    actionButton("Save brand", async () => {
      await saveSettings({
        ...s,
        unit_name: /** @type {HTMLInputElement} */ (unitName).value.trim(),
        brand: {
          name: text(name),
          logo_url: text(logo),
          primary_color: text(primary),
          accent_color: text(accent),
          embed_origins: /** @type {HTMLInputElement} */ (origins).value.split(/\s+/).filter(Boolean),
        },
      });
      return "Brand saved: the billing page shows it from its next load.";
    }, { id: "brand-save" }),
  );
}

async function loadAddons() {
  const { data } = await api("GET", "/partner/addons");
  const rows = data.map((/** @type {any} */ a) => {
    const points = h("input", { id: `price-${a.code}`, value: a.points, inputMode: "decimal", size: 8, "aria-label": `${a.label}: your price in points` });
    const label = h("input", { id: `label-${a.code}`, value: a.label, "aria-label": `${a.code}: label your workspaces see` });
    const enabled = h("input", { type: "checkbox", id: `enabled-${a.code}`, checked: a.enabled, "aria-label": `${a.label} on sale` });
    // In money, on a subscribed workspace's plan bill (sold so while credit billing is off).
    const money = h("input", { id: `money-${a.code}`, value: a.price ? majorOf(a.price.amount_minor, a.price.currency) : "", inputMode: "decimal", size: 8, "aria-label": `${a.label}: price a month in money, on the plan's bill (empty: not sold in money)` });
    const currency = h("input", { id: `money-currency-${a.code}`, value: a.price ? a.price.currency : "usd", size: 3, maxLength: 3, "aria-label": `${a.label}: currency of the price in money` });
    return h(
      "tr",
      null,
      h("th", { scope: "row" }, a.code),
      h("td", { class: "num" }, `${formatMoney(a.cost_price)} a month`),
      h("td", null, points),
      h("td", null, money, " ", currency),
      h("td", null, label),
      h("td", null, enabled),
      h("td", null, actionButton("Save", async () => {
        /** @type {Record<string, unknown>} */
        const body = { label: /** @type {HTMLInputElement} */ (label).value, points: /** @type {HTMLInputElement} */ (points).value.trim(), enabled: /** @type {HTMLInputElement} */ (enabled).checked };
        const moneyText = /** @type {HTMLInputElement} */ (money).value.trim();
        if (moneyText) {
          const code = /** @type {HTMLInputElement} */ (currency).value.trim().toLowerCase();
          const parsed = minorOf(moneyText, code);
          if (!parsed.ok) throw new Error(`${a.code}: ${parsed.why}`);
          body.price = { amount_minor: parsed.minor, currency: code };
        }
        const saved = await api("PUT", `/partner/addons/${a.code}`, { body });
        const inMoney = saved.price ? `, ${formatMoney(saved.price)} on the plan's bill` : "";
        return `${saved.label}: ${saved.points} points a month${inMoney}${saved.enabled ? "" : " (not on sale)"}.`;
      }, { "data-save-addon": a.code, "aria-label": `Save ${a.code}` })),
    );
  });
  fill(
    "addons",
    h("div", { class: "table-wrap" }, h("table", null, h("thead", null, h("tr", null, h("th", { scope: "col" }, "Add-on"), h("th", { scope: "col", class: "num" }, "Cost price"), h("th", { scope: "col" }, "Your price (points)"), h("th", { scope: "col" }, "In money, on the plan's bill"), h("th", { scope: "col" }, "Label"), h("th", { scope: "col" }, "On sale"), h("th", { scope: "col" }, ""))), h("tbody", null, rows))),
  );
}

async function loadPlans() {
  const { data } = await api("GET", "/partner/plans");
  const rows = data.map((/** @type {any} */ p) =>
    h("tr", null, h("th", { scope: "row" }, p.label), h("td", null, p.id), h("td", { class: "num" }, formatMoney(p.monthly_price)), h("td", null, Object.entries(p.limits).map(([k, v]) => `${k.replace(/_/g, " ")}: ${v}`).join("; "))),
  );
  fill("plans", h("div", { class: "table-wrap" }, h("table", null, h("thead", null, h("tr", null, h("th", { scope: "col" }, "Plan"), h("th", { scope: "col" }, "Id"), h("th", { scope: "col", class: "num" }, "Monthly price"), h("th", { scope: "col" }, "Limits"))), h("tbody", null, rows))));
}

/** The currency rules, said where the amounts are typed. */
function currencyRules() {
  const minimums = Object.entries(MINIMUM_MINOR).map(([c, m]) => `${c.toUpperCase()} ${majorOf(m, c)}`);
  return h(
    "div",
    { class: "rules", id: "currency-rules" },
    h("strong", null, "Currency rules (as Stripe charges):"),
    h(
      "ul",
      null,
      h("li", null, `No decimals in ${ZERO_DECIMAL.map((c) => c.toUpperCase()).slice(0, 6).join(", ")} and the other zero-decimal currencies: 1000 JPY is 1000.`),
      h("li", null, `Three decimals in ${THREE_DECIMAL.map((c) => c.toUpperCase()).join(", ")}, the last one 0: 5.120 KWD, not 5.125.`),
      h("li", null, "ISK and UGX are charged in whole units."),
      h("li", null, `Minimum charges: ${minimums.join(", ")}.`),
      h("li", null, "Each option's price per point must stay at or above your wholesale floor."),
    ),
  );
}

async function loadTopups() {
  const current = await api("GET", "/partner/topup-options");
  const floors = Object.entries(current.wholesale_floors).map(([c, f]) => `${f} ${c.toUpperCase()}`);
  const list = h("tbody", { id: "topup-rows" });
  /** @param {any} o */
  const addRow = (o) => {
    const n = list.children.length;
    const label = h("input", { value: o.label || "", "aria-label": `Option ${n + 1} label`, "data-field": "label" });
    const currency = h("input", { value: o.currency || "usd", size: 4, "aria-label": `Option ${n + 1} currency`, "data-field": "currency" });
    const amount = h("input", { value: o.amount_minor === undefined ? "" : majorOf(o.amount_minor, o.currency), size: 9, inputMode: "decimal", "aria-label": `Option ${n + 1} amount`, "data-field": "amount" });
    const points = h("input", { value: o.points || "", size: 9, inputMode: "decimal", "aria-label": `Option ${n + 1} points`, "data-field": "points" });
    const check = h("span", { class: "hint", "aria-live": "polite" });
    const recheck = () => {
      const r = minorOf(/** @type {HTMLInputElement} */ (amount).value, /** @type {HTMLInputElement} */ (currency).value || "usd");
      check.textContent = r.ok ? "" : r.why;
    };
    amount.addEventListener("input", recheck);
    currency.addEventListener("input", recheck);
    const row = h("tr", { "data-id": o.id || "" }, h("td", null, label), h("td", null, currency), h("td", null, amount, check), h("td", null, points), h("td", null, h("button", { type: "button", class: "danger", "aria-label": `Remove option ${n + 1}`, onclick: () => row.remove() }, "Remove")));
    list.append(row);
  };
  current.data.forEach(addRow);
  const save = actionButton("Save top-up options", async () => {
    const options = [];
    for (const row of Array.from(list.children)) {
      /** @param {string} f */
      const value = (f) => /** @type {HTMLInputElement} */ (row.querySelector(`[data-field="${f}"]`)).value.trim();
      const currency = value("currency").toLowerCase();
      const amount = minorOf(value("amount"), currency);
      if (!amount.ok) throw new Error(`${value("label") || "An option"}: ${amount.why}`);
      const id = row.getAttribute("data-id");
      options.push({ ...(id ? { id } : {}), label: value("label"), currency, amount_minor: amount.minor, points: value("points") });
    }
    const saved = await api("PUT", "/partner/topup-options", { body: { options } });
    await loadTopups();
    return `${saved.data.length} top-up options saved.`;
  }, { id: "topups-save" });
  const rate = current.credit_rate;
  const rateCurrency = h("input", { id: "rate-currency", value: rate ? rate.currency : "usd", size: 4 });
  const ratePrice = h("input", { id: "rate-price", value: rate ? rate.price_per_point : "", inputMode: "decimal", size: 8 });
  fill(
    "topups",
    currencyRules(),
    h("p", null, `Your wholesale floor per point: ${floors.join(", ") || "none"}.`),
    h("div", { class: "table-wrap" }, h("table", null, h("thead", null, h("tr", null, h("th", { scope: "col" }, "Label"), h("th", { scope: "col" }, "Currency"), h("th", { scope: "col" }, "Amount"), h("th", { scope: "col" }, "Points"), h("th", { scope: "col" }, ""))), list)),
    h("div", { class: "row" }, h("button", { type: "button", class: "secondary", id: "topup-add", onclick: () => addRow({}) }, "Add an option"), save),
    h("h3", null, "Credit rate"),
    h("p", { class: "muted" }, "A price per point, for workspaces that buy any number of points."),
    h("div", { class: "row" }, field("rate-currency", "Currency", rateCurrency), field("rate-price", "Price per point", ratePrice, `At or above the floor (${floors.join(", ")})`)),
    actionButton("Save credit rate", async () => {
      const saved = await api("PUT", "/partner/credit-rate", { body: { currency: /** @type {HTMLInputElement} */ (rateCurrency).value.trim().toLowerCase(), price_per_point: /** @type {HTMLInputElement} */ (ratePrice).value.trim() } });
      return `Credit rate: ${saved.price_per_point} ${saved.currency.toUpperCase()} a point.`;
    }, { id: "rate-save" }),
  );
}

/** @type {"" | "paused"} */
let statusFilter = "";

async function loadWorkspaces() {
  const page = await api("GET", `/partner/workspaces?limit=50${statusFilter ? `&status=${statusFilter}` : ""}`);
  workspaces = page.data;
  const filter = h("select", { id: "ws-filter" }, h("option", { value: "", selected: statusFilter === "" }, "All"), h("option", { value: "paused", selected: statusFilter === "paused" }, "Paused only"));
  filter.addEventListener("change", () => {
    statusFilter = /** @type {any} */ (/** @type {HTMLSelectElement} */ (filter).value);
    loadWorkspaces().catch((e) => say(e.message, "error"));
  });
  const rows = workspaces.map((w) =>
    h(
      "tr",
      { "data-workspace": w.id },
      h("th", { scope: "row" }, w.name, h("span", { class: "hint" }, w.id)),
      h("td", null, w.plan),
      h("td", { class: "num", "data-balance": w.id }, w.balance),
      h("td", null, h("span", { class: `pill ${w.status}` }, w.status), w.exceeded.length ? h("span", { class: "hint" }, `over: ${w.exceeded.join(", ").replace(/_/g, " ")}`) : ""),
      h("td", null, w.renews_on),
      h("td", null, h("div", { class: "row" }, h("button", { type: "button", "data-points": w.id, "aria-label": `Points of ${w.name}`, onclick: () => pointsDialog(w) }, "Points"), h("button", { type: "button", class: "secondary", "data-manage": w.id, "aria-label": `Manage ${w.name}`, onclick: () => manageDialog(w.id) }, "Manage"))),
    ),
  );
  fill(
    "workspaces",
    h("div", { class: "row" }, h("label", { for: "ws-filter" }, "Show"), filter),
    h("div", { class: "table-wrap" }, h("table", null, h("thead", null, h("tr", null, h("th", { scope: "col" }, "Workspace"), h("th", { scope: "col" }, "Plan"), h("th", { scope: "col", class: "num" }, "Points"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Renews"), h("th", { scope: "col" }, ""))), h("tbody", null, rows))),
  );
  fillLedgerFilter();
}

/**
 * The points popup: add, or deduct with a minus sign, always with a reason.
 * @param {any} w
 */
function pointsDialog(w) {
  const key = newKey();
  const amount = h("input", { id: "points-amount", inputMode: "decimal", required: true, placeholder: "-12.50" });
  const reason = h("input", { id: "points-reason", required: true });
  const dialog = /** @type {HTMLDialogElement} */ (
    h(
      "dialog",
      { "aria-labelledby": "points-h" },
      h("h2", { id: "points-h" }, `Points of ${w.name}`),
      h("p", null, `Balance: ${w.balance} points.`),
      field("points-amount", "Points to add (a minus sign deducts)", amount),
      field("points-reason", "Reason (the workspace's ledger shows it)", reason),
      h(
        "div",
        { class: "row" },
        actionButton("Apply", async () => {
          const answer = await api("POST", `/partner/workspaces/${encodeURIComponent(w.id)}/points`, {
            body: { amount: /** @type {HTMLInputElement} */ (amount).value.trim(), reason: /** @type {HTMLInputElement} */ (reason).value.trim() },
            key,
          });
          dialog.close();
          await Promise.all([loadWorkspaces(), loadLedger(false)]);
          return `${w.name}: ${answer.entry.amount} points (${answer.entry.detail.reason}); balance ${answer.balance}.`;
        }, { id: "points-apply" }),
        h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, "Cancel"),
      ),
    )
  );
  openDialog(dialog);
}

/**
 * A workspace's add-ons (removed now), its plan and its re-billing.
 * @param {string} id
 */
async function manageDialog(id) {
  const ws = await api("GET", `/partner/workspaces/${encodeURIComponent(id)}`);
  const plan = h("select", { id: "manage-plan" }, PLANS.map((p) => h("option", { value: p, selected: p === ws.plan }, p)));
  const rebill = h("input", { type: "checkbox", id: "manage-rebill" });
  const rate = h("input", { id: "manage-rate", inputMode: "decimal", size: 8, placeholder: "0.15" });
  const addons = ws.addons.length
    ? h(
        "ul",
        null,
        ws.addons.map((/** @type {any} */ a) =>
          h("li", null, `${a.label} x ${a.quantity} (${a.status}) `, actionButton("Remove now", async () => {
            await api("DELETE", `/partner/workspaces/${encodeURIComponent(id)}/addons/${encodeURIComponent(a.id)}`);
            dialog.close();
            await loadWorkspaces();
            return `${a.label} removed from ${ws.name}.`;
          }, { class: "danger", "aria-label": `Remove ${a.label} now` })),
        ),
      )
    : h("p", { class: "muted" }, "No add-ons.");
  const dialog = /** @type {HTMLDialogElement} */ (
    h(
      "dialog",
      { "aria-labelledby": "manage-h" },
      h("h2", { id: "manage-h" }, ws.name),
      h("h3", null, "Add-ons"),
      addons,
      h("h3", null, "Plan"),
      h("div", { class: "row" }, plan, actionButton("Change plan", async () => {
        const answer = await api("PUT", `/partner/workspaces/${encodeURIComponent(id)}/plan`, { body: { plan: /** @type {HTMLSelectElement} */ (plan).value } });
        dialog.close();
        await loadWorkspaces();
        return `${ws.name} is on ${answer.workspace.plan}, ${answer.workspace.status}.`;
      }, { id: "manage-plan-save" })),
      h("h3", null, "Re-billing of usage"),
      h("div", { class: "row" }, rebill, h("label", { for: "manage-rebill" }, "Re-bill voice minutes at"), rate, h("span", null, "points a minute")),
      actionButton("Save re-billing", async () => {
        const on = /** @type {HTMLInputElement} */ (rebill).checked;
        const perMinute = /** @type {HTMLInputElement} */ (rate).value.trim();
        await api("PUT", `/partner/workspaces/${encodeURIComponent(id)}/rebilling`, { body: on ? { enabled: true, rates: { voice_minutes: perMinute } } : { enabled: false } });
        return on ? `${ws.name} is re-billed ${perMinute} points a voice minute.` : `${ws.name} is not re-billed.`;
      }),
      h("div", { class: "row" }, h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, "Close")),
    )
  );
  openDialog(dialog);
}

async function loadWallet() {
  const wallet = await api("GET", "/partner/wallet");
  const refill = wallet.auto_refill;
  const enabled = h("input", { type: "checkbox", id: "refill-enabled", checked: refill.enabled });
  const threshold = h("input", { id: "refill-threshold", value: refill.threshold || "", inputMode: "decimal", size: 8 });
  const amount = h("input", { id: "refill-amount", value: refill.amount ? majorOf(refill.amount.amount_minor, refill.amount.currency) : "", inputMode: "decimal", size: 8 });
  const fund = h("input", { id: "wallet-fund", inputMode: "decimal", size: 8, placeholder: "100.00" });
  const back = `${location.origin}${location.pathname}`;
  fill(
    "wallet",
    h("p", null, h("span", { class: "balance" }, `${wallet.balance} ${wallet.currency.toUpperCase()}`), h("span", { class: "hint" }, `${wallet.mode}; usage not yet folded in: ${wallet.unfolded}`)),
    h("div", { class: "row" }, h("label", { for: "wallet-fund" }, `Add funds (${wallet.currency.toUpperCase()})`), fund, actionButton("Pay now", async () => {
      const created = await api("POST", "/partner/wallet/checkout", { body: { amount: /** @type {HTMLInputElement} */ (fund).value.trim(), success_url: back, cancel_url: back } });
      location.assign(created.url);
    }, { id: "wallet-pay" })),
    h("h3", null, "Auto-refill"),
    h("p", { class: "muted" }, refill.card_saved ? "A card is saved from your last wallet payment." : "Auto-refill needs a card: pay into the wallet once to save it."),
    h("div", { class: "row" }, enabled, h("label", { for: "refill-enabled" }, "Refill automatically")),
    h("div", { class: "row" }, field("refill-threshold", "When below", threshold), field("refill-amount", `Charge (${wallet.currency.toUpperCase()})`, amount)),
    actionButton("Save auto-refill", async () => {
      const on = /** @type {HTMLInputElement} */ (enabled).checked;
      const body = on ? { enabled: true, threshold: /** @type {HTMLInputElement} */ (threshold).value.trim(), amount: /** @type {HTMLInputElement} */ (amount).value.trim() } : { enabled: false };
      await api("PUT", "/partner/wallet/auto-refill", { body });
      await loadWallet();
      return on ? "Auto-refill is on." : "Auto-refill is off.";
    }, { id: "refill-save" }),
  );
}

/** @type {string | null} */
let ledgerCursor = null;
let ledgerWorkspace = "";

function fillLedgerFilter() {
  const select = document.getElementById("ledger-filter");
  if (!select || select.children.length > 1) return;
  for (const w of workspaces) select.append(h("option", { value: w.id }, w.name));
}

/** @param {boolean} more */
async function loadLedger(more) {
  const filter = ledgerWorkspace ? `&workspace_id=${encodeURIComponent(ledgerWorkspace)}` : "";
  const after = more && ledgerCursor ? `&cursor=${encodeURIComponent(ledgerCursor)}` : "";
  const page = await api("GET", `/partner/ledger?limit=${PAGE}${filter}${after}`);
  ledgerCursor = page.next_cursor;
  const rows = page.data.map((/** @type {LedgerEntry & {workspace_id?: string}} */ e) =>
    h("tr", { "data-kind": e.kind }, h("td", null, when(e.created_at)), h("td", null, e.workspace_id || ""), h("td", null, kindLabel(e.kind)), h("td", null, entryDetail(e)), h("td", null, `${e.actor.type}: ${e.actor.id}`), h("td", { class: "num" }, e.amount), h("td", { class: "num" }, e.balance_after)),
  );
  const body = more ? document.getElementById("partner-ledger-rows") : null;
  if (body) {
    body.append(...rows);
  } else {
    const select = h("select", { id: "ledger-filter" }, h("option", { value: "" }, "All workspaces"), workspaces.map((w) => h("option", { value: w.id, selected: w.id === ledgerWorkspace }, w.name)));
    select.addEventListener("change", () => {
      ledgerWorkspace = /** @type {HTMLSelectElement} */ (select).value;
      loadLedger(false).catch((e) => say(e.message, "error"));
    });
    fill(
      "ledger",
      h("div", { class: "row" }, h("label", { for: "ledger-filter" }, "Workspace"), select),
      h("div", { class: "table-wrap" }, h("table", null, h("thead", null, h("tr", null, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Workspace"), h("th", { scope: "col" }, "What"), h("th", { scope: "col" }, "Detail"), h("th", { scope: "col" }, "By"), h("th", { scope: "col", class: "num" }, "Points"), h("th", { scope: "col", class: "num" }, "Balance"))), h("tbody", { id: "partner-ledger-rows" }, rows))),
      h("button", { type: "button", class: "secondary", id: "partner-ledger-more", onclick: () => loadLedger(true) }, "Older entries"),
    );
  }
  const moreButton = document.getElementById("partner-ledger-more");
  if (moreButton) moreButton.hidden = !ledgerCursor;
}

/** @type {string | null} */
let eventsCursor = null;

/** @param {boolean} more */
async function loadEvents(more) {
  const after = more && eventsCursor ? `&cursor=${encodeURIComponent(eventsCursor)}` : "";
  const page = await api("GET", `/partner/events?limit=${PAGE}${after}`);
  eventsCursor = page.next_cursor;
  const rows = page.data.map((/** @type {any} */ e) => h("tr", null, h("td", null, when(e.created_at)), h("td", null, e.type), h("td", null, e.workspace_id || ""), h("td", null, JSON.stringify(e.data))));
  const body = more ? document.getElementById("events-rows") : null;
  if (body) {
    body.append(...rows);
  } else {
    fill(
      "events",
      rows.length || more ? h("div", { class: "table-wrap" }, h("table", null, h("thead", null, h("tr", null, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "Event"), h("th", { scope: "col" }, "Workspace"), h("th", { scope: "col" }, "Data"))), h("tbody", { id: "events-rows" }, rows))) : h("p", { class: "muted" }, "No events yet."),
      h("div", { class: "row" }, h("button", { type: "button", class: "secondary", id: "events-more", onclick: () => loadEvents(true) }, "Older events"), h("button", { type: "button", class: "secondary", onclick: () => loadEvents(false) }, "Refresh")),
    );
  }
  const moreButton = document.getElementById("events-more");
  if (moreButton) moreButton.hidden = !eventsCursor;
}

async function start() {
  const held = takeToken();
  if (!held) {
    say("Sign in first: the console needs a partner admin's token.", "error");
    return;
  }
  token = held;
  keepToken(held);
  const claims = claimsOf(held);
  fill("who", `${claims.sub || ""} · ${claims.partner_id || ""}`);
  const parts = [loadStripe(), loadAddons(), loadPlans(), loadTopups(), loadWorkspaces().then(() => loadLedger(false)), loadWallet(), loadEvents(false)];
  const failed = (await Promise.allSettled(parts)).filter((r) => r.status === "rejected");
  if (failed.length) say(/** @type {PromiseRejectedResult} */ (failed[0]).reason.message, "error");
}

start();

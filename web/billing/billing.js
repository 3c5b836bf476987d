// The white-label billing page of a workspace: its balance, plan and usage (and, when paused,
// why and the three ways out), add-ons with their price before the purchase, top-ups paid on
// Stripe Checkout, auto top-up and the saved card, and the ledger. It shows the partner's
// brand, never the platform's. Points and amounts are shown as the API gives them (strings),
// never computed with floating point.

import { call, claimsOf, keepToken, newKey, takeToken } from "../shared/api.js";
import { formatMoney } from "../shared/money.js";
import { act, entryDetail, fill, h, kindLabel, openDialog, say, when } from "../shared/ui.js";
import { upgradeWayOut } from "./upgrade.js";

/** @typedef {import("../types/api").components["schemas"]["Workspace"]} Workspace */
/** @typedef {import("../types/api").components["schemas"]["LedgerEntry"]} LedgerEntry */

/** How often, and how many times, the page looks for a paid top-up's points. */
const POLL_MS = 1000;
const POLL_TRIES = 60;
/** Ledger entries per page. */
const LEDGER_PAGE = 10;

/** @type {string} */
let token = "";
/** @type {Workspace | null} */
let workspace = null;
/** @type {any[]} */
let offers = [];
/** Whether the page runs in a partner's frame (Checkout then opens in a new tab). */
const embedded = window.parent !== window;

/** @param {string} method @param {string} path @param {{body?: unknown, key?: string}} [options] */
const api = (method, path, options) => call(token, /** @type {any} */ (method), path, options);

/** The unit the partner calls its points. */
const unit = () => (workspace ? workspace.unit_name : "points");

/** @param {Workspace["brand"]} brand */
function applyBrand(brand) {
  const root = document.documentElement.style;
  if (brand.primary_color) root.setProperty("--primary", brand.primary_color);
  if (brand.accent_color) root.setProperty("--accent", brand.accent_color);
  fill("brand-name", brand.name);
  const logo = /** @type {HTMLImageElement} */ (document.getElementById("brand-logo"));
  if (brand.logo_url) {
    logo.src = brand.logo_url;
    logo.alt = `${brand.name} logo`;
    logo.hidden = false;
  }
  document.title = `Billing · ${brand.name}`;
}

/** @param {string} kind */
const limitWords = (kind) => kind.replace(/_/g, " ");

function renderBalance() {
  if (!workspace) return;
  fill(
    "balance",
    h("p", { class: "balance", id: "balance-value" }, `${workspace.balance} ${unit()}`),
    h("p", { class: "muted" }, `Cycle ${workspace.cycle.start} to ${workspace.cycle.end}; renews on ${workspace.renews_on}.`),
  );
}

function renderPlan() {
  if (!workspace) return;
  const ws = workspace;
  const rows = Object.entries(ws.limits).map(([kind, limit]) => {
    const used = /** @type {Record<string, number | undefined>} */ (ws.usage)[kind];
    const over = ws.exceeded.includes(/** @type {any} */ (kind));
    return h(
      "tr",
      null,
      h("th", { scope: "row" }, limitWords(kind)),
      h("td", { class: "num" }, used === undefined ? "" : String(used)),
      h("td", { class: "num" }, String(limit)),
      h("td", null, over ? h("span", { class: "pill paused" }, "over") : ""),
    );
  });
  fill(
    "plan",
    h(
      "p",
      null,
      `Plan: ${ws.plan} `,
      h("span", { class: `pill ${ws.status}`, id: "ws-status" }, ws.status === "paused" ? "Paused" : "Active"),
    ),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        null,
        h("caption", { class: "muted" }, "Limits include the add-ons held"),
        h("thead", null, h("tr", null, h("th", { scope: "col" }, "Limit"), h("th", { scope: "col", class: "num" }, "Used"), h("th", { scope: "col", class: "num" }, "Allowed"), h("th", { scope: "col" }, ""))),
        h("tbody", null, rows),
      ),
    ),
  );
}

/** The paused banner: why, and the three ways out, each one click away. */
function renderPaused() {
  if (!workspace || workspace.status !== "paused") {
    fill("paused");
    return;
  }
  const ws = workspace;
  const reasons = ws.exceeded.map((kind) => {
    const used = /** @type {Record<string, number>} */ (ws.usage)[kind];
    const limit = /** @type {Record<string, number>} */ (ws.limits)[kind];
    return `${limitWords(kind)}: ${used} used, ${limit} allowed`;
  });
  const buyable = ws.exceeded
    .map((kind) => {
      const offer = offers.find((o) => o.effect.limit === kind);
      if (!offer) return null;
      const used = /** @type {Record<string, number>} */ (ws.usage)[kind];
      const limit = /** @type {Record<string, number>} */ (ws.limits)[kind];
      // Integers: enough of the add-on to cover the excess.
      const quantity = Math.ceil((used - limit) / offer.effect.amount);
      return h(
        "button",
        { type: "button", id: `way-buy-${offer.code}`, onclick: () => buyDialog(offer, quantity) },
        `Buy ${quantity} x ${offer.label}`,
      );
    })
    .filter(Boolean);
  fill(
    "paused",
    h(
      "div",
      { class: "paused-box", role: "region", "aria-labelledby": "paused-h" },
      h("h2", { id: "paused-h" }, "This workspace is paused"),
      h("p", null, `Its usage is over the plan's limits: ${reasons.join("; ")}.`),
      h(
        "ul",
        { class: "ways" },
        h("li", null, h("h3", null, "1. Upgrade"), upgradeWayOut(ws, ws.exceeded, { api, reload: load, goToCheckout })),
        h(
          "li",
          null,
          h("h3", null, "2. Buy the add-on"),
          h("p", null, "Raises the limit from now on, paid with points."),
          buyable.length ? buyable : h("p", { class: "muted" }, "No add-on raises this limit."),
        ),
        h(
          "li",
          null,
          h("h3", null, "3. Reduce usage"),
          h("p", null, `Bring the usage within the limits (${reasons.join("; ")}); the workspace resumes by itself.`),
          h(
            "button",
            { type: "button", class: "secondary", id: "way-reduce", onclick: (/** @type {Event} */ e) => act(/** @type {HTMLButtonElement} */ (e.currentTarget), async () => { await load(); return workspace && workspace.status === "active" ? "Usage is within the limits: the workspace is active." : "Still over the limits."; }) },
            "I reduced it: check again",
          ),
        ),
      ),
    ),
  );
}

/**
 * The purchase dialog: the price now (prorated) and per month after, from the quote, before
 * the customer confirms.
 * @param {any} offer
 * @param {number} quantity
 */
function buyDialog(offer, quantity) {
  const key = newKey();
  const quantityInput = h("input", { type: "number", id: "buy-quantity", min: 1, max: 1000, value: String(quantity), required: true });
  const quote = h("div", { class: "quote", id: "buy-quote", "aria-live": "polite" }, "Working out the price…");
  const confirm = /** @type {HTMLButtonElement} */ (h("button", { type: "button", id: "buy-confirm", disabled: true }, "Confirm purchase"));
  const cancel = h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, "Cancel");
  const dialog = /** @type {HTMLDialogElement} */ (
    h("dialog", { "aria-labelledby": "buy-h" }, h("h2", { id: "buy-h" }, `Buy ${offer.label}`), h("div", { class: "field" }, h("label", { for: "buy-quantity" }, "Quantity"), quantityInput), quote, h("div", { class: "row" }, confirm, cancel))
  );
  const refresh = async () => {
    confirm.disabled = true;
    const q = /** @type {HTMLInputElement} */ (quantityInput).value;
    try {
      const answer = await api("GET", `/workspace/addons/quote?addon=${encodeURIComponent(offer.code)}&quantity=${encodeURIComponent(q)}`);
      quote.replaceChildren(
        h(
          "div",
          null,
          h("p", null, "Now: ", h("strong", { id: "quote-now" }, `${answer.now} ${unit()}`), ` for the ${answer.days_remaining} of ${answer.days_in_cycle} days left in this cycle`),
        h("p", null, "Then: ", h("strong", { id: "quote-month" }, `${answer.per_month} ${unit()}`), " per month, from the next cycle"),
        h("p", null, answer.enough_points ? `Balance after: ${answer.balance_after} ${unit()}` : `Not enough ${unit()}: the balance is ${answer.balance}. Top up first.`),
          answer.status_after.status === "active" && workspace && workspace.status === "paused" ? h("p", null, h("strong", null, "This resumes the workspace.")) : null,
        ),
      );
      confirm.disabled = !answer.enough_points;
    } catch (e) {
      quote.replaceChildren(h("p", { class: "status error" }, /** @type {Error} */ (e).message));
    }
  };
  quantityInput.addEventListener("change", refresh);
  confirm.addEventListener("click", () =>
    act(confirm, async () => {
      const q = Number(/** @type {HTMLInputElement} */ (quantityInput).value);
      const bought = await api("POST", "/workspace/addons", { body: { addon: offer.code, quantity: q }, key });
      dialog.close();
      await load();
      const resumed = bought.workspace.status === "active" ? " The workspace is active." : "";
      return `Bought ${q} x ${offer.label} for ${bought.charged} ${unit()}.${resumed}`;
    }),
  );
  openDialog(dialog);
  refresh();
}

function renderAddons() {
  if (!workspace) return;
  const owned = workspace.addons.map((a) =>
    h(
      "tr",
      null,
      h("td", null, a.label),
      h("td", { class: "num" }, String(a.quantity)),
      h("td", { class: "num" }, `${a.unit_points} ${unit()}`),
      h("td", null, a.status === "cancelling" ? `Ends ${a.period_end}` : `Renews after ${a.period_end}`),
      h(
        "td",
        null,
        a.status === "active"
          ? h(
              "button",
              {
                type: "button",
                class: "danger",
                "aria-label": `Cancel ${a.label} at the end of the cycle`,
                onclick: (/** @type {Event} */ e) =>
                  act(/** @type {HTMLButtonElement} */ (e.currentTarget), async () => {
                    await api("DELETE", `/workspace/addons/${encodeURIComponent(a.id)}`);
                    await load();
                    return `${a.label} ends on ${a.period_end}.`;
                  }),
              },
              "Cancel",
            )
          : "",
      ),
    ),
  );
  const available = offers.map((o) =>
    h(
      "li",
      null,
      h("strong", null, o.label),
      h("span", { class: "hint" }, `${o.points} ${unit()} per month, +${o.effect.amount} ${limitWords(o.effect.limit)}`),
      h("button", { type: "button", class: "secondary", "data-addon": o.code, "aria-label": `Buy ${o.label}`, onclick: () => buyDialog(o, 1) }, "Buy"),
    ),
  );
  fill(
    "addons",
    owned.length
      ? h(
          "div",
          { class: "table-wrap" },
          h("table", null, h("thead", null, h("tr", null, h("th", { scope: "col" }, "Held"), h("th", { scope: "col", class: "num" }, "Quantity"), h("th", { scope: "col", class: "num" }, "Per unit a month"), h("th", { scope: "col" }, "Period"), h("th", { scope: "col" }, ""))), h("tbody", null, owned)),
        )
      : h("p", { class: "muted" }, "No add-ons held."),
    h("h3", null, "On offer"),
    h("ul", { class: "options" }, available),
  );
}

/**
 * Sends the payer to Stripe Checkout (in a new tab when framed: Checkout may not be framed).
 * @param {string} url
 */
function goToCheckout(url) {
  if (embedded) {
    window.open(url, "_blank", "noopener");
    say("Checkout opened in a new tab; the points show here once paid.");
    pollForCredit(null, workspace ? workspace.balance : null);
  } else {
    location.assign(url);
  }
}

/** @param {any} topups */
function renderTopups(topups) {
  if (!topups.credit_billing) {
    fill("topups", h("p", { class: "muted" }, "Top-ups are not offered."));
    return;
  }
  const options = topups.data.map((/** @type {any} */ o) => {
    const button = /** @type {HTMLButtonElement} */ (h("button", { type: "button", "data-option": o.id, "aria-label": `Pay now: ${o.label}` }, "Pay now"));
    button.addEventListener("click", () =>
      act(button, async () => {
        const created = await api("POST", "/workspace/checkout", { body: { topup_option_id: o.id } });
        goToCheckout(created.url);
        return "Opening Checkout…";
      }),
    );
    return h("li", null, h("strong", null, o.label), h("span", { class: "price" }, ` ${o.amount_major} ${o.currency.toUpperCase()}`), h("span", { class: "hint" }, `${o.points} ${topups.unit_name}`), button);
  });
  const rate = topups.credit_rate;
  let byRate = null;
  if (rate) {
    const points = h("input", { id: "rate-points", inputMode: "decimal", pattern: "[0-9]+(\\.[0-9]{1,2})?", size: 8, required: true });
    const button = /** @type {HTMLButtonElement} */ (h("button", { type: "button", id: "rate-pay" }, "Pay now"));
    button.addEventListener("click", () =>
      act(button, async () => {
        const created = await api("POST", "/workspace/checkout", { body: { points: /** @type {HTMLInputElement} */ (points).value.trim() } });
        goToCheckout(created.url);
        return `Opening Checkout for ${created.amount_major} ${created.currency.toUpperCase()}…`;
      }),
    );
    byRate = h(
      "div",
      null,
      h("h3", null, "Any amount"),
      h("p", { class: "muted" }, `${rate.price_per_point} ${rate.currency.toUpperCase()} per ${topups.unit_name.replace(/s$/, "")}, rounded up to the cent.`),
      h("div", { class: "row" }, h("label", { for: "rate-points" }, `How many ${topups.unit_name}`), points, button),
    );
  }
  fill("topups", h("ul", { class: "options" }, options), byRate);
}

/**
 * @param {any} card
 * @param {any} topups
 */
function renderAuto(card, topups) {
  if (!workspace) return;
  const auto = workspace.auto_topup;
  const cardLine = card
    ? h("p", { id: "card-line" }, `Card: ${card.brand} ending ${card.last4}, expires ${card.exp_month}/${card.exp_year}`)
    : h("p", { id: "card-line", class: "muted" }, "No card saved. Paying a top-up once saves its card, or save one without paying.");
  const save = /** @type {HTMLButtonElement} */ (h("button", { type: "button", class: "secondary", id: "card-save" }, card ? "Replace the card" : "Save a card"));
  save.addEventListener("click", () =>
    act(save, async () => {
      const session = await api("POST", "/workspace/card");
      goToCheckout(session.url);
      return "Opening Checkout to save a card…";
    }),
  );
  const enabled = h("input", { type: "checkbox", id: "auto-enabled", checked: auto.enabled });
  const option = h(
    "select",
    { id: "auto-option" },
    (topups.data || []).map((/** @type {any} */ o) => h("option", { value: o.id, selected: o.id === auto.topup_option_id }, `${o.label}: ${o.amount_major} ${o.currency.toUpperCase()} for ${o.points} ${topups.unit_name}`)),
  );
  const threshold = h("input", { id: "auto-threshold", inputMode: "decimal", size: 8, value: auto.threshold || "", placeholder: "optional" });
  const apply = /** @type {HTMLButtonElement} */ (h("button", { type: "button", id: "auto-save" }, "Save auto top-up"));
  apply.addEventListener("click", () =>
    act(apply, async () => {
      const on = /** @type {HTMLInputElement} */ (enabled).checked;
      const limit = /** @type {HTMLInputElement} */ (threshold).value.trim();
      /** @type {Record<string, unknown>} */
      const body = on ? { enabled: true, topup_option_id: /** @type {HTMLSelectElement} */ (option).value } : { enabled: false };
      if (on && limit) body.threshold = limit;
      await api("PUT", "/workspace/auto-topup", { body });
      await load();
      return on ? "Auto top-up is on: a renewal short of points buys the option with the saved card." : "Auto top-up is off.";
    }),
  );
  const failure = auto.last_failure ? h("p", { class: "status error" }, `Last attempt failed (${auto.last_failure.code}) on ${when(auto.last_failure.at)}`) : null;
  fill(
    "auto",
    cardLine,
    save,
    h("h3", null, "Auto top-up"),
    h("p", { class: "muted" }, "Renewals need points each month: with auto top-up on, a renewal short of them buys the chosen option with the saved card, so add-ons don't lapse and the workspace isn't paused."),
    h("div", { class: "row" }, enabled, h("label", { for: "auto-enabled" }, "Top up automatically"), h("span", { id: "auto-state", class: `pill ${auto.enabled ? "active" : "paused"}` }, auto.enabled ? "On" : "Off")),
    h("div", { class: "field" }, h("label", { for: "auto-option" }, "Option to buy"), option),
    h("div", { class: "field" }, h("label", { for: "auto-threshold" }, `Also when the balance falls below (${unit()})`), threshold),
    failure,
    apply,
  );
}

/** @type {string | null} */
let ledgerCursor = null;

/** @param {boolean} more */
async function loadLedger(more) {
  const after = more && ledgerCursor ? `&cursor=${encodeURIComponent(ledgerCursor)}` : "";
  const page = await api("GET", `/workspace/ledger?limit=${LEDGER_PAGE}${after}`);
  ledgerCursor = page.next_cursor;
  const rows = page.data.map((/** @type {LedgerEntry} */ e) =>
    h("tr", { "data-kind": e.kind }, h("td", null, when(e.created_at)), h("td", null, kindLabel(e.kind)), h("td", null, entryDetail(e)), h("td", { class: "num" }, e.amount), h("td", { class: "num" }, e.balance_after)),
  );
  const body = more ? document.getElementById("ledger-rows") : null;
  if (body) {
    body.append(...rows);
  } else {
    fill(
      "ledger",
      h(
        "div",
        { class: "table-wrap" },
        h("table", null, h("thead", null, h("tr", null, h("th", { scope: "col" }, "When"), h("th", { scope: "col" }, "What"), h("th", { scope: "col" }, "Detail"), h("th", { scope: "col", class: "num" }, unit()), h("th", { scope: "col", class: "num" }, "Balance"))), h("tbody", { id: "ledger-rows" }, rows)),
      ),
      h("button", { type: "button", class: "secondary", id: "ledger-more", hidden: !ledgerCursor, onclick: () => loadLedger(true) }, "Older entries"),
    );
  }
  const moreButton = document.getElementById("ledger-more");
  if (moreButton) moreButton.hidden = !ledgerCursor;
}

/** Reads everything the page shows, and shows it. */
async function load() {
  const [ws, addons, topups, card] = await Promise.all([api("GET", "/workspace"), api("GET", "/workspace/addons"), api("GET", "/workspace/topup-options"), api("GET", "/workspace/card")]);
  workspace = ws;
  offers = addons.available;
  applyBrand(ws.brand);
  fill("title", ws.name);
  renderBalance();
  renderPlan();
  renderPaused();
  renderAddons();
  renderTopups(topups);
  renderAuto(card.card, topups);
  await loadLedger(false);
}

/**
 * After Checkout: the points are credited by Stripe's webhook, not by the return, so the page
 * polls until the ledger holds the payment's top-up (or, for a payment made in another tab,
 * until the balance moves).
 * @param {string | null} session the Checkout Session paid, when the page came back from it
 * @param {string | null} balanceBefore
 */
async function pollForCredit(session, balanceBefore) {
  say(`Payment received. Waiting for the ${unit()} to arrive…`);
  for (let i = 0; i < POLL_TRIES; i++) {
    const page = await api("GET", "/workspace/ledger?limit=5");
    const credited = page.data.find((/** @type {LedgerEntry} */ e) => e.kind === "top_up" && (!session || /** @type {any} */ (e.detail).payment === session));
    const ws = session ? null : await api("GET", "/workspace");
    if (credited && (session || (ws && ws.balance !== balanceBefore))) {
      await load();
      say(`${credited.amount} ${unit()} arrived. The balance is ${workspace ? workspace.balance : credited.balance_after} ${unit()}.`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  say(`The payment went through, but the ${unit()} have not arrived yet: this page shows them once Stripe tells us.`, "error");
}

/** The return from Checkout: `?checkout=<session>` or `?checkout=cancelled`. */
function checkoutReturn() {
  const params = new URLSearchParams(location.search);
  const checkout = params.get("checkout");
  if (!checkout) return;
  params.delete("checkout");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : ""));
  if (checkout === "cancelled") {
    say("Payment cancelled: nothing was charged.");
  } else {
    pollForCredit(checkout, null);
  }
}

/**
 * In a partner's frame, the host hands the token over with postMessage. It is kept only if the
 * sender is one of the partner's `embed_origins` (or this page's own origin).
 * @returns {Promise<string>}
 */
function tokenFromHost() {
  return new Promise((resolve) => {
    window.addEventListener("message", async (event) => {
      const data = event.data;
      if (!data || data.type !== "billing-token" || typeof data.token !== "string") return;
      token = data.token;
      const ws = await api("GET", "/workspace");
      if (event.origin !== location.origin && !ws.brand.embed_origins.includes(event.origin)) {
        token = "";
        say(`This page may not be embedded by ${event.origin}.`, "error");
        return;
      }
      resolve(data.token);
    });
    window.parent.postMessage({ type: "billing-ready" }, "*");
  });
}

async function start() {
  // Framed, the host's token only: the tab's own (a sign-in of the same origin) is not this frame's.
  const held = embedded ? await tokenFromHost() : takeToken();
  if (!held) {
    say("Sign in first: this page needs a workspace's token.", "error");
    return;
  }
  token = held;
  if (!embedded) keepToken(held);
  const claims = claimsOf(held);
  fill("who", `${claims.sub || ""} · ${(claims.roles || []).join(", ")}`);
  try {
    await load();
    checkoutReturn();
  } catch (e) {
    say(/** @type {Error} */ (e).message, "error");
  }
}

start();

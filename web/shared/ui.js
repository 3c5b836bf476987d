// DOM helpers: elements built with properties and text nodes only (never HTML strings), so
// nothing the API returns is ever parsed as markup; and the page's one live status line.

/**
 * `h("button", {type: "button", onclick}, "Pay now")`. Attributes starting with `on` become
 * listeners; `class`, `for` and `aria-*`/`data-*` become attributes; others, properties.
 * @param {string} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...(Node | string | number | null | undefined | false | Array<Node | string | null | undefined | false>)} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class" || name === "for" || name === "role" || name.startsWith("aria-") || name.startsWith("data-")) {
      el.setAttribute(name, String(value));
    } else {
      /** @type {any} */ (el)[name] = value;
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "object" ? child : String(child));
  }
  return el;
}

/**
 * Replaces the children of the element with id `id`.
 * @param {string} id
 * @param {...(Node | string | null | undefined | false | Array<Node | string | null | undefined | false>)} children
 */
export function fill(id, ...children) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`no #${id} on the page`);
  el.replaceChildren();
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/**
 * Says `message` in the page's status line (read out by screen readers).
 * @param {string} message
 * @param {"ok" | "error"} [kind]
 */
export function say(message, kind = "ok") {
  const status = document.getElementById("status");
  if (!status) return;
  status.textContent = message;
  status.className = `status ${kind}`;
}

/**
 * A date-time from the API as the reader's locale shows it.
 * @param {string} instant
 */
export function when(instant) {
  return new Date(instant).toLocaleString();
}

/**
 * Runs `action` for a button: disabled while it runs, the outcome said in the status line.
 * @param {HTMLButtonElement} button
 * @param {() => Promise<string | void>} action resolves to the message to say
 */
export async function act(button, action) {
  button.disabled = true;
  try {
    const message = await action();
    if (message) say(message);
  } catch (e) {
    const err = /** @type {{message?: string, param?: string}} */ (e);
    say(err.param ? `${err.message} (${err.param})` : err.message || String(e), "error");
  } finally {
    button.disabled = false;
  }
}

/**
 * Opens `dialog` as a modal, focus inside it; Escape closes it (the browser's own).
 * @param {HTMLDialogElement} dialog
 */
export function openDialog(dialog) {
  if (!dialog.isConnected) document.body.append(dialog);
  dialog.showModal();
  dialog.addEventListener("close", () => dialog.remove(), { once: true });
}

/**
 * A ledger entry's kind in words.
 * @param {string} kind
 */
export function kindLabel(kind) {
  /** @type {Record<string, string>} */
  const words = {
    adjustment: "Adjustment",
    addon_purchase: "Add-on bought",
    top_up: "Top-up",
    renewal: "Renewal",
    lapse: "Lapsed",
    claw_back: "Taken back",
    dispute_won: "Dispute won",
    usage: "Usage",
  };
  return words[kind] || kind;
}

/**
 * A ledger entry's reason or detail in a few words.
 * @param {{kind: string, detail?: any}} entry
 */
export function entryDetail(entry) {
  const d = entry.detail || {};
  if (d.reason) return d.reason;
  if (entry.kind === "addon_purchase") return `${d.addon} x ${d.quantity}, ${d.days_remaining} of ${d.days_in_cycle} days`;
  if (entry.kind === "top_up") return `${d.amount} ${String(d.currency || "").toUpperCase()}`;
  if (entry.kind === "renewal" && Array.isArray(d.lines)) {
    return `${d.cycle_start} to ${d.cycle_end}: ${d.lines.map((/** @type {any} */ l) => `${l.addon} x ${l.quantity}`).join(", ")}`;
  }
  return "";
}

// Upgrading the plan: the billing page's "upgrade" way out. It lists the partner's plans that
// cover the usage (GET /workspace/plans) with what each costs now. A workspace whose plan is
// billed in money upgrades at once (POST /workspace/plan: the rest of the cycle charged to its
// card, the new limits in the same answer); one that is not subscribed yet subscribes on Stripe
// Checkout (POST /workspace/subscription), and the plan starts when Stripe says it is paid.

import { newKey } from "../shared/api.js";
import { formatMoney } from "../shared/money.js";
import { act, h } from "../shared/ui.js";

/**
 * What the upgrade way out needs of the page.
 * @typedef {object} Page
 * @property {(method: string, path: string, options?: {body?: unknown, key?: string}) => Promise<any>} api
 * @property {() => Promise<void>} reload
 * @property {(url: string) => void} goToCheckout
 */

/**
 * What the page offers as "upgrade" for a paused workspace.
 * @param {{plan: string, usage: Record<string, number>}} workspace
 * @param {string[]} exceeded the limits the usage is over
 * @param {Page} page
 * @returns {HTMLElement}
 */
export function upgradeWayOut(workspace, exceeded, page) {
  const over = exceeded.map((k) => k.replace(/_/g, " ")).join(", ");
  const list = h("div", { id: "upgrade-plans" });
  const button = /** @type {HTMLButtonElement} */ (
    h("button", { type: "button", class: "secondary", id: "way-upgrade" }, "See the plans that cover it")
  );
  button.addEventListener("click", () =>
    act(button, async () => {
      const offers = await page.api("GET", "/workspace/plans");
      const covering = offers.data.filter((/** @type {any} */ p) =>
        exceeded.every((kind) => (p.limits[kind] ?? 0) >= (workspace.usage[kind] ?? 0)),
      );
      list.replaceChildren(
        covering.length
          ? h("ul", { class: "options" }, covering.map((/** @type {any} */ p) => planChoice(p, offers.subscription, page)))
          : h("p", { class: "muted" }, "No plan covers this usage: buy the add-on or reduce the usage."),
      );
      return covering.length ? "The plans that cover the usage are listed." : "No plan covers this usage.";
    }),
  );
  return h("div", null, h("p", null, `A higher plan than ${workspace.plan} raises the ${over} limit for every month.`), button, list);
}

/**
 * One plan as the customer may choose it: what it costs now, and the click that chooses it.
 * @param {any} plan an entry of `GET /workspace/plans`
 * @param {any} subscription the workspace's, or null
 * @param {Page} page
 */
function planChoice(plan, subscription, page) {
  const monthly = `${formatMoney(plan.monthly_price)} a month`;
  let now = "";
  if (subscription && plan.change && plan.change.kind === "upgrade") {
    now = `${formatMoney(plan.change.charge_now)} now for the ${plan.change.days_remaining} days left of this cycle, then ${monthly}`;
  } else if (subscription && plan.change) {
    now = `from ${plan.change.effective}, ${monthly}`;
  } else {
    now = `${monthly}, paid on Stripe Checkout`;
  }
  const label = subscription ? `Upgrade to ${plan.label}` : `Subscribe to ${plan.label}`;
  const choose = /** @type {HTMLButtonElement} */ (
    h("button", { type: "button", "data-plan": plan.id, "aria-label": `${label}: ${now}` }, label)
  );
  // One key per choice shown: a second click of the same button is a retry, not a second charge.
  const key = newKey();
  choose.addEventListener("click", () =>
    act(choose, async () => {
      if (subscription) {
        const changed = await page.api("POST", "/workspace/plan", { body: { plan: plan.id }, key });
        await page.reload();
        return changed.charged
          ? `On ${plan.label}: ${formatMoney(changed.charged.amount)} charged for the rest of the cycle.`
          : `On ${plan.label} from ${changed.effective}.`;
      }
      const started = await page.api("POST", "/workspace/subscription", { body: { plan: plan.id }, key });
      page.goToCheckout(started.url);
      return "Opening Checkout…";
    }),
  );
  return h("li", null, h("strong", null, plan.label), h("span", { class: "hint" }, ` ${now}`), choose);
}

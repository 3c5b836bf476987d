// Upgrading the plan: the one place the billing page's "upgrade" way out is decided.
//
// The API lets a workspace's partner change its plan (PUT /partner/workspaces/{id}/plan); a
// workspace cannot yet change its own. So the way out offered today is to ask the partner, by
// name, for the plan that covers the usage. When the API gives workspaces their plans and a
// plan change of their own, this module is where the list is read and the change is sent;
// billing.js only calls `upgradeWayOut`.

import { h } from "../shared/ui.js";

/**
 * What the page offers as "upgrade" for a paused workspace.
 * @param {{brand: {name: string}, plan: string}} workspace
 * @param {string[]} exceeded the limits the usage is over
 * @returns {HTMLElement}
 */
export function upgradeWayOut(workspace, exceeded) {
  const over = exceeded.map((k) => k.replace(/_/g, " ")).join(", ");
  return h(
    "div",
    null,
    h("p", null, `A higher plan than ${workspace.plan} raises the ${over} limit for every month.`),
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        id: "way-upgrade",
        onclick: () => {
          const note = document.getElementById("upgrade-note");
          if (note) note.hidden = false;
        },
      },
      "Upgrade the plan",
    ),
    h(
      "p",
      { id: "upgrade-note", class: "muted", hidden: true },
      `Plan changes are made by ${workspace.brand.name}: ask them to move this workspace to a plan with more ${over}.`,
    ),
  );
}

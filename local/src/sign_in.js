// The local sign-in (a module): ask the runner for a demo user's token, then open that user's screen with
// the token in the URL fragment (never sent to a server), as a host app hands it over.
const status = /** @type {HTMLElement} */ (document.getElementById("sign-in-status"));
for (const button of document.querySelectorAll("button[data-user]")) {
  button.addEventListener("click", async () => {
    const user = button.getAttribute("data-user");
    status.textContent = `Signing in as ${user}…`;
    const response = await fetch("/_local/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user }),
    });
    const answer = await response.json();
    if (!response.ok) {
      status.textContent = answer.error ? answer.error.message : `HTTP ${response.status}`;
      return;
    }
    location.assign(`${answer.lands_on}#token=${encodeURIComponent(answer.token)}`);
  });
}

/**
 * A demo user's token.
 * @param {string} user
 * @returns {Promise<string>}
 */
async function tokenOf(user) {
  const response = await fetch("/_local/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user }),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error ? answer.error.message : `HTTP ${response.status}`);
  return answer.token;
}

/**
 * Runs a local tool, its outcome in the status line.
 * @param {string} id
 * @param {() => Promise<string>} tool
 */
function tool(id, tool) {
  const button = /** @type {HTMLButtonElement} */ (document.getElementById(id));
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      status.textContent = await tool();
    } catch (e) {
      status.textContent = /** @type {Error} */ (e).message;
    } finally {
      button.disabled = false;
    }
  });
}

tool("tool-usage", async () => {
  const token = await tokenOf("platform");
  const response = await fetch("/platform/workspaces/demo-ws-1/usage-counts", {
    method: "PUT",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", "idempotency-key": crypto.randomUUID() },
    body: JSON.stringify({ bots: 2, members: 1, bot_users: 10 }),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error.message);
  const ws = answer.workspace;
  return `demo-ws-1 uses ${ws.usage.bots} bots of ${ws.limits.bots}: it is ${ws.status}.`;
});

tool("tool-clock", async () => {
  const response = await fetch("/_local/clock", { method: "POST", body: JSON.stringify({ advance_days: 31 }) });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error.message);
  return `It is now ${answer.now.slice(0, 10)}: ${answer.renewal.renewed} workspaces renewed, ${answer.renewal.lapsed} lapsed.`;
});

export {};

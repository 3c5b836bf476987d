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

export {};

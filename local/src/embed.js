// A partner's app embedding the billing page (a local stand-in): it gets a workspace's token
// (here from the runner; a partner's backend mints it from its own session) and hands it to the
// framed page when the page says it is ready, addressed to the page's origin only.
const frame = /** @type {HTMLIFrameElement} */ (document.getElementById("billing-frame"));
const status = /** @type {HTMLElement} */ (document.getElementById("embed-status"));
const billingOrigin = new URL(frame.src, location.href).origin;

const token = fetch("/_local/token", {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ user: "bob" }),
})
  .then((response) => response.json())
  .then((answer) => /** @type {string} */ (answer.token));

function handOver() {
  token.then((t) => {
    if (frame.contentWindow) frame.contentWindow.postMessage({ type: "billing-token", token: t }, billingOrigin);
    status.textContent = "Token handed to the billing page.";
  });
}

window.addEventListener("message", (event) => {
  if (event.source === frame.contentWindow && event.origin === billingOrigin && event.data && event.data.type === "billing-ready") {
    handOver();
  }
});
// The page may have said it was ready before this script listened.
frame.addEventListener("load", handOver);

export {};

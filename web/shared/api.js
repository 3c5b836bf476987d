// The API client both screens share: the bearer token, an Idempotency-Key per change, and the
// API's one error shape. The pages are served from the API's own origin (the local runner, or
// CloudFront in front of the stack), so paths are relative and no CORS is involved.

/** @typedef {import("../types/api").paths} Paths */
/** @typedef {import("../types/api").components["schemas"]} Schemas */

/** Where a page keeps its token for the tab's life (never localStorage: it dies with the tab). */
const TOKEN_KEY = "billing-token";

/** The API's error body as a JavaScript error: `type`, `param` and the message to show. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{type?: string, param?: string, message?: string}} error
   */
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.type = error.type || "error";
    this.param = error.param || null;
  }
}

/**
 * The token this page runs with. A host hands it over in the URL fragment (`#token=...`),
 * which never reaches a server and is removed from the address bar at once; it is then kept in
 * sessionStorage for this tab (so a Checkout round trip finds it again).
 * @returns {string | null}
 */
export function takeToken() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const handed = fragment.get("token");
  if (handed) {
    sessionStorage.setItem(TOKEN_KEY, handed);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

/** @param {string} token */
export function keepToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

/** A fresh key for one change the user asked for: a retry of the same click reuses it. */
export function newKey() {
  return crypto.randomUUID();
}

/**
 * One call to the API. GETs carry no key; every change carries `key` (one per user action).
 * @param {string} token
 * @param {"GET" | "POST" | "PUT" | "DELETE"} method
 * @param {string} path
 * @param {{body?: unknown, key?: string}} [options]
 * @returns {Promise<any>}
 */
export async function call(token, method, path, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { authorization: `Bearer ${token}` };
  if (method !== "GET") headers["idempotency-key"] = options.key || newKey();
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  const answer = text ? JSON.parse(text) : null;
  if (!response.ok) {
    throw new ApiError(response.status, (answer && answer.error) || {});
  }
  return answer;
}

/**
 * Reads the claims of a token (not checked here: the API checks it on every call).
 * @param {string} token
 * @returns {{sub?: string, partner_id?: string, workspace_id?: string, roles?: string[]}}
 */
export function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

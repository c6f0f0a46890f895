// Every call of the studio goes through here: the public /v1 API with the secret the
// person pasted, kept in this tab's sessionStorage only.
const SECRET = "relaycast.studio.secret";

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
    this.retryAfter = 0;
  }
  /** [{field, message}] from a validation problem (field as the API names it). */
  get fieldErrors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

export function secret() {
  return sessionStorage.getItem(SECRET);
}

export function signIn(value) {
  sessionStorage.setItem(SECRET, value);
}

export function signOut() {
  sessionStorage.removeItem(SECRET);
}

export async function call(method, path, body) {
  const headers = { Authorization: `Bearer ${secret()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    doc = { detail: text };
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, doc);
    err.retryAfter = Number(resp.headers.get("Retry-After") || 0);
    if (resp.status === 401) window.dispatchEvent(new CustomEvent("studio:unauthorized"));
    throw err;
  }
  return doc;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);
export const patch = (path, body) => call("PATCH", path, body);
export const del = (path) => call("DELETE", path);

/** Exchange a key for a short-lived token (POST /v1/auth/token needs no secret). */
export async function exchange(apiKey) {
  const resp = await fetch("/v1/auth/token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ apiKey }),
  });
  const doc = await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, doc);
  return doc.authorizationToken;
}

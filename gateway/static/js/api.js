// HTTP to the gateway: the bearer token on every call, the API's error shape as ApiError.

const BASE = "/api/v1";
let token = null;
let onUnauthenticated = () => {};

/** An error as the API words it: `message` is the text a person may be shown, verbatim. */
export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function setToken(value) {
  token = value;
}

export function getToken() {
  return token;
}

/** Called once with the error when the token is refused (expired or revoked): sign in again. */
export function whenUnauthenticated(fn) {
  onUnauthenticated = fn;
}

function url(path, params) {
  const u = new URL(BASE + path, window.location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value !== undefined && value !== null && value !== "") u.searchParams.set(key, value);
  }
  return u;
}

function networkError() {
  return new ApiError(0, "network", "Can't reach the server. Check your connection and try again.");
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON (a proxy's page): fall through to a generic message
  }
  const err = body && body.error;
  const message = (err && err.message) || `The request failed (${response.status}).`;
  return new ApiError(response.status, (err && err.code) || `http_${response.status}`, message, (err && err.details) || {});
}

export async function request(method, path, { body, params, signal, auth = true } = {}) {
  const headers = { Accept: "application/json" };
  if (auth && token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url(path, params), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      credentials: "omit", // the token is the only credential; no cookies
      cache: "no-store",
    });
  } catch (e) {
    if (e && e.name === "AbortError") throw e;
    throw networkError();
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (response.status === 401 && auth) onUnauthenticated(error);
    throw error;
  }
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, params, opts = {}) => request("GET", path, { ...opts, params });
export const post = (path, body = {}, opts = {}) => request("POST", path, { ...opts, body });
export const patch = (path, body = {}) => request("PATCH", path, { body });
export const del = (path) => request("DELETE", path);

/** Every page of a paged list (`{items, next_cursor}`). */
export async function allPages(path, params = {}) {
  const items = [];
  let cursor = null;
  do {
    const page = await get(path, { ...params, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

/**
 * Upload one file (POST /attachments, multipart part `file`) with XMLHttpRequest, which reports
 * upload progress (fetch cannot). Resolves with the attachment `{id, name, size, content_type}`.
 */
export function upload(file, onProgress) {
  let xhr;
  const promise = new Promise((resolve, reject) => {
    xhr = new XMLHttpRequest();
    xhr.open("POST", `${BASE}/attachments`);
    if (token) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && onProgress) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener("load", () => {
      const body = xhr.response;
      if (xhr.status >= 200 && xhr.status < 300 && body && body.items && body.items.length) {
        resolve(body.items[0]);
        return;
      }
      const err = body && body.error;
      const error = new ApiError(
        xhr.status,
        (err && err.code) || `http_${xhr.status}`,
        (err && err.message) || `Sorry, you can't send ${file.name}`,
        (err && err.details) || {},
      );
      if (xhr.status === 401) onUnauthenticated(error);
      reject(error);
    });
    xhr.addEventListener("error", () => reject(networkError()));
    xhr.addEventListener("abort", () => reject(new ApiError(0, "aborted", "The upload was cancelled.")));
    const form = new FormData();
    form.append("file", file, file.name);
    xhr.send(form);
  });
  promise.abort = () => xhr && xhr.abort();
  return promise;
}

/**
 * Download an attachment. The link needs the Authorization header, so the file is fetched as a
 * blob and saved through a temporary object URL.
 */
export async function download(attachment) {
  let response;
  try {
    response = await fetch(url(`/attachments/${encodeURIComponent(attachment.id)}`), {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      credentials: "omit",
    });
  } catch {
    throw networkError();
  }
  if (!response.ok) throw await errorFrom(response);
  const blob = await response.blob();
  const objectUrl = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = objectUrl;
  a.download = attachment.name || "download";
  a.rel = "noopener";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(objectUrl), 60_000);
}

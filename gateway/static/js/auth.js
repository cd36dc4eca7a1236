// Signing in. The token lives in sessionStorage (this tab only) and goes out as a bearer token.
//
// - Production: the school's identity provider sends the browser to `/#token=<JWT>`; the token
//   is taken from the fragment (which never reaches a server log) and the fragment is removed.
// - Development: `/?user=<roster id>` signs in at once as that user via POST /api/v1/auth/dev-token;
//   otherwise a small form asks for a user id, with quick buttons for the demo users.

import { ApiError, request } from "./api.js";
import { h } from "./dom.js";
import { alertBox, field, showError } from "./ui.js";

const KEY = "im.token";
const DEMO_USERS = [
  ["user-t-001", "teacher"],
  ["user-s-0001", "student"],
  ["user-a-002", "admin"],
];

export function storedToken() {
  return sessionStorage.getItem(KEY);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

function keep(token) {
  sessionStorage.setItem(KEY, token);
  return token;
}

function cleanUrl() {
  window.history.replaceState(null, "", window.location.pathname);
}

async function devSignIn(userId) {
  const result = await request("POST", "/auth/dev-token", { body: { user_id: userId }, auth: false });
  return keep(result.token);
}

/** The token this page starts with: from the URL (#token= or ?user=), else the one kept. */
export async function initialToken() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  if (fragment.get("token")) {
    const token = keep(fragment.get("token"));
    cleanUrl();
    return { token };
  }
  const user = new URLSearchParams(window.location.search).get("user");
  if (user) {
    try {
      const token = await devSignIn(user);
      cleanUrl();
      return { token };
    } catch (error) {
      cleanUrl();
      return { token: null, error };
    }
  }
  return { token: storedToken() };
}

/** The sign-in form (development sign-in); `onToken(token)` once signed in. */
export function signInScreen(root, onToken, error) {
  const alert = alertBox();
  const input = h("input", { type: "text", name: "user", autocomplete: "username", required: true, spellcheck: "false" });
  const submit = async (userId) => {
    try {
      onToken(await devSignIn(userId.trim()));
    } catch (e) {
      const message =
        e instanceof ApiError && e.code === "not_found" && e.message === "Nothing here."
          ? "Development sign-in is off. Sign in through your school's identity provider."
          : e.message;
      showError(alert, message);
    }
  };
  const form = h(
    "form",
    { class: "signin-form", "data-testid": "sign-in" },
    h("h1", null, "Sign in to messages"),
    alert,
    field("User id", input),
    h("button", { type: "submit", class: "btn btn-green" }, "Sign in"),
    h(
      "div",
      { class: "demo-users" },
      h("p", { class: "hint" }, "Demo users:"),
      DEMO_USERS.map(([id, role]) => h("button", { type: "button", class: "btn", "data-user": id, onclick: () => submit(id) }, `${id} (${role})`)),
    ),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (input.value.trim()) submit(input.value);
  });
  root.replaceChildren(h("main", { id: "main", class: "signin" }, form));
  if (error) showError(alert, error);
  input.focus();
}

// The web client's entry point (F30): sign in, load the state, connect to realtime, and wire the
// main menu bar (chat bubble with the unread badge, Reports, Mass messages) to the panel and pages.
//
// Start-up order (docs/realtime.md): take the sync cursor first, then load the state, then
// connect; whatever happened in between is replayed by the first catch-up.

import { allPages, get, setToken, whenUnauthenticated } from "./api.js";
import { forgetToken, initialToken, signInScreen } from "./auth.js";
import { newMessageView } from "./compose.js";
import { conversationView } from "./conversation.js";
import { h, icon } from "./dom.js";
import { massPage } from "./mass.js";
import { createPanel } from "./panel.js";
import { Realtime } from "./realtime.js";
import { reportsPage } from "./reports.js";
import { STATE_EVENTS, Store } from "./state.js";
import { announce, closeMenu, liveRegionElement, menuIsOpen, showError } from "./ui.js";

const root = document.getElementById("app");
const NOTICE = "im.notice";
const STAFF = new Set(["teacher", "admin"]);

function ready() {
  root.setAttribute("aria-busy", "false");
}

async function boot() {
  const { token, error } = await initialToken();
  const notice = sessionStorage.getItem(NOTICE);
  sessionStorage.removeItem(NOTICE);
  if (!token) {
    ready();
    signInScreen(root, start, error || notice);
    return;
  }
  start(token);
}

/** Leave: forget the token and start over at the sign-in form (with a notice, if any). */
function signOut(notice) {
  forgetToken();
  if (notice) sessionStorage.setItem(NOTICE, notice);
  window.location.replace(window.location.pathname);
}

async function start(token) {
  setToken(token);
  let leaving = false;
  whenUnauthenticated(() => {
    if (leaving) return;
    leaving = true;
    signOut("Your session has ended. Sign in again.");
  });
  let config;
  let cursor;
  let me;
  try {
    config = await get("/config");
    cursor = (await get("/sync")).cursor;
    me = await get("/me");
  } catch (e) {
    if (e.status === 401) return;
    ready();
    root.replaceChildren(h("main", { id: "main", class: "page" }, h("p", { role: "alert", class: "alert" }, e.message)));
    return;
  }
  const app = new App(config, me);
  await app.load();
  app.connect(cursor);
  ready();
}

class App {
  constructor(config, me) {
    this.config = config;
    this.me = me;
    this.store = new Store(me.id);
    this.current = null; // the panel's detail view: a conversation or the new-message form
    this.page = null;
    this.participantsLoad = null;
    this.fetching = new Set();
    this.build();
  }

  isStaff() {
    return STAFF.has(this.me.role);
  }

  isAdmin() {
    return this.me.role === "admin";
  }

  // The shell ----------------------------------------------------------------------------------

  build() {
    this.badge = h("span", { class: "badge", "data-testid": "unread-badge", hidden: true }, "0");
    this.badgeText = h("span", { id: "unread-description", class: "sr-only" }, "No unread messages");
    this.chatButton = h(
      "button",
      {
        type: "button",
        class: "chat-btn",
        "aria-label": "Messages",
        "aria-describedby": "unread-description",
        "aria-expanded": "false",
        "aria-controls": "messages-panel",
        title: "Messages",
      },
      icon("chat"),
    );
    // The badge sits beside the button, over its corner: inside, its number would not be part of
    // the button's name ("Messages"); screen readers get the count from the description.
    this.chatWrap = h("span", { class: "chat-wrap" }, this.chatButton, this.badge);
    this.chatButton.addEventListener("click", () => (this.panel.isOpen() ? this.closePanel() : this.openPanel()));
    this.status = h("span", { class: "connection", "data-testid": "connection-status", "data-state": "connecting" }, "Connecting…");
    const nav = h("nav", { class: "main-nav", "aria-label": "Main menu" });
    if (this.isStaff()) nav.append(h("button", { type: "button", class: "nav-btn", "data-testid": "reports-button", onclick: () => this.go("#reports") }, "Reports"));
    else nav.append(h("a", { class: "nav-link", href: "#reports" }, "Your reports"));
    if (this.isAdmin()) nav.append(h("button", { type: "button", class: "nav-btn", "data-testid": "mass-button", onclick: () => this.go("#mass") }, "Mass messages"));
    const header = h(
      "header",
      { class: "menubar" },
      h("a", { class: "brand", href: "#" }, "School messages"),
      nav,
      h("span", { class: "spacer" }),
      this.status,
      h("span", { class: "me", "data-testid": "me" }, this.me.name),
      this.chatWrap,
      this.badgeText,
      h("button", { type: "button", class: "nav-btn", onclick: () => this.signOut() }, "Sign out"),
    );
    this.main = h("main", { id: "main", class: "content", tabindex: "-1" });
    this.panel = createPanel(this);
    this.toastEl = h("div", { class: "toast", role: "status", "data-testid": "toast", hidden: true });
    root.replaceChildren(header, this.main, this.panel.el, this.toastEl, liveRegionElement());

    this.store.subscribe(() => this.renderBadge());
    window.addEventListener("hashchange", () => this.renderPage());
    document.addEventListener("keydown", (e) => this.onKey(e));
    this.renderPage();
  }

  renderBadge() {
    const total = Math.max(0, this.store.unreadTotal);
    this.badge.textContent = String(total);
    this.badge.hidden = total === 0;
    document.title = total ? `(${total}) Messages` : "Messages";
    this.badgeText.textContent = total === 0 ? "No unread messages" : `${total} unread message${total === 1 ? "" : "s"}`;
  }

  go(hash) {
    if (window.location.hash === hash) this.renderPage();
    else window.location.hash = hash;
  }

  renderPage() {
    this.page?.destroy();
    const route = window.location.hash;
    if (route === "#reports") this.page = reportsPage(this);
    else if (route === "#mass" && this.isAdmin()) this.page = massPage(this);
    else this.page = this.home();
    this.main.replaceChildren(this.page.el);
  }

  home() {
    return {
      el: h(
        "section",
        { class: "page home", "data-testid": "home-page", "aria-labelledby": "home-title" },
        h("h1", { id: "home-title" }, `Welcome, ${this.me.given_name || this.me.name}`),
        h("p", null, "Your conversations are in the messages panel: use the chat bubble at the top right."),
      ),
      destroy() {},
    };
  }

  onKey(e) {
    if (e.key !== "Escape" || e.defaultPrevented) return;
    if (menuIsOpen()) {
      closeMenu();
      return;
    }
    if (document.querySelector("dialog[open]")) return; // the dialog closes itself
    if (this.panel.isOpen()) {
      e.preventDefault();
      this.closePanel();
    }
  }

  toast(text) {
    this.toastEl.textContent = text;
    this.toastEl.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => {
      this.toastEl.hidden = true;
    }, 4000);
  }

  announce(text) {
    announce(text);
  }

  signOut() {
    this.realtime?.stop();
    signOut();
  }

  // Loading and realtime -----------------------------------------------------------------------

  async load() {
    this.store.setUnreadTotal(this.me.unread_total);
    try {
      await this.panel.reload();
    } catch (e) {
      showError(this.panel.alert, e);
    }
  }

  connect(cursor) {
    this.realtime = new Realtime({
      urls: this.config.realtime_urls && this.config.realtime_urls.length ? this.config.realtime_urls : [this.config.realtime_url],
      path: this.config.socketio_path,
      token: () => sessionStorage.getItem("im.token"),
      cursor,
      onEvent: (event, data) => this.onEvent(event, data),
      onReset: () => this.reset(),
      onStatus: (state) => {
        this.status.dataset.state = state;
        this.status.textContent = { connecting: "Connecting…", connected: "Connected", offline: "Offline, reconnecting…" }[state] || state;
      },
      onAuthFailure: () => get("/me").catch(() => {}), // a refused token signs out (401 handler)
    }).start();
  }

  onEvent(event, data) {
    if (STATE_EVENTS.has(event)) {
      const { unknown } = this.store.apply(event, data);
      if (unknown) this.fetchConversation(unknown);
      if (event === "message.created" && data.message.sender.id !== this.me.id) {
        const where = this.store.conversations.get(data.conversation_id)?.name;
        this.announce(`New message from ${data.message.sender.name}${where ? ` in ${where}` : ""}`);
      }
    }
    if (event === "report.created") this.toast("A new abuse report was sent to you.");
    this.page?.onEvent?.(event, data);
  }

  /** The list has not loaded this conversation yet: fetch it (it moves to the top) and the total. */
  async fetchConversation(cid) {
    if (this.fetching.has(cid)) return;
    this.fetching.add(cid);
    try {
      this.store.addConversation(await get(`/conversations/${encodeURIComponent(cid)}`));
      this.store.setUnreadTotal((await get("/me")).unread_total);
    } catch {
      // gone or not visible any more: nothing to show
    } finally {
      this.fetching.delete(cid);
    }
  }

  /** The sync cursor expired: reload everything and continue from a fresh cursor. */
  async reset() {
    const cursor = (await get("/sync")).cursor;
    const openId = this.current?.cid;
    if (openId) this._setDetail(null);
    this.store.clearAll();
    this.me = { ...this.me, ...(await get("/me")) };
    await this.load();
    if (openId) this.openConversation(openId);
    return cursor;
  }

  // The panel ----------------------------------------------------------------------------------

  panelOpen() {
    return this.panel.isOpen();
  }

  openPanel({ focus = true } = {}) {
    const wasOpen = this.panel.isOpen();
    this.panel.open();
    this.chatButton.setAttribute("aria-expanded", "true");
    if (!wasOpen && this.current) this.current.markRead?.();
    if (focus) {
      if (this.current) this.current.focus();
      else this.panel.focusSearch();
    }
  }

  closePanel() {
    this.panel.close();
    this.chatButton.setAttribute("aria-expanded", "false");
    this.chatButton.focus();
  }

  _setDetail(view) {
    if (this.current) {
      this.current.destroy();
      if (this.current.cid) this.store.close(this.current.cid);
    }
    this.current = view;
    this.participantsLoad = null;
    this.panel.setDetail(view ? view.el : null);
    this.panel.setOpenConversation(view?.cid || null);
  }

  async openConversation(cid, { highlight } = {}) {
    this.openPanel({ focus: false });
    if (!this.store.conversations.has(cid)) {
      try {
        this.store.addConversation(await get(`/conversations/${encodeURIComponent(cid)}`));
        this.store.setUnreadTotal((await get("/me")).unread_total);
      } catch (e) {
        showError(this.panel.alert, e);
        return;
      }
    }
    if (this.current && this.current.cid === cid && !highlight) {
      this.current.focus();
      return;
    }
    this._setDetail(null);
    this.store.open(cid);
    const view = conversationView(this, cid, { highlight });
    this._setDetail(view);
    view.focus();
  }

  closeConversation(notice) {
    const cid = this.current?.cid;
    this._setDetail(null);
    if (notice) this.toast(notice);
    const item = cid && this.panel.el.querySelector(`[data-testid="conversation-item"][data-id="${CSS.escape(cid)}"] button`);
    if (item) item.focus();
    else this.panel.focusSearch();
  }

  newMessage() {
    this.openPanel({ focus: false });
    this._setDetail(null);
    const view = newMessageView(this);
    this._setDetail(view);
    view.focus();
  }

  /** Every participant of the open conversation, loaded once per opening. */
  loadParticipants(cid) {
    if (!this.participantsLoad || this.participantsLoad.cid !== cid) {
      const promise = allPages(`/conversations/${encodeURIComponent(cid)}/participants`).then((items) => this.store.addParticipants(cid, items));
      promise.catch(() => {
        if (this.participantsLoad?.promise === promise) this.participantsLoad = null;
      });
      this.participantsLoad = { cid, promise };
    }
    return this.participantsLoad.promise;
  }
}

boot();

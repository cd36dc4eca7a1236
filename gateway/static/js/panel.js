// The messages panel: slides in from the right with the search field, the green "New message"
// button and the conversation list (infinite scroll). The open conversation or the new-message
// form shows beside the list, in the panel's detail pane.

import { get } from "./api.js";
import { debounce, h, icon, shortTime, snippetNodes, timeEl, whenVisible } from "./dom.js";
import { conversationAvatar, previewText, TYPE_LABEL } from "./present.js";
import { alertBox, clearError, closeMenu, showError } from "./ui.js";

const PAGE = 30;

export function createPanel(app) {
  const { store } = app;
  const alert = alertBox({ "data-testid": "panel-alert" });
  const search = h("input", { type: "search", class: "search-input", "aria-label": "Search messages", placeholder: "Search messages", autocomplete: "off" });
  const newButton = h("button", { type: "button", class: "btn btn-green new-message-btn", "data-testid": "new-message-button" }, "New message");
  const list = h("ul", { class: "conversation-list", "data-testid": "conversation-list", "aria-label": "Conversations" });
  const sentinel = h("li", { class: "sentinel", "aria-hidden": "true" });
  const results = h("ul", { class: "conversation-list", "data-testid": "search-results", "aria-label": "Search results", hidden: true });
  const scroller = h("div", { class: "list-scroll" }, list, results);
  const detail = h("div", { class: "panel-detail", "data-testid": "panel-detail" });
  const closeButton = h("button", { type: "button", class: "icon-btn", "aria-label": "Close messages", title: "Close messages" }, icon("close"));
  const el = h(
    "aside",
    { id: "messages-panel", class: "panel", "data-testid": "messages-panel", "aria-labelledby": "panel-title", inert: true },
    h(
      "div",
      { class: "panel-list" },
      h("div", { class: "panel-head" }, h("h2", { id: "panel-title" }, "Messages"), closeButton),
      h("div", { class: "search-box" }, icon("search"), search),
      newButton,
      alert,
      scroller,
    ),
    detail,
  );

  const items = new Map(); // conversation id -> <li>
  const drawn = new WeakMap(); // <li> -> what it shows
  let nextCursor = null;
  let loading = false;
  let openId = null;
  let renderQueued = false;

  // The list ---------------------------------------------------------------------------------

  function itemFor(view) {
    let li = items.get(view.id);
    if (!li) {
      li = h("li", { class: "conversation", "data-testid": "conversation-item", "data-id": view.id });
      li.addEventListener("click", () => app.openConversation(view.id));
      items.set(view.id, li);
    }
    fillItem(li, view);
    return li;
  }

  function fillItem(li, view) {
    const unread = view.unread_count || 0;
    // Views change in place; redraw an item only when something it shows changed.
    const sig = JSON.stringify([view.name, unread, view.last_activity_at, previewText(view, store.me), view.status, view.type, view.id === openId]);
    if (drawn.get(li) === sig) return;
    drawn.set(li, sig);
    li.dataset.type = view.type;
    li.classList.toggle("unread", unread > 0);
    li.classList.toggle("closed", view.status !== "open");
    const button = h(
      "button",
      { type: "button", class: "conversation-open", "aria-current": view.id === openId ? "true" : "false" },
      conversationAvatar(view),
      h(
        "span",
        { class: "conversation-main" },
        h(
          "span",
          { class: "conversation-top" },
          h("span", { class: "conversation-name", "data-testid": "conversation-name" }, view.name),
          timeEl(view.last_activity_at, { class: "conversation-time", "data-testid": "conversation-time" }),
        ),
        h(
          "span",
          { class: "conversation-bottom" },
          h("span", { class: "sr-only" }, `${TYPE_LABEL[view.type] || view.type}. `),
          h("span", { class: "conversation-preview", "data-testid": "conversation-preview" }, previewText(view, store.me)),
          h("span", { class: "unread-count", "data-testid": "unread-count", hidden: unread === 0, title: `${unread} unread` }, String(unread)),
        ),
      ),
    );
    li.replaceChildren(button);
  }

  function render() {
    renderQueued = false;
    const views = store.sorted();
    const keep = new Set(views.map((v) => v.id));
    for (const [id, li] of items) {
      if (!keep.has(id)) {
        li.remove();
        items.delete(id);
      }
    }
    const hadFocus = list.contains(document.activeElement) ? document.activeElement.closest("li")?.dataset.id : null;
    let at = list.firstElementChild;
    for (const view of views) {
      const li = itemFor(view);
      if (li !== at) list.insertBefore(li, at);
      else at = at.nextElementSibling;
    }
    if (sentinel !== list.lastElementChild) list.append(sentinel);
    if (hadFocus && items.get(hadFocus) && !items.get(hadFocus).contains(document.activeElement)) {
      items.get(hadFocus).querySelector("button")?.focus();
    }
    list.classList.toggle("is-empty", views.length === 0);
    if (views.length === 0 && !loading) {
      if (!list.querySelector(".empty")) list.prepend(h("li", { class: "empty" }, "No conversations yet."));
    } else list.querySelector(".empty")?.remove();
  }

  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    requestAnimationFrame(render);
  }

  async function loadMore() {
    if (loading || !nextCursor) return;
    loading = true;
    try {
      const page = await get("/conversations", { cursor: nextCursor, limit: PAGE });
      nextCursor = page.next_cursor;
      store.addPage(page.items, page.next_cursor);
    } catch (e) {
      showError(alert, e);
    } finally {
      loading = false;
    }
  }

  async function reload() {
    loading = true;
    try {
      const page = await get("/conversations", { limit: PAGE });
      nextCursor = page.next_cursor;
      store.addPage(page.items, page.next_cursor);
    } finally {
      loading = false;
      scheduleRender();
    }
  }

  whenVisible(sentinel, scroller, loadMore);
  store.subscribe((change) => {
    if (change.kind === "list" || change.kind === "event" || change.kind === "unread") scheduleRender();
  });

  // Search across conversations (F22) --------------------------------------------------------

  let searchCursor = null;
  let searchSeq = 0;

  const runSearch = debounce(async (more = false) => {
    const q = search.value.trim();
    const mine = ++searchSeq;
    if (!q) {
      results.hidden = true;
      list.hidden = false;
      return;
    }
    try {
      const page = await get("/search", { q, cursor: more ? searchCursor : undefined });
      if (mine !== searchSeq) return;
      clearError(alert);
      searchCursor = page.next_cursor;
      if (!more) results.replaceChildren();
      results.querySelector(".more")?.remove();
      for (const item of page.items) results.append(resultItem(item));
      if (!results.querySelector('[data-testid="search-result"]')) results.append(h("li", { class: "empty" }, "No conversations match."));
      if (searchCursor) {
        results.append(h("li", { class: "more" }, h("button", { type: "button", class: "btn", onclick: () => runSearch(true) }, "More results")));
      }
      results.hidden = false;
      list.hidden = true;
    } catch (e) {
      if (mine === searchSeq) showError(alert, e);
    }
  }, 250);

  function resultItem({ conversation, message, snippet }) {
    return h(
      "li",
      { class: "conversation", "data-testid": "search-result", "data-id": conversation.id, "data-message-id": message?.id },
      h(
        "button",
        { type: "button", class: "conversation-open", onclick: () => app.openConversation(conversation.id, { highlight: message?.id }) },
        conversationAvatar(conversation),
        h(
          "span",
          { class: "conversation-main" },
          h(
            "span",
            { class: "conversation-top" },
            h("span", { class: "conversation-name" }, conversation.name),
            h("span", { class: "conversation-time" }, shortTime(message?.created_at)),
          ),
          h("span", { class: "snippet", "data-testid": "search-snippet" }, snippetNodes(snippet)),
        ),
      ),
    );
  }

  search.addEventListener("input", () => runSearch());
  search.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && search.value) {
      e.stopPropagation();
      e.preventDefault();
      search.value = "";
      runSearch();
    } else if (e.key === "Enter") {
      e.preventDefault();
      runSearch();
    }
  });

  // Opening and closing -----------------------------------------------------------------------

  newButton.addEventListener("click", () => app.newMessage());
  closeButton.addEventListener("click", () => app.closePanel());

  return {
    el,
    detail,
    alert,
    reload,
    render: scheduleRender,
    isOpen: () => el.classList.contains("open"),
    open() {
      el.inert = false;
      el.classList.add("open");
    },
    close() {
      closeMenu({ focusButton: false });
      el.classList.remove("open");
      el.inert = true;
    },
    focusSearch: () => search.focus(),
    setOpenConversation(id) {
      openId = id;
      el.classList.toggle("has-detail", detail.childElementCount > 0);
      scheduleRender();
    },
    setDetail(node) {
      detail.replaceChildren(...(node ? [node] : []));
      el.classList.toggle("has-detail", Boolean(node));
    },
  };
}

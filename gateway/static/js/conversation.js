// The conversation view: history (newest at the bottom, older pages on scrolling up), the
// status banner, the composer, the gear menu and each message's three-dot menu.

import { attachmentList, attachmentTray } from "./attachments.js";
import { del, get, patch, post } from "./api.js";
import { append, bodyNodes, debounce, h, icon, personAvatar, snippetNodes, timeEl, whenVisible } from "./dom.js";
import { forwardDialog, participantsDialog, relationshipDialog, renameDialog, reportDialog } from "./dialogs.js";
import { cannotSendText, conversationAvatar, deletedText, uuid } from "./present.js";
import { alertBox, clearError, confirmDialog, menuButton, showError } from "./ui.js";

const PAGE = 30;

/** A person's avatar; an organisation (the sender of a mass message, "org:<id>") gets its badge. */
function senderAvatar(sender) {
  if (String(sender.id).startsWith("org:")) {
    const badge = conversationAvatar({ type: "mass", name: sender.name }, "avatar avatar-small");
    delete badge.dataset.testid;
    return badge;
  }
  return personAvatar(sender.name, sender.avatar_url, "avatar avatar-small");
}

export function conversationView(app, cid, { highlight } = {}) {
  const { store } = app;
  const me = store.me;
  const alert = alertBox({ "data-testid": "conversation-alert" });
  const title = h("h2", { class: "conversation-title", "data-testid": "conversation-title", id: `title-${cid}` });
  const subtitle = h("p", { class: "conversation-subtitle" });
  const avatarSlot = h("span", { class: "avatar-slot" });
  const status = h("p", { class: "status-banner", "data-testid": "conversation-status", role: "status", hidden: true });
  const note = h("p", { class: "note", "data-testid": "conversation-note", hidden: true });
  const history = h("ol", { class: "history", "data-testid": "message-list", tabindex: "0", "aria-labelledby": title.id });
  const top = h("li", { class: "sentinel", "aria-hidden": "true" });
  const loadingOlder = h("li", { class: "loading-older", hidden: true }, "Loading earlier messages…");
  history.append(top, loadingOlder);

  // Search in conversation (F21)
  const searchInput = h("input", { type: "search", "aria-label": "Search in conversation", placeholder: "Search in conversation", autocomplete: "off" });
  const searchResults = h("ul", { class: "conversation-search-results", "data-testid": "conversation-search-results", "aria-label": "Matching messages" });
  const searchBar = h(
    "div",
    { class: "conversation-search", hidden: true },
    h("div", { class: "search-box" }, icon("search"), searchInput, h("button", { type: "button", class: "icon-btn", "aria-label": "Close search", title: "Close search", onclick: () => closeSearch() }, icon("close"))),
    searchResults,
  );

  // Composer
  const textarea = h("textarea", { rows: "1", class: "composer-input", "data-testid": "composer-input", maxlength: "10000" });
  const tray = attachmentTray({ alert });
  const sendButton = h("button", { type: "submit", class: "send-btn", "aria-label": "Send", title: "Send" }, icon("send"));
  const composer = h(
    "form",
    { class: "composer", "data-testid": "composer" },
    tray.list,
    h("div", { class: "composer-row" }, textarea, tray.picker, sendButton),
  );

  const gear = menuButton({ label: "Conversation settings", iconName: "gear", testid: "conversation-settings", items: () => gearItems() });
  const back = h("button", { type: "button", class: "icon-btn back", "aria-label": "Back to conversations", title: "Back to conversations", onclick: () => app.closeConversation() }, icon("back"));

  const el = h(
    "section",
    { class: "conversation-view", "data-testid": "conversation-view", "data-id": cid, "aria-labelledby": title.id },
    h("header", { class: "conversation-head" }, back, avatarSlot, h("div", { class: "conversation-heading" }, title, subtitle), gear),
    status,
    note,
    searchBar,
    alert,
    history,
    composer,
  );

  const rows = new Map(); // message id -> {li, message}
  let nextCursor = null;
  let loadingPage = false;
  let editing = null; // message id being edited
  let pendingSend = null; // {key, client_id}: a retried send reuses its client_id (F18)
  let destroyed = false;

  const view = () => store.conversations.get(cid);

  // Header, status, composer state -------------------------------------------------------------

  function renderHead() {
    const conv = view();
    if (!conv) return;
    title.textContent = conv.name;
    avatarSlot.replaceChildren(conversationAvatar(conv));
    const count = conv.type === "individual_batch" || conv.type === "mass" ? null : conv.participant_count;
    subtitle.textContent = count ? `${count} participant${count === 1 ? "" : "s"}` : "";
    el.dataset.type = conv.type;
    el.dataset.status = conv.status;
    status.textContent = conv.status_text || "";
    status.hidden = !conv.status_text;
    const notes = [];
    if (conv.through_report) notes.push("You can read this conversation because it was reported to you.");
    if (conv.blocked) notes.push("You blocked this person. Unblock them to send messages.");
    note.textContent = notes.join(" ");
    note.hidden = notes.length === 0;
    const label = `Write message to ${conv.name}`;
    textarea.setAttribute("aria-label", label);
    const canSend = conv.can.includes("send");
    textarea.disabled = !canSend;
    textarea.placeholder = canSend ? label : cannotSendText(conv);
    sendButton.disabled = !canSend;
    tray.setDisabled(!canSend);
    composer.classList.toggle("disabled", !canSend);
  }

  // Messages ------------------------------------------------------------------------------------

  function renderMessages() {
    const atBottom = history.scrollHeight - history.scrollTop - history.clientHeight < 80;
    const list = store.sortedMessages(cid);
    let at = loadingOlder.nextElementSibling;
    let newOwn = false;
    let added = false;
    for (const m of list) {
      let row = rows.get(m.id);
      if (!row) {
        row = { li: null, message: null };
        rows.set(m.id, row);
        added = true;
        if (m.sender.id === me) newOwn = true;
      }
      if (row.message !== m && editing !== m.id) {
        const li = messageRow(m);
        if (row.li) {
          if (at === row.li) at = li;
          row.li.replaceWith(li);
        }
        row.li = li;
        row.message = m;
      }
      if (row.li === at) at = at.nextElementSibling;
      else history.insertBefore(row.li, at);
    }
    if (!list.length && !history.querySelector(".empty")) history.append(h("li", { class: "empty" }, "No messages yet."));
    if (list.length) history.querySelector(".empty")?.remove();
    if (added && (atBottom || newOwn)) scrollToBottom();
  }

  function scrollToBottom() {
    history.scrollTop = history.scrollHeight;
  }

  function messageRow(m) {
    const mine = m.sender.id === me;
    const li = h("li", {
      class: `message${mine ? " mine" : ""}${m.deleted ? " deleted" : ""}`,
      "data-testid": "message",
      "data-id": m.id,
      "data-seq": String(m.seq),
    });
    const body = h("div", { class: "message-body", "data-testid": "message-body" });
    if (m.deleted) body.textContent = deletedText(m.deleted);
    else body.append(bodyNodes(m.body, m.links));
    const head = h(
      "div",
      { class: "message-head" },
      h("span", { class: "message-sender", "data-testid": "message-sender" }, mine ? "You" : m.sender.name),
      timeEl(m.created_at, { class: "message-time" }),
      m.edited_at && !m.deleted ? h("span", { class: "edited", "data-testid": "message-edited", title: new Date(m.edited_at).toLocaleString() }, "Edited") : null,
      m.forwarded_from && !m.deleted ? h("span", { class: "forwarded" }, "Forwarded") : null,
    );
    append(li, [
      mine ? null : senderAvatar(m.sender),
      h("div", { class: "bubble" }, head, m.body || m.deleted ? body : null, m.deleted ? null : attachmentList(m.attachments, alert)),
      m.deleted ? null : menuButton({ label: "Message options", iconName: "dots", testid: "message-options", cls: "icon-btn message-options", items: () => messageItems(m) }),
    ]);
    return li;
  }

  function messageItems(m) {
    const conv = view();
    const can = new Set(conv ? conv.can : []);
    const mine = m.sender.id === me;
    const items = [];
    if (mine) {
      if (can.has("send")) items.push({ label: "Edit", onSelect: () => startEdit(m) });
      items.push({ label: "Delete message", onSelect: () => deleteMessage(m, false) });
      items.push({ label: "Forward", onSelect: () => forwardDialog(app, m) });
      if (can.has("mark_unread")) items.push({ label: "Mark as unread", onSelect: () => markUnread(m.id) });
    } else {
      items.push({ label: "Forward", onSelect: () => forwardDialog(app, m) });
      if (can.has("mark_unread")) items.push({ label: "Mark as unread", onSelect: () => markUnread(m.id) });
      if (conv && conv.type !== "mass") items.push({ label: "Report abuse", onSelect: () => reportDialog(app, { message_id: m.id }, alert) });
      if (can.has("delete_messages")) items.push({ label: "Delete message", onSelect: () => deleteMessage(m, true) });
    }
    return items;
  }

  function startEdit(m) {
    const row = rows.get(m.id);
    if (!row) return;
    editing = m.id;
    const input = h("textarea", { class: "edit-input", "aria-label": "Edit message", rows: "3", maxlength: "10000", value: m.body });
    const finish = () => {
      editing = null;
      const fresh = store.messages.get(cid)?.get(m.id) || m;
      const li = messageRow(fresh);
      row.li.replaceWith(li);
      row.li = li;
      row.message = fresh;
      li.querySelector('[data-testid="message-options"]')?.focus();
    };
    const save = async () => {
      try {
        const updated = await patch(`/messages/${encodeURIComponent(m.id)}`, { body: input.value });
        if (updated && updated.id) store.putMessage(cid, updated);
        finish();
      } catch (e) {
        showError(alert, e);
      }
    };
    const form = h(
      "form",
      { class: "edit-form", "data-testid": "edit-form" },
      input,
      h("div", { class: "edit-actions" }, h("button", { type: "button", class: "btn", onclick: finish }, "Cancel"), h("button", { type: "submit", class: "btn btn-green" }, "Save")),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      save();
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.stopPropagation();
        finish();
      }
    });
    row.li.querySelector(".bubble").replaceChildren(form);
    input.focus();
  }

  async function deleteMessage(m, asModerator) {
    const ok = await confirmDialog(
      "Delete message",
      asModerator
        ? `Delete this message from ${m.sender.name} for everyone? Its text and files are destroyed for good.`
        : "Delete this message for everyone?",
      "Delete message",
    );
    if (!ok) return;
    try {
      await del(`/messages/${encodeURIComponent(m.id)}`);
    } catch (e) {
      showError(alert, e);
    }
  }

  async function markUnread(messageId) {
    try {
      await post(`/conversations/${encodeURIComponent(cid)}/unread`, messageId ? { message_id: messageId } : {});
      app.closeConversation(); // staying here would read it again
    } catch (e) {
      showError(alert, e);
    }
  }

  // Loading -------------------------------------------------------------------------------------

  async function loadOlder() {
    if (loadingPage || !nextCursor || destroyed) return;
    loadingPage = true;
    loadingOlder.hidden = false;
    const before = history.scrollHeight - history.scrollTop;
    try {
      const page = await get(`/conversations/${encodeURIComponent(cid)}/messages`, { cursor: nextCursor, limit: PAGE });
      nextCursor = page.next_cursor;
      store.addMessages(cid, page.items);
      history.scrollTop = history.scrollHeight - before; // keep what the reader was looking at in place
    } catch (e) {
      showError(alert, e);
    } finally {
      loadingPage = false;
      loadingOlder.hidden = true;
    }
  }

  async function loadFirst() {
    el.setAttribute("aria-busy", "true");
    try {
      const page = await get(`/conversations/${encodeURIComponent(cid)}/messages`, { limit: PAGE });
      nextCursor = page.next_cursor;
      store.addMessages(cid, page.items);
      renderMessages();
      scrollToBottom();
      if (highlight) flash(highlight);
      whenVisible(top, history, loadOlder);
      markRead();
    } catch (e) {
      showError(alert, e);
    } finally {
      el.setAttribute("aria-busy", "false");
    }
    app.loadParticipants(cid).catch(() => {});
  }

  function flash(messageId) {
    const row = rows.get(messageId);
    if (!row) return false;
    row.li.scrollIntoView({ block: "center" });
    row.li.classList.add("flash");
    setTimeout(() => row.li.classList.remove("flash"), 2000);
    return true;
  }

  // Read state (F9): reading marks read, while the panel is open and the page is visible ---------

  const markRead = debounce(async () => {
    const conv = view();
    if (destroyed || !conv || !app.panelOpen() || document.visibilityState !== "visible") return;
    if (conv.unread_count === 0 && conv.last_read_seq >= conv.last_seq) return;
    try {
      await post(`/conversations/${encodeURIComponent(cid)}/read`, {});
    } catch {
      // read state is best effort: the next message or opening tries again
    }
  }, 300);

  // Sending (F13, F18, F19) ---------------------------------------------------------------------

  async function send() {
    const conv = view();
    if (!conv || !conv.can.includes("send")) return;
    sendButton.disabled = true;
    try {
      const failed = tray.failures();
      if (tray.busy()) await tray.pending();
      if (tray.failures() > failed) return; // a file was refused: its error stays, nothing is sent
      const body = textarea.value;
      const ids = tray.ids();
      if (!body.trim() && !ids.length) return;
      const key = JSON.stringify([body, ids]);
      if (!pendingSend || pendingSend.key !== key) pendingSend = { key, client_id: uuid() };
      const message = await post(`/conversations/${encodeURIComponent(cid)}/messages`, { body, attachment_ids: ids, client_id: pendingSend.client_id });
      pendingSend = null;
      textarea.value = "";
      autosize();
      tray.clear();
      clearError(alert);
      store.addMessages(cid, [message]);
      scrollToBottom();
    } catch (e) {
      showError(alert, e);
    } finally {
      sendButton.disabled = !view()?.can.includes("send");
      textarea.focus();
    }
  }

  function autosize() {
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 160)}px`;
  }

  composer.addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });
  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  textarea.addEventListener("input", autosize);

  // Gear menu (seed 4.4): only what `can` allows ------------------------------------------------

  function gearItems() {
    const conv = view();
    if (!conv) return [];
    const can = new Set(conv.can);
    const items = [];
    if (can.has("search")) items.push({ label: "Search in conversation", onSelect: openSearch });
    if (can.has("mark_unread")) items.push({ label: "Mark as unread", onSelect: () => markUnread(null) });
    if (can.has("view_participants")) items.push({ label: "View participants", onSelect: () => participantsDialog(app, cid) });
    if (conv.type === "direct") items.push({ label: "Your relationship", onSelect: () => relationshipDialog(app, cid, alert) });
    if (can.has("rename")) items.push({ label: "Rename conversation", onSelect: () => renameDialog(cid, conv.name) });
    if (can.has("report")) items.push({ label: "Report abuse", onSelect: () => reportDialog(app, { conversation_id: cid }, alert) });
    if (can.has("leave")) items.push({ label: "Leave conversation", onSelect: () => act("leave", "Leave conversation", "You will no longer see new messages here.") });
    if (can.has("close")) items.push({ label: "Close conversation", onSelect: () => act("close", "Close conversation", "Nobody will be able to send messages here until it is reopened.") });
    if (can.has("reopen")) items.push({ label: "Reopen conversation", onSelect: () => act("reopen") });
    if (can.has("delete")) items.push({ label: "Delete conversation", onSelect: () => act("delete", "Delete conversation", "Participants keep the history but nobody can send. A new course conversation can be started.") });
    if (can.has("restore")) items.push({ label: "Restore conversation", onSelect: () => act("restore") });
    if (can.has("add_participants")) items.push({ label: "Add participants", onSelect: () => participantsDialog(app, cid, { focusAdd: true }) });
    if (can.has("remove_participants")) items.push({ label: "Remove participants", onSelect: () => participantsDialog(app, cid) });
    if (conv.participants_url && /^https?:\/\//i.test(conv.participants_url)) items.push({ label: "Link to course participant page", href: conv.participants_url });
    if (can.has("block")) items.push({ label: "Block", onSelect: () => act("block", "Block this person", "They will not be able to send you messages here until you unblock them.") });
    if (can.has("unblock")) items.push({ label: "Unblock", onSelect: () => act("unblock") });
    return items;
  }

  async function act(action, confirmTitle, confirmText) {
    if (confirmTitle && !(await confirmDialog(confirmTitle, confirmText, confirmTitle))) return;
    try {
      if (action === "delete") await del(`/conversations/${encodeURIComponent(cid)}`);
      else await post(`/conversations/${encodeURIComponent(cid)}/${action}`, {});
      clearError(alert);
    } catch (e) {
      showError(alert, e);
    }
  }

  // Search in conversation ---------------------------------------------------------------------

  let searchSeq = 0;
  const runSearch = debounce(async () => {
    const q = searchInput.value.trim();
    const mine = ++searchSeq;
    if (!q) {
      searchResults.replaceChildren();
      return;
    }
    try {
      const page = await get(`/conversations/${encodeURIComponent(cid)}/search`, { q });
      if (mine !== searchSeq) return;
      searchResults.replaceChildren(
        ...(page.items.length
          ? page.items.map((m) =>
              h(
                "li",
                { "data-testid": "conversation-search-result", "data-id": m.id },
                h(
                  "button",
                  { type: "button", class: "search-hit", onclick: () => flash(m.id) || showError(alert, "Scroll up to load that message.") },
                  h("span", { class: "search-hit-head" }, m.sender.name, " · ", timeEl(m.created_at)),
                  h("span", { class: "snippet" }, snippetNodes(m.snippet)),
                ),
              ),
            )
          : [h("li", { class: "empty" }, "No messages match.")]),
      );
    } catch (e) {
      if (mine === searchSeq) showError(alert, e);
    }
  }, 250);

  function openSearch() {
    searchBar.hidden = false;
    searchInput.focus();
  }

  function closeSearch() {
    searchBar.hidden = true;
    searchInput.value = "";
    searchResults.replaceChildren();
    textarea.focus();
  }

  searchInput.addEventListener("input", runSearch);
  searchInput.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation();
      closeSearch();
    }
  });

  // Live updates --------------------------------------------------------------------------------

  const unsubscribe = store.subscribe((change) => {
    if (destroyed || change.conversationId !== cid) return;
    if (!store.conversations.has(cid)) {
      app.closeConversation("You are no longer in this conversation.");
      return;
    }
    if (change.kind === "event" || change.kind === "list") renderHead();
    if (change.kind === "messages" || (change.kind === "event" && change.payload?.message)) renderMessages();
    if (change.kind === "event" && change.event === "message.created" && change.payload.message.sender.id !== me) markRead();
  });

  const onVisible = () => {
    if (document.visibilityState === "visible") markRead();
  };
  document.addEventListener("visibilitychange", onVisible);

  renderHead();
  loadFirst();

  return {
    el,
    cid,
    focus() {
      if (!textarea.disabled) textarea.focus();
      else history.focus();
    },
    markRead,
    destroy() {
      destroyed = true;
      unsubscribe();
      document.removeEventListener("visibilitychange", onVisible);
      markRead.cancel();
    },
  };
}

// Dialogs opened from the menus: forward, report abuse, participants, relationship, rename.

import { del, get, patch, post } from "./api.js";
import { h, personAvatar } from "./dom.js";
import { capital, recipientPicker } from "./picker.js";
import { clearError, field, menuButton, openDialog, showError } from "./ui.js";

/** Forward a message (F16): to one of the caller's conversations, or to new recipients. */
export function forwardDialog(app, message) {
  const choices = app.store.sorted().filter((c) => c.can.includes("send"));
  const select = h(
    "select",
    { "data-testid": "forward-conversation" },
    h("option", { value: "" }, "Choose a conversation"),
    choices.map((c) => h("option", { value: c.id }, c.name)),
  );
  let dlg = null;
  let modes = [];
  const modeBox = modeChoice();
  const picker = recipientPicker({
    label: "Add recipients",
    me: app.store.me,
    onChange: async (selected) => {
      select.value = "";
      modes = [];
      modeBox.set([]);
      if (!selected.length) return;
      try {
        const preview = await post("/conversations/preview", { recipients: selected.map(({ type, id }) => ({ type, id })) });
        modes = preview.modes;
        modeBox.set(preview.modes);
        if (preview.error) showError(dlg.alert, preview.error.message);
        else clearError(dlg.alert);
      } catch (e) {
        showError(dlg.alert, e);
      }
    },
    onError: (e) => showError(dlg.alert, e),
  });
  dlg = openDialog({
    title: "Forward message",
    testid: "forward-dialog",
    content: [
      field("To a conversation", select),
      h("p", { class: "or" }, "or to new recipients"),
      picker.element,
      modeBox.el,
    ],
    actions: [
      { label: "Cancel" },
      {
        label: "Forward",
        primary: true,
        onClick: async () => {
          let result;
          if (select.value) {
            result = await post(`/messages/${encodeURIComponent(message.id)}/forward`, { conversation_id: select.value });
          } else if (picker.selected().length) {
            const body = { recipients: picker.selected().map(({ type, id }) => ({ type, id })) };
            if (modes.length > 1) body.mode = modeBox.value();
            result = await post(`/messages/${encodeURIComponent(message.id)}/forward`, body);
          } else {
            throw new Error("Choose a conversation or recipients to forward to.");
          }
          const target = result.conversation ? result.conversation.id : result.message?.conversation_id;
          if (result.conversation) app.store.addConversation(result.conversation);
          if (target) app.openConversation(target);
          return false;
        },
      },
    ],
  });
}

/** "Group conversation" / "Individual messages", offered exactly when `modes` has both. */
export function modeChoice() {
  const name = `mode-${Math.random().toString(36).slice(2)}`;
  const group = h("input", { type: "radio", name, value: "group", checked: true });
  const individual = h("input", { type: "radio", name, value: "individual" });
  const el = h(
    "fieldset",
    { class: "mode-choice", "data-testid": "mode-choice", hidden: true },
    h("legend", null, "Send as"),
    h("label", null, group, " Group conversation"),
    h("label", null, individual, " Individual messages"),
  );
  return {
    el,
    set(modes) {
      el.hidden = !(modes.includes("group") && modes.includes("individual"));
    },
    value: () => (individual.checked ? "individual" : "group"),
    onChange(fn) {
      group.addEventListener("change", fn);
      individual.addEventListener("change", fn);
    },
  };
}

/** Report abuse (F23): choose a teacher or admin offered for this message or conversation, give a reason. */
export async function reportDialog(app, target, alertFallback) {
  const query = target.message_id ? { message_id: target.message_id } : { conversation_id: target.conversation_id };
  let staff;
  try {
    staff = (await get("/reports/recipients", query)).items;
  } catch (e) {
    showError(alertFallback, e);
    return;
  }
  const name = `to-${Math.random().toString(36).slice(2)}`;
  const choices = staff.map((s, i) =>
    h(
      "label",
      { class: "staff-choice", "data-testid": "report-recipient", "data-id": s.user_id },
      h("input", { type: "radio", name, value: s.user_id, checked: i === 0 }),
      h("span", { class: "staff-name" }, s.name),
      h("span", { class: "staff-detail" }, [s.title, s.reason].filter(Boolean).join(" · ")),
    ),
  );
  const reason = h("textarea", { rows: "4", maxlength: "20000", "data-testid": "report-reason" });
  openDialog({
    title: target.message_id ? "Report abuse: message" : "Report abuse: conversation",
    testid: "report-dialog",
    content: [
      h("fieldset", { class: "staff-choices" }, h("legend", null, "Send the report to"), staff.length ? choices : h("p", null, "There is nobody you can report this to.")),
      field("Reason", reason),
    ],
    actions: [
      { label: "Cancel" },
      {
        label: "Send report",
        primary: true,
        onClick: async (dlg) => {
          const chosen = dlg.body.querySelector(`input[name="${name}"]:checked`);
          if (!chosen) throw new Error("Choose who receives the report.");
          await post("/reports", { ...query, to_user_id: chosen.value, reason: reason.value });
          app.toast("Your report was sent.");
        },
      },
    ],
  });
}

/** Participants (F10): avatar, name, title, role; add people (groups); a "Remove" per person for staff. */
export function participantsDialog(app, cid, { focusAdd = false } = {}) {
  const view = () => app.store.conversations.get(cid);
  const list = h("ul", { class: "participants", "data-testid": "participant-list", "aria-label": "Participants" });
  let dlg = null;
  let adding = null;

  const known = () => app.store.participants.get(cid);
  const render = () => {
    const conv = view();
    if (!conv) return;
    const can = new Set(conv.can);
    const people = [...(known() || new Map()).values()].filter((p) => p.via !== "report").sort((a, b) => a.name.localeCompare(b.name));
    list.replaceChildren(
      ...people.map((p) =>
        h(
          "li",
          { class: "participant", "data-testid": "participant", "data-id": p.user_id },
          personAvatar(p.name, p.avatar_url),
          h(
            "span",
            { class: "participant-main" },
            h("span", { class: "participant-name", "data-testid": "participant-name" }, p.user_id === app.store.me ? `${p.name} (you)` : p.name),
            h("span", { class: "participant-detail" }, [p.title, capital(p.role)].filter(Boolean).join(" · ")),
          ),
          can.has("remove_participants") && p.user_id !== app.store.me
            ? menuButton({
                label: `Participant options for ${p.name}`,
                iconName: "dots",
                testid: "participant-options",
                items: [{ label: "Remove", onSelect: () => remove(p) }],
              })
            : null,
        ),
      ),
    );
  };

  const remove = async (p) => {
    try {
      await del(`/conversations/${encodeURIComponent(cid)}/participants/${encodeURIComponent(p.user_id)}`);
    } catch (e) {
      showError(dlg.alert, e);
    }
  };

  const content = [list];
  const conv = view();
  if (conv && conv.can.includes("add_participants")) {
    const members = new Set((known() || new Map()).keys());
    adding = recipientPicker({
      label: "Search people to add",
      types: ["user"],
      me: app.store.me,
      exclude: members,
      onChange: () => clearError(dlg.alert),
      onError: (e) => showError(dlg.alert, e),
    });
    const addButton = h("button", { type: "button", class: "btn btn-green" }, "Add participants");
    addButton.addEventListener("click", async () => {
      const ids = adding.selected().map((s) => s.id);
      if (!ids.length) {
        showError(dlg.alert, "Choose the people to add first.");
        return;
      }
      addButton.disabled = true;
      try {
        await post(`/conversations/${encodeURIComponent(cid)}/participants`, { user_ids: ids });
        adding.clear();
        clearError(dlg.alert);
      } catch (e) {
        showError(dlg.alert, e);
      } finally {
        addButton.disabled = false;
      }
    });
    content.unshift(h("section", { class: "add-participants", "aria-label": "Add participants" }, h("h3", null, "Participants"), adding.element, addButton));
  }

  const unsubscribe = app.store.subscribe((change) => {
    if (change.conversationId === cid) render();
  });
  dlg = openDialog({ title: "Participants", testid: "participants-dialog", content, wide: true, onClose: unsubscribe });
  render();
  // The list may not be in yet (or not all of it): load every page.
  app.loadParticipants(cid).then(render, (e) => showError(dlg.alert, e));
  if (focusAdd && adding) adding.focus();
}

/** Your relationship (F4) with the other person of a 1:1. */
export async function relationshipDialog(app, cid, alertFallback) {
  let other;
  try {
    await app.loadParticipants(cid);
    other = [...(app.store.participants.get(cid) || new Map()).values()].find((p) => p.user_id !== app.store.me && p.via !== "report");
    if (!other) throw new Error("The other person has left this conversation.");
    const rel = await get(`/users/${encodeURIComponent(other.user_id)}/relationship`);
    const lines = rel.summary && rel.summary.length ? rel.summary : ["You share no courses or projects."];
    openDialog({
      title: `Your relationship with ${rel.user?.name || other.name}`,
      testid: "relationship-dialog",
      content: [h("ul", { class: "relationship", "data-testid": "relationship" }, lines.map((l) => h("li", null, l)))],
      actions: [{ label: "Close" }],
    });
  } catch (e) {
    showError(alertFallback, e);
  }
}

export function renameDialog(cid, current) {
  const input = h("input", { type: "text", value: current, maxlength: "100", "data-testid": "rename-input" });
  openDialog({
    title: "Rename conversation",
    testid: "rename-dialog",
    content: [field("Conversation name", input)],
    actions: [
      { label: "Cancel" },
      { label: "Save", primary: true, onClick: () => patch(`/conversations/${encodeURIComponent(cid)}`, { name: input.value }) },
    ],
  });
  input.select();
}

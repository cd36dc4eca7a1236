// "New message" (F6, F7): recipients (people, courses, projects), the group / individual choice
// the preview allows, the first message with its files, and send.

import { attachmentTray } from "./attachments.js";
import { post } from "./api.js";
import { h, icon } from "./dom.js";
import { modeChoice } from "./dialogs.js";
import { recipientPicker } from "./picker.js";
import { uuid } from "./present.js";
import { alertBox, clearError, showError } from "./ui.js";

export function newMessageView(app) {
  const alert = alertBox({ "data-testid": "new-message-alert" });
  const summary = h("p", { class: "preview-summary", "data-testid": "preview-summary", "aria-live": "polite" });
  const mode = modeChoice();
  const nameInput = h("input", { type: "text", maxlength: "100", "data-testid": "conversation-name-input" });
  const nameField = h("div", { class: "field", hidden: true }, h("label", { for: "new-conversation-name" }, "Conversation name (optional)"), nameInput);
  nameInput.id = "new-conversation-name";
  const textarea = h("textarea", { rows: "4", class: "composer-input", "aria-label": "Write message", placeholder: "Write message", maxlength: "10000", "data-testid": "new-message-body" });
  const tray = attachmentTray({ alert });
  const sendButton = h("button", { type: "submit", class: "send-btn", "aria-label": "Send", title: "Send" }, icon("send"));

  let preview = null;
  let previewSeq = 0;
  let previewing = Promise.resolve();
  let pendingSend = null;

  const picker = recipientPicker({
    label: "Add recipients",
    me: app.store.me,
    onChange: (selected) => {
      previewing = updatePreview(selected);
    },
    onError: (e) => showError(alert, e),
  });

  async function updatePreview(selected) {
    const mine = ++previewSeq;
    preview = null;
    mode.set([]);
    nameField.hidden = true;
    summary.textContent = "";
    clearError(alert);
    if (!selected.length) return;
    try {
      const result = await post("/conversations/preview", { recipients: selected.map(({ type, id }) => ({ type, id })) });
      if (mine !== previewSeq) return; // the recipients changed again meanwhile
      preview = result;
      mode.set(result.modes);
      summary.textContent = describe(result);
      updateNameField();
      if (result.error) showError(alert, result.error.message);
    } catch (e) {
      if (mine === previewSeq) showError(alert, e);
    }
  }

  function describe(result) {
    const people = `${result.unique_count} ${result.unique_count === 1 ? "person" : "people"}`;
    if (result.outcome === "direct") return `A 1:1 conversation with ${picker.selected()[0]?.name || "this person"}.`;
    if (result.outcome === "course_conversation") return `Posts in the course conversation (${people}).`;
    if (result.outcome === "project_conversation") return `Posts in the project conversation (${people}).`;
    if (result.outcome === "refused") return "";
    return `${people} will receive this.`;
  }

  function updateNameField() {
    const selected = picker.selected();
    const lone = selected.length === 1 && selected[0].type !== "user";
    nameField.hidden = !(preview && preview.modes.includes("group") && mode.value() === "group" && !lone);
  }
  mode.onChange(updateNameField);

  async function send() {
    const recipients = picker.selected().map(({ type, id }) => ({ type, id }));
    if (!recipients.length) {
      showError(alert, "Add at least one recipient.");
      picker.focus();
      return;
    }
    sendButton.disabled = true;
    try {
      const failed = tray.failures();
      if (tray.busy()) await tray.pending();
      if (tray.failures() > failed) return; // a file was refused: its error stays, nothing is sent
      await previewing; // the mode offered depends on the latest preview
      const body = textarea.value;
      const ids = tray.ids();
      if (!body.trim() && !ids.length) {
        showError(alert, "Write a message or attach a file.");
        return;
      }
      const request = { recipients, body, attachment_ids: ids };
      if (preview && preview.modes.length) request.mode = preview.modes.length > 1 ? mode.value() : preview.modes[0];
      if (!nameField.hidden && nameInput.value.trim()) request.name = nameInput.value.trim();
      const key = JSON.stringify(request);
      if (!pendingSend || pendingSend.key !== key) pendingSend = { key, client_id: uuid() };
      const result = await post("/conversations", { ...request, client_id: pendingSend.client_id });
      pendingSend = null;
      app.store.addConversation(result.conversation);
      app.openConversation(result.conversation.id);
      app.announce("Your message was sent.");
    } catch (e) {
      showError(alert, e);
    } finally {
      sendButton.disabled = false;
    }
  }

  const form = h(
    "form",
    { class: "new-message-form" },
    h("div", { class: "recipients" }, picker.element),
    summary,
    mode.el,
    nameField,
    tray.list,
    h("div", { class: "composer-row" }, textarea, tray.picker, sendButton),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    send();
  });
  textarea.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });

  const el = h(
    "section",
    { class: "new-message", "data-testid": "new-message", "aria-labelledby": "new-message-title" },
    h(
      "header",
      { class: "conversation-head" },
      h("button", { type: "button", class: "icon-btn back", "aria-label": "Back to conversations", title: "Back to conversations", onclick: () => app.closeConversation() }, icon("back")),
      h("h2", { id: "new-message-title", class: "conversation-title" }, "New message"),
    ),
    alert,
    form,
  );

  return { el, focus: () => picker.focus(), destroy() {} };
}

// How conversations look: the icon or avatar per type, the list's one-line preview.

import { h, icon, initials } from "./dom.js";

export const TYPE_LABEL = {
  direct: "1:1 conversation",
  group: "Group conversation",
  course: "Course conversation",
  project: "Project conversation",
  individual_batch: "Individual messages",
  mass: "Mass message",
};

const TYPE_ICON = { group: "group", course: "course", project: "project", individual_batch: "batch", mass: "org" };

/** A 1:1 shows the other person's initials; every other type its own icon (mass: the organisation). */
export function conversationAvatar(view, cls = "avatar") {
  const kind = TYPE_ICON[view.type];
  const el = kind
    ? h("span", { class: `${cls} avatar-${view.type}` }, icon(kind))
    : h("span", { class: `${cls} avatar-initials avatar-direct` }, initials(view.name));
  el.setAttribute("aria-hidden", "true");
  el.dataset.testid = "conversation-avatar";
  el.dataset.type = view.type;
  return el;
}

export function previewText(view, me) {
  const last = view.last_message;
  if (!last) return "";
  const text = last.preview || "";
  if (!text) return "";
  if (last.sender_id === me) return `You: ${text}`;
  if (view.type === "group" || view.type === "course" || view.type === "project") {
    const first = (last.sender_name || "").split(" ")[0];
    return first ? `${first}: ${text}` : text;
  }
  return text;
}

/** The text shown instead of a deleted message (F15, F24). */
export function deletedText(deleted) {
  if (deleted.by === "moderator") return `This message was removed by ${deleted.by_name}`;
  return "This message was deleted";
}

/** Why the composer is off, when `can` lacks "send". */
export function cannotSendText(view) {
  if (view.status_text) return view.status_text;
  if (view.type === "mass") return "Mass messages cannot be answered.";
  return "You can't send messages in this conversation.";
}

export function uuid() {
  if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
  // randomUUID needs a secure context; getRandomValues does not.
  const b = window.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

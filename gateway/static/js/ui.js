// Shared widgets: error alerts, menus (role=menu with arrow keys), dialogs, confirmation.

import { clear, h, icon } from "./dom.js";

// Alerts -----------------------------------------------------------------------------------
// Each area has its own role="alert" element, hidden while empty. Showing one error hides the
// others, so there is never more than one alert on the page.

export function alertBox(props = {}) {
  return h("div", { role: "alert", class: "alert", hidden: true, ...props });
}

export function showError(box, error) {
  const text = typeof error === "string" ? error : (error && error.message) || "Something went wrong.";
  for (const other of document.querySelectorAll('[role="alert"]')) {
    if (other !== box) {
      other.hidden = true;
      other.textContent = "";
    }
  }
  box.textContent = text;
  box.hidden = false;
}

export function clearError(box) {
  box.hidden = true;
  box.textContent = "";
}

// Live announcements for screen readers ----------------------------------------------------

let liveRegion = null;

export function liveRegionElement() {
  liveRegion = h("div", { class: "sr-only", "aria-live": "polite", "data-testid": "live-region" });
  return liveRegion;
}

export function announce(text) {
  if (!liveRegion) return;
  liveRegion.textContent = "";
  // A fresh text node after clearing makes screen readers read it even when it repeats.
  setTimeout(() => {
    liveRegion.textContent = text;
  }, 50);
}

// Menus --------------------------------------------------------------------------------------
// openMenu(button, items): items are {label, onSelect} or {label, href} (opens in a new tab).
// Arrow keys move, Home/End jump, Escape closes and gives focus back to the button.

let openMenuState = null;

export function closeMenu({ focusButton = true } = {}) {
  if (!openMenuState) return false;
  const { menu, button, onDocDown } = openMenuState;
  openMenuState = null;
  document.removeEventListener("mousedown", onDocDown, true);
  menu.remove();
  button.setAttribute("aria-expanded", "false");
  if (focusButton && button.isConnected) button.focus();
  return true;
}

export function menuButton({ label, iconName, testid, items, cls = "icon-btn" }) {
  const button = h(
    "button",
    {
      type: "button",
      class: cls,
      "aria-label": label,
      "aria-haspopup": "menu",
      "aria-expanded": "false",
      "data-testid": testid,
      title: label,
    },
    icon(iconName),
  );
  const toggle = () => {
    if (openMenuState && openMenuState.button === button) closeMenu();
    else openMenu(button, typeof items === "function" ? items() : items, label);
  };
  button.addEventListener("click", toggle);
  button.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!openMenuState || openMenuState.button !== button) openMenu(button, typeof items === "function" ? items() : items, label, e.key === "ArrowUp");
    }
  });
  return button;
}

export function openMenu(button, items, label, focusLast = false) {
  closeMenu({ focusButton: false });
  const menu = h("ul", { role: "menu", class: "menu", "aria-label": label, "data-testid": "menu" });
  const entries = [];
  for (const item of items) {
    let entry;
    if (item.href) {
      entry = h("a", { role: "menuitem", tabindex: "-1", href: item.href, target: "_blank", rel: "noopener noreferrer" }, item.label);
      entry.addEventListener("click", () => closeMenu());
    } else {
      entry = h("button", { type: "button", role: "menuitem", tabindex: "-1", class: item.danger ? "danger" : "" }, item.label);
      entry.addEventListener("click", () => {
        closeMenu();
        item.onSelect();
      });
    }
    entries.push(entry);
    menu.append(h("li", { role: "none" }, entry));
  }
  if (!entries.length) menu.append(h("li", { role: "none", class: "menu-empty" }, "No options"));
  menu.addEventListener("keydown", (e) => {
    const at = entries.indexOf(document.activeElement);
    const move = (i) => entries[(i + entries.length) % entries.length]?.focus();
    if (e.key === "ArrowDown") move(at + 1);
    else if (e.key === "ArrowUp") move(at - 1);
    else if (e.key === "Home") move(0);
    else if (e.key === "End") move(entries.length - 1);
    else if (e.key === "Escape") closeMenu();
    else if (e.key === "Tab") closeMenu({ focusButton: false });
    else return;
    e.preventDefault();
    e.stopPropagation();
  });
  // Inside a modal dialog everything else is inert: the menu must live in the dialog.
  (button.closest("dialog") || document.body).append(menu);
  place(menu, button);
  const onDocDown = (e) => {
    if (!menu.contains(e.target) && !button.contains(e.target)) closeMenu({ focusButton: false });
  };
  document.addEventListener("mousedown", onDocDown, true);
  openMenuState = { menu, button, onDocDown };
  button.setAttribute("aria-expanded", "true");
  (focusLast ? entries[entries.length - 1] : entries[0])?.focus();
  return menu;
}

function place(menu, button) {
  const r = button.getBoundingClientRect();
  const box = menu.getBoundingClientRect();
  const top = r.bottom + 4 + box.height > window.innerHeight ? Math.max(4, r.top - box.height - 4) : r.bottom + 4;
  const left = Math.max(4, Math.min(r.right - box.width, window.innerWidth - box.width - 4));
  menu.style.top = `${top}px`;
  menu.style.left = `${left}px`;
}

export function menuIsOpen() {
  return openMenuState !== null;
}

// Dialogs ------------------------------------------------------------------------------------

/**
 * A modal dialog (native <dialog>: focus is trapped, Escape closes it). Returns
 * {dialog, body, alert, close}; `onClose` runs once when it closes however it closes.
 */
export function openDialog({ title, testid, content = [], actions = [], onClose, wide = false }) {
  const opener = document.activeElement;
  const titleId = `dlg-${Math.random().toString(36).slice(2)}`;
  const alert = alertBox();
  const body = h("div", { class: "dialog-body" }, content);
  const footer = h("div", { class: "dialog-actions" });
  const dialog = h(
    "dialog",
    { class: wide ? "dialog wide" : "dialog", "aria-labelledby": titleId, "data-testid": testid },
    h(
      "div",
      { class: "dialog-head" },
      h("h2", { id: titleId }, title),
      h("button", { type: "button", class: "icon-btn", "aria-label": "Close", title: "Close", onclick: () => close() }, icon("close")),
    ),
    alert,
    body,
    footer,
  );
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    if (dialog.open) dialog.close();
    dialog.remove();
    if (onClose) onClose();
    if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
  };
  dialog.addEventListener("close", close);
  dialog.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      e.stopPropagation(); // the dialog closes itself; the panel behind stays open
      if (closeMenu()) e.preventDefault();
    }
  });
  const controller = { dialog, body, alert, close, footer };
  for (const action of actions) footer.append(actionButton(action, controller));
  document.body.append(dialog);
  dialog.showModal();
  body.querySelector("input:not([type=hidden]), select, textarea")?.focus();
  return controller;
}

function actionButton(action, controller) {
  const button = h("button", { type: "button", class: action.primary ? (action.danger ? "btn btn-danger" : "btn btn-green") : "btn" }, action.label);
  button.addEventListener("click", async () => {
    if (!action.onClick) {
      controller.close();
      return;
    }
    button.disabled = true;
    try {
      const keepOpen = await action.onClick(controller);
      if (keepOpen !== true) controller.close();
    } catch (e) {
      showError(controller.alert, e);
    } finally {
      button.disabled = false;
    }
  });
  return button;
}

/** Ask before doing something that cannot be undone; resolves true when confirmed. */
export function confirmDialog(title, text, confirmLabel, { danger = true } = {}) {
  return new Promise((resolve) => {
    let answer = false;
    openDialog({
      title,
      testid: "confirm-dialog",
      content: [h("p", null, text)],
      actions: [
        { label: "Cancel" },
        {
          label: confirmLabel,
          primary: true,
          danger,
          onClick: () => {
            answer = true;
          },
        },
      ],
      onClose: () => resolve(answer),
    });
  });
}

/** A field with a visible label. */
export function field(labelText, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2)}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, labelText), control, hint ? h("p", { class: "hint" }, hint) : null);
}

export function setBusy(el, busy) {
  el.setAttribute("aria-busy", busy ? "true" : "false");
}

export function emptyNote(el, text) {
  clear(el);
  el.append(h("li", { class: "empty" }, text));
}

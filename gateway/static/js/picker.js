// "Add recipients": a combobox searching GET /directory/search (people, courses, projects),
// results as role=option items, chosen recipients as removable chips.

import { get } from "./api.js";
import { debounce, h, icon, newId } from "./dom.js";

const KIND_LABEL = { user: "Person", course: "Course", project: "Project" };

/**
 * @param {object} o
 * @param {string} o.label the input's accessible name ("Add recipients")
 * @param {string[]} [o.types] which kinds to offer: "user", "course", "project"
 * @param {string} o.me the signed-in user (never offered)
 * @param {(selected: object[]) => void} o.onChange
 * @param {(error: Error) => void} o.onError
 * @param {Set<string>} [o.exclude] user ids not to offer (e.g. current participants)
 */
export function recipientPicker({ label, types = ["user", "course", "project"], me, onChange, onError, exclude = new Set(), placeholder = "Search by name" }) {
  const selected = []; // {type, id, name}
  const listId = newId("options");
  const input = h("input", {
    type: "text",
    class: "picker-input",
    role: "combobox",
    "aria-label": label,
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": listId,
    autocomplete: "off",
    placeholder,
  });
  const listbox = h("ul", { id: listId, role: "listbox", class: "picker-options", "aria-label": "Matches", hidden: true });
  const chips = h("ul", { class: "chips", "aria-label": "Chosen recipients", "data-testid": "recipient-chips" });
  let options = []; // [{el, item}]
  let active = -1;
  let query = 0;

  const setActive = (i) => {
    options.forEach((o, j) => o.el.setAttribute("aria-selected", j === i ? "true" : "false"));
    active = i;
    if (i >= 0 && options[i]) {
      input.setAttribute("aria-activedescendant", options[i].el.id);
      options[i].el.scrollIntoView({ block: "nearest" });
    } else input.removeAttribute("aria-activedescendant");
  };

  const closeList = () => {
    listbox.hidden = true;
    input.setAttribute("aria-expanded", "false");
    setActive(-1);
  };

  const choose = (item) => {
    if (!selected.some((s) => s.type === item.type && s.id === item.id)) {
      selected.push({ type: item.type, id: item.id, name: item.name });
      renderChips();
      onChange([...selected]);
    }
    input.value = "";
    closeList();
    input.focus();
  };

  const renderChips = () => {
    chips.replaceChildren(
      ...selected.map((s) =>
        h(
          "li",
          { class: `chip chip-${s.type}`, "data-testid": "recipient-chip", "data-id": s.id, "data-type": s.type },
          h("span", null, s.name),
          h(
            "button",
            {
              type: "button",
              class: "chip-remove",
              "aria-label": `Remove ${s.name}`,
              title: "Remove",
              onclick: () => {
                selected.splice(selected.indexOf(s), 1);
                renderChips();
                onChange([...selected]);
                input.focus();
              },
            },
            icon("close"),
          ),
        ),
      ),
    );
  };

  const detail = (item) => {
    if (item.type === "user") return [item.title || "", item.role && item.title !== capital(item.role) ? capital(item.role) : ""].filter(Boolean).join(" · ");
    const members = item.member_count !== undefined ? `${item.member_count} member${item.member_count === 1 ? "" : "s"}` : "";
    return [KIND_LABEL[item.type], members].filter(Boolean).join(" · ");
  };

  const search = debounce(async () => {
    const q = input.value.trim();
    const mine = ++query;
    if (!q) {
      closeList();
      return;
    }
    let result;
    try {
      result = await get("/directory/search", { q });
    } catch (e) {
      if (mine === query) onError(e);
      return;
    }
    if (mine !== query) return; // a newer search is on its way
    const items = [
      ...(types.includes("user") ? result.people || [] : []),
      ...(types.includes("course") ? result.courses || [] : []),
      ...(types.includes("project") ? result.projects || [] : []),
    ].filter((item) => item.id !== me && !exclude.has(item.id) && !selected.some((s) => s.type === item.type && s.id === item.id));
    options = items.map((item) => {
      const el = h(
        "li",
        { id: newId("opt"), role: "option", class: `option option-${item.type}`, "aria-selected": "false", "data-testid": "recipient-option", "data-id": item.id },
        h("span", { class: "option-name" }, item.name),
        h("span", { class: "option-detail" }, detail(item)),
      );
      el.addEventListener("mousedown", (e) => e.preventDefault()); // keep focus in the input
      el.addEventListener("click", () => choose(item));
      return { el, item };
    });
    listbox.replaceChildren(...(options.length ? options.map((o) => o.el) : [h("li", { class: "option-empty", role: "presentation" }, "No matches")]));
    listbox.hidden = false;
    input.setAttribute("aria-expanded", "true");
    setActive(options.length ? 0 : -1);
  }, 200);

  input.addEventListener("input", search);
  input.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" && options.length) setActive((active + 1) % options.length);
    else if (e.key === "ArrowUp" && options.length) setActive((active - 1 + options.length) % options.length);
    else if (e.key === "Enter") {
      if (!listbox.hidden && options[active]) choose(options[active].item);
    } else if (e.key === "Escape" && !listbox.hidden) {
      closeList();
      e.stopPropagation();
    } else if (e.key === "Backspace" && !input.value && selected.length) {
      selected.pop();
      renderChips();
      onChange([...selected]);
      return;
    } else return;
    e.preventDefault();
  });
  input.addEventListener("blur", () => setTimeout(closeList, 150));

  const element = h("div", { class: "picker" }, chips, h("div", { class: "picker-box" }, icon("search"), input), listbox);
  return {
    element,
    input,
    selected: () => [...selected],
    clear() {
      selected.length = 0;
      renderChips();
      input.value = "";
      closeList();
    },
    focus: () => input.focus(),
  };
}

export function capital(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : "";
}

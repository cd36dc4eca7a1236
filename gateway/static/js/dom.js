// Building DOM safely. Nothing in this client ever assigns innerHTML: text from users and
// servers only ever becomes text nodes (textContent), or, for search snippets and message
// links, elements built here from vetted pieces.

const BOOLEAN_PROPS = new Set(["hidden", "disabled", "checked", "multiple", "required", "readOnly", "inert"]);

/** h("button", {class: "x", onclick: fn, "aria-label": "Close"}, "child", node, [more]) */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

export function setProps(el, props) {
  if (!props) return el;
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (BOOLEAN_PROPS.has(key)) el[key] = Boolean(value);
    else if (key === "value") el.value = value;
    else if (value === false) continue;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function show(el, visible) {
  el.hidden = !visible;
}

// Icons: small stroke SVGs built from constant shapes.
const SVG = "http://www.w3.org/2000/svg";
const ICONS = {
  chat: [["path", "M21 11.5a8.4 8.4 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.4 8.4 0 0 1-3.8-.9L3 21l1.9-5.7a8.4 8.4 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.4 8.4 0 0 1 3.8-.9h.5a8.5 8.5 0 0 1 8 8z"]],
  gear: [
    ["circle", 12, 12, 3],
    ["path", "M19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1z"],
  ],
  dots: [["circle", 5, 12, 1.5], ["circle", 12, 12, 1.5], ["circle", 19, 12, 1.5]],
  clip: [["path", "M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"]],
  send: [["path", "M5 12h14"], ["path", "M12 5l7 7-7 7"]],
  person: [["path", "M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2"], ["circle", 12, 7, 4]],
  group: [
    ["path", "M17 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2"],
    ["circle", 9, 7, 4],
    ["path", "M23 21v-2a4 4 0 0 0-3-3.9"],
    ["path", "M16 3.1a4 4 0 0 1 0 7.8"],
  ],
  course: [["path", "M4 19.5A2.5 2.5 0 0 1 6.5 17H20"], ["path", "M6.5 2H20v20H6.5A2.5 2.5 0 0 1 4 19.5v-15A2.5 2.5 0 0 1 6.5 2z"]],
  project: [["path", "M12 2L2 7l10 5 10-5-10-5z"], ["path", "M2 17l10 5 10-5"], ["path", "M2 12l10 5 10-5"]],
  batch: [["path", "M22 2L11 13"], ["path", "M22 2l-7 20-4-9-9-4 20-7z"]],
  org: [["path", "M3 21h18"], ["path", "M5 21V8l7-5 7 5v13"], ["path", "M9 21v-6h6v6"], ["path", "M10 10h4"]],
  file: [["path", "M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z"], ["path", "M14 2v6h6"]],
  download: [["path", "M21 15v4a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2v-4"], ["path", "M7 10l5 5 5-5"], ["path", "M12 15V3"]],
  close: [["path", "M18 6L6 18"], ["path", "M6 6l12 12"]],
  back: [["path", "M19 12H5"], ["path", "M12 19l-7-7 7-7"]],
  search: [["circle", 11, 11, 7], ["path", "M21 21l-4.3-4.3"]],
};

export function icon(name, cls = "icon") {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", cls);
  for (const [shape, ...args] of ICONS[name] || []) {
    const part = document.createElementNS(SVG, shape);
    if (shape === "path") part.setAttribute("d", args[0]);
    else {
      part.setAttribute("cx", args[0]);
      part.setAttribute("cy", args[1]);
      part.setAttribute("r", args[2]);
    }
    svg.append(part);
  }
  return svg;
}

// Formatting ------------------------------------------------------------------------------

export function shortTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (d.getFullYear() === now.getFullYear()) return d.toLocaleDateString([], { day: "numeric", month: "short" });
  return d.toLocaleDateString([], { day: "numeric", month: "short", year: "numeric" });
}

export function fullTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

export function timeEl(iso, props = {}) {
  return h("time", { datetime: iso || "", title: fullTime(iso), ...props }, shortTime(iso));
}

export function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

export function initials(name) {
  const words = String(name || "?").trim().split(/\s+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[words.length - 1]] : words;
  return letters.map((w) => Array.from(w)[0].toUpperCase()).join("") || "?";
}

/** An avatar: the person's picture when it is served by this site, else their initials. */
export function personAvatar(name, avatarUrl, cls = "avatar") {
  const safe = typeof avatarUrl === "string" && avatarUrl.startsWith("/") && !avatarUrl.startsWith("//");
  if (safe) return h("img", { class: cls, src: avatarUrl, alt: "" });
  return h("span", { class: `${cls} avatar-initials`, "aria-hidden": "true" }, initials(name));
}

// Snippets and message text ---------------------------------------------------------------

const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

function decodeEntities(text) {
  return text.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);/gi, (whole, name) => {
    if (name[0] === "#") {
      const code = name[1].toLowerCase() === "x" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/** A search snippet (escaped text whose matches are wrapped in <mark>) as text nodes and <mark>s only. */
export function snippetNodes(snippet) {
  const frag = document.createDocumentFragment();
  const marks = /<mark>([\s\S]*?)<\/mark>/g;
  let last = 0;
  for (const m of String(snippet || "").matchAll(marks)) {
    frag.append(decodeEntities(snippet.slice(last, m.index)));
    frag.append(h("mark", null, decodeEntities(m[1])));
    last = m.index + m[0].length;
  }
  frag.append(decodeEntities(String(snippet || "").slice(last)));
  return frag;
}

function safeHref(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/**
 * A message body as text with its links (the server's `links`: code-point ranges in the body)
 * made clickable; only http(s) URLs become <a>, anything else stays text.
 */
export function bodyNodes(body, links) {
  const frag = document.createDocumentFragment();
  const chars = Array.from(body || ""); // the server counts code points, JavaScript strings count UTF-16 units
  let pos = 0;
  const sorted = [...(links || [])].sort((a, b) => a.start - b.start);
  for (const link of sorted) {
    if (!(link.start >= pos && link.end > link.start && link.end <= chars.length)) continue;
    frag.append(chars.slice(pos, link.start).join(""));
    const text = chars.slice(link.start, link.end).join("");
    const href = safeHref(link.url);
    frag.append(href ? h("a", { href, rel: "noopener noreferrer", target: "_blank" }, text) : text);
    pos = link.end;
  }
  frag.append(chars.slice(pos).join(""));
  return frag;
}

/** Call `load` whenever `sentinel` scrolls into view inside `root` (infinite scroll). */
export function whenVisible(sentinel, root, load) {
  const observer = new IntersectionObserver(
    (entries) => {
      if (entries.some((e) => e.isIntersecting)) load();
    },
    { root, rootMargin: "200px 0px" },
  );
  observer.observe(sentinel);
  return observer;
}

export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

let uid = 0;
export function newId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

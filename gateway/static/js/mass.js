// Mass messages (F27), for administrators: the form, and the jobs with live progress
// (`mass_message.progress`) and "Cancel" while queued or running.

import { get, post } from "./api.js";
import { h, timeEl, whenVisible } from "./dom.js";
import { alertBox, clearError, field, showError } from "./ui.js";

const ROLES = [
  ["everyone", "Everyone"],
  ["student", "Students"],
  ["teacher", "Teachers"],
  ["admin", "Admins"],
  ["guardian", "Guardians"],
  ["staff", "Staff"],
];
const STATE_LABEL = { queued: "Queued", running: "Running", completed: "Completed", cancelled: "Cancelled", failed: "Failed" };

function flatten(orgs, depth = 0, out = []) {
  for (const org of orgs || []) {
    out.push({ id: org.id, name: org.name, depth });
    flatten(org.children, depth + 1, out);
  }
  return out;
}

export function massPage(app) {
  const alert = alertBox({ "data-testid": "mass-alert" });
  const org = h("select", { "data-testid": "mass-org", required: true });
  const boxes = ROLES.map(([value, label]) => ({ value, input: h("input", { type: "checkbox", value, checked: value === "everyone" }), label }));
  const body = h("textarea", { rows: "4", maxlength: "10000", "data-testid": "mass-body", required: true });
  const sendButton = h("button", { type: "submit", class: "btn btn-green" }, "Send");
  const list = h("ul", { class: "mass-list", "data-testid": "mass-list", "aria-label": "Mass messages sent" });
  const sentinel = h("li", { class: "sentinel", "aria-hidden": "true" });
  const rows = new Map();
  let cursor = null;
  let loading = false;

  // "Everyone" and the single roles exclude each other.
  for (const box of boxes) {
    box.input.addEventListener("change", () => {
      if (!box.input.checked) return;
      for (const other of boxes) if ((box.value === "everyone") !== (other.value === "everyone")) other.input.checked = false;
    });
  }

  const form = h(
    "form",
    { class: "mass-form", "data-testid": "mass-form" },
    field("Organisation", org, "Shown as the sender; its members and those of the organisations under it receive the message."),
    h("fieldset", { class: "roles" }, h("legend", null, "Recipients"), boxes.map((b) => h("label", { class: "check" }, b.input, ` ${b.label}`))),
    field("Message text", body),
    alert,
    sendButton,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const chosen = boxes.filter((b) => b.input.checked).map((b) => b.value);
    if (!chosen.length) {
      showError(alert, "Choose who receives the message.");
      return;
    }
    sendButton.disabled = true;
    try {
      const job = await post("/mass-messages", { org_id: org.value, roles: chosen.includes("everyone") ? "everyone" : chosen, body: body.value });
      body.value = "";
      clearError(alert);
      upsert(job, { prepend: true });
      app.announce("The mass message is queued.");
    } catch (err) {
      showError(alert, err);
    } finally {
      sendButton.disabled = false;
    }
  });

  const el = h(
    "section",
    { class: "page", "data-testid": "mass-page", "aria-labelledby": "mass-title" },
    h("h1", { id: "mass-title" }, "Mass messages"),
    h("p", { class: "hint" }, "One-way messages to the members of your organisations. Recipients cannot reply."),
    form,
    h("h2", null, "Sent"),
    list,
  );

  function row(job) {
    const done = (job.delivered || 0) + (job.skipped || 0) + (job.failed || 0);
    const audience = job.audience || 0;
    const percent = audience ? Math.round((done * 100) / audience) : job.state === "completed" ? 100 : 0;
    const live = job.state === "queued" || job.state === "running";
    return h(
      "li",
      { class: `mass-job job-${job.state}`, "data-testid": "mass-job", "data-id": job.id, "data-state": job.state },
      h(
        "div",
        { class: "mass-head" },
        h("span", { class: "mass-org" }, job.sender ? job.sender.name : ""),
        h("span", { class: "mass-state", "data-testid": "mass-state" }, STATE_LABEL[job.state] || job.state),
        timeEl(job.created_at),
      ),
      h("p", { class: "mass-body" }, job.body),
      h(
        "div",
        { class: "mass-progress-row" },
        h("progress", { "data-testid": "mass-progress", max: String(Math.max(audience, 1)), value: String(Math.min(done, Math.max(audience, 1))), "aria-label": "Delivery progress" }),
        h("span", { class: "mass-percent", "data-testid": "mass-percent" }, `${percent} %`),
      ),
      h(
        "p",
        { class: "mass-counts", "data-testid": "mass-counts" },
        `${job.delivered || 0} delivered, ${job.skipped || 0} skipped, ${job.failed || 0} failed, of ${audience}`,
      ),
      live ? h("button", { type: "button", class: "btn", onclick: () => cancel(job) }, "Cancel") : null,
    );
  }

  const RANK = { queued: 0, running: 1 };
  const progressOf = (job) => [RANK[job.state] ?? 2, (job.delivered || 0) + (job.skipped || 0) + (job.failed || 0)];
  const jobs = new Map();

  function upsert(job, { prepend = false } = {}) {
    // An answer and a progress event can cross: never go back to an earlier state of a job.
    const known = jobs.get(job.id);
    if (known) {
      const [a, b] = [progressOf(known), progressOf(job)];
      if (b[0] < a[0] || (b[0] === a[0] && b[1] < a[1])) return;
    }
    jobs.set(job.id, job);
    const old = rows.get(job.id);
    const li = row(job);
    if (old) old.replaceWith(li);
    else if (prepend) list.prepend(li);
    else list.insertBefore(li, sentinel);
    rows.set(job.id, li);
    list.querySelector(".empty")?.remove();
  }

  async function cancel(job) {
    try {
      upsert(await post(`/mass-messages/${encodeURIComponent(job.id)}/cancel`, {}));
    } catch (e) {
      showError(alert, e);
    }
  }

  async function loadJobs(reset) {
    if (loading || (!reset && !cursor)) return;
    loading = true;
    try {
      const page = await get("/mass-messages", { cursor: reset ? undefined : cursor });
      cursor = page.next_cursor;
      for (const job of page.items) if (!rows.has(job.id)) upsert(job);
      if (!rows.size && !list.querySelector(".empty")) list.prepend(h("li", { class: "empty" }, "No mass messages yet."));
    } catch (e) {
      showError(alert, e);
    } finally {
      loading = false;
    }
  }

  async function loadOrgs() {
    try {
      const tree = await get("/orgs");
      const orgs = flatten(tree.orgs);
      const mine = new Set(app.me.org_ids || []);
      org.replaceChildren(...orgs.map((o) => h("option", { value: o.id, selected: mine.has(o.id) ? true : undefined }, `${"— ".repeat(o.depth)}${o.name}`)));
      const first = orgs.find((o) => mine.has(o.id));
      if (first) org.value = first.id;
    } catch (e) {
      showError(alert, e);
    }
  }

  list.append(sentinel);
  whenVisible(sentinel, null, () => loadJobs(false));
  loadOrgs();
  loadJobs(true);

  return {
    el,
    onEvent(event, data) {
      if (event === "mass_message.progress" && data.job) upsert(data.job, { prepend: !rows.has(data.job.id) });
    },
    destroy() {},
  };
}

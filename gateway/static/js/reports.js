// Reports (F23): staff see the reports sent to them and resolve them; reporters see their own
// and may withdraw them. Live from `report.created` and `report.updated`.

import { get, post } from "./api.js";
import { h, timeEl, whenVisible } from "./dom.js";
import { TYPE_LABEL } from "./present.js";
import { alertBox, clearError, field, openDialog, showError } from "./ui.js";

const STATE_LABEL = { open: "Open", resolved: "Resolved", withdrawn: "Withdrawn" };

export function reportsPage(app) {
  const staff = app.isStaff();
  const alert = alertBox({ "data-testid": "reports-alert" });
  const filter = h(
    "select",
    { "data-testid": "report-filter" },
    ["open", "all", "resolved", "withdrawn"].map((s) => h("option", { value: s }, s === "all" ? "All" : STATE_LABEL[s])),
  );
  const list = h("ul", { class: "report-list", "data-testid": "report-list", "aria-label": "Reports" });
  const sentinel = h("li", { class: "sentinel", "aria-hidden": "true" });
  const rows = new Map();
  let cursor = null;
  let loading = false;

  const el = h(
    "section",
    { class: "page", "data-testid": "reports-page", "aria-labelledby": "reports-title" },
    h("h1", { id: "reports-title" }, staff ? "Reports" : "Your reports"),
    h("p", { class: "hint" }, staff ? "Abuse reports sent to you, and any you made." : "The abuse reports you made. You can withdraw an open report."),
    h("div", { class: "toolbar" }, field("Show", filter)),
    alert,
    list,
  );

  const matches = (report) => filter.value === "all" || report.state === filter.value;

  function row(report) {
    const mineToHandle = (report.recipients || []).some((r) => r.user_id === app.me.id);
    const mineAsReporter = report.reporter && report.reporter.id === app.me.id;
    const kind = report.kind === "safeguarding" ? "Safeguarding flag" : report.message_id ? "Message" : "Conversation";
    const actions = h("div", { class: "report-actions" });
    if (report.conversation_id && report.state === "open") {
      actions.append(h("button", { type: "button", class: "btn", onclick: () => app.openConversation(report.conversation_id, { highlight: report.message_id }) }, "Open conversation"));
    }
    if (mineToHandle && report.state === "open") {
      actions.append(h("button", { type: "button", class: "btn btn-green", onclick: () => resolve(report) }, "Resolve"));
    }
    if (mineAsReporter && report.state === "open") {
      actions.append(h("button", { type: "button", class: "btn", onclick: () => withdraw(report) }, "Withdraw"));
    }
    return h(
      "li",
      { class: `report report-${report.state}`, "data-testid": "report", "data-id": report.id, "data-state": report.state },
      h(
        "div",
        { class: "report-head" },
        h("span", { class: "report-kind", "data-testid": "report-kind" }, kind),
        h("span", { class: `report-state state-${report.state}`, "data-testid": "report-state" }, STATE_LABEL[report.state] || report.state),
        timeEl(report.created_at),
      ),
      h(
        "dl",
        { class: "report-facts" },
        report.subject ? [h("dt", null, "About"), h("dd", null, report.subject.name)] : null,
        [h("dt", null, "Reported by"), h("dd", null, report.reporter ? report.reporter.name : "Automatic flag")],
        [h("dt", null, "Sent to"), h("dd", null, (report.recipients || []).map((r) => r.name).join(", "))],
        report.conversation_type ? [h("dt", null, "Conversation"), h("dd", null, TYPE_LABEL[report.conversation_type] || report.conversation_type)] : null,
        report.matched && report.matched.length ? [h("dt", null, "Matched"), h("dd", null, report.matched.join(", "))] : null,
      ),
      report.reason ? h("p", { class: "report-reason", "data-testid": "report-reason" }, report.reason) : null,
      report.note ? h("p", { class: "report-note" }, `Note: ${report.note}`) : null,
      actions,
    );
  }

  function upsert(report, { prepend = false } = {}) {
    const old = rows.get(report.id);
    if (!matches(report)) {
      if (old) old.remove();
      rows.delete(report.id);
      return;
    }
    const li = row(report);
    if (old) old.replaceWith(li);
    else if (prepend) list.prepend(li);
    else list.insertBefore(li, sentinel);
    rows.set(report.id, li);
    list.querySelector(".empty")?.remove();
  }

  async function load(reset) {
    if (loading || (!reset && !cursor)) return;
    loading = true;
    try {
      const page = await get("/reports", { state: filter.value, cursor: reset ? undefined : cursor });
      if (reset) {
        rows.clear();
        list.replaceChildren(sentinel);
      }
      cursor = page.next_cursor;
      for (const report of page.items) upsert(report);
      if (!rows.size) list.prepend(h("li", { class: "empty" }, "No reports."));
      clearError(alert);
    } catch (e) {
      showError(alert, e);
    } finally {
      loading = false;
    }
  }

  function resolve(report) {
    const note = h("textarea", { rows: "3", maxlength: "20000", "data-testid": "resolve-note" });
    openDialog({
      title: "Resolve report",
      testid: "resolve-dialog",
      content: [field("Note (optional)", note)],
      actions: [
        { label: "Cancel" },
        {
          label: "Resolve",
          primary: true,
          onClick: async () => upsert(await post(`/reports/${encodeURIComponent(report.id)}/resolve`, note.value.trim() ? { note: note.value.trim() } : {})),
        },
      ],
    });
  }

  async function withdraw(report) {
    try {
      upsert(await post(`/reports/${encodeURIComponent(report.id)}/withdraw`, {}));
    } catch (e) {
      showError(alert, e);
    }
  }

  filter.addEventListener("change", () => load(true));
  list.append(sentinel);
  whenVisible(sentinel, null, () => load(false));
  load(true);

  return {
    el,
    onEvent(event, data) {
      if (event === "report.created") upsert(data.report, { prepend: true });
      if (event === "report.updated") upsert(data.report);
    },
    destroy() {},
  };
}

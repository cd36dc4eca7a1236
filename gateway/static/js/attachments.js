// Files: the composer's "Attach files" control with upload progress, and attachments shown in messages.

import { download, upload } from "./api.js";
import { fileSize, h, icon } from "./dom.js";
import { showError } from "./ui.js";

/**
 * The paperclip: a file input labelled "Attach files" (several files), each file uploaded at once
 * with a <progress data-testid="upload-progress">. `ids()` gives the uploaded attachment ids,
 * `pending()` resolves when every upload has finished.
 */
export function attachmentTray({ alert }) {
  const uploads = []; // {file, promise, attachment, row}
  let failures = 0;
  const input = h("input", { type: "file", multiple: true, class: "file-input", "aria-label": "Attach files" });
  const picker = h("label", { class: "icon-btn attach", title: "Attach files" }, input, icon("clip"));
  const list = h("ul", { class: "upload-list", "data-testid": "upload-list", "aria-label": "Attached files" });

  input.addEventListener("change", () => {
    for (const file of input.files) start(file);
    input.value = ""; // the same file may be chosen again
  });

  function start(file) {
    const progress = h("progress", { max: String(file.size || 1), value: "0", "data-testid": "upload-progress", "aria-label": `Uploading ${file.name}` });
    const remove = h("button", { type: "button", class: "chip-remove", "aria-label": `Remove ${file.name}`, title: "Remove" }, icon("close"));
    const row = h(
      "li",
      { class: "upload", "data-testid": "upload" },
      icon("file"),
      h("span", { class: "upload-name" }, file.name),
      h("span", { class: "upload-size" }, fileSize(file.size)),
      progress,
      remove,
    );
    list.append(row);
    const entry = { file, row, attachment: null, failed: false };
    entry.promise = upload(file, (loaded, total) => {
      progress.max = total;
      progress.value = loaded;
    })
      .then((attachment) => {
        entry.attachment = attachment;
        progress.value = progress.max;
        progress.hidden = true;
        row.classList.add("done");
      })
      .catch((error) => {
        entry.failed = true;
        if (error.code !== "aborted") failures += 1;
        row.remove();
        const at = uploads.indexOf(entry);
        if (at >= 0) uploads.splice(at, 1);
        if (error.code !== "aborted") showError(alert, error); // e.g. "Sorry, you can't send x.exe"
      });
    remove.addEventListener("click", () => {
      entry.promise.abort?.();
      const at = uploads.indexOf(entry);
      if (at >= 0) uploads.splice(at, 1);
      row.remove();
    });
    uploads.push(entry);
  }

  return {
    picker,
    list,
    input,
    busy: () => uploads.some((u) => !u.attachment && !u.failed),
    failures: () => failures,
    pending: () => Promise.all(uploads.map((u) => u.promise)),
    ids: () => uploads.filter((u) => u.attachment).map((u) => u.attachment.id),
    count: () => uploads.length,
    clear() {
      uploads.length = 0;
      list.replaceChildren();
    },
    setDisabled(disabled) {
      input.disabled = disabled;
      picker.classList.toggle("disabled", disabled);
    },
  };
}

/** A message's files: icon, name, size and a download link (fetched with the token). */
export function attachmentList(attachments, alert) {
  if (!attachments || !attachments.length) return null;
  return h(
    "ul",
    { class: "attachments", "aria-label": "Files" },
    attachments.map((a) => {
      const link = h(
        "a",
        { href: `/api/v1/attachments/${encodeURIComponent(a.id)}`, class: "attachment-link", "data-testid": "attachment-download", download: a.name },
        icon("download"),
        h("span", { class: "sr-only" }, `Download ${a.name}`),
      );
      link.addEventListener("click", async (e) => {
        e.preventDefault();
        try {
          await download(a);
        } catch (error) {
          showError(alert, error);
        }
      });
      return h(
        "li",
        { class: "attachment", "data-testid": "attachment", "data-id": a.id },
        icon("file"),
        h("span", { class: "attachment-name", "data-testid": "attachment-name" }, a.name),
        h("span", { class: "attachment-size" }, fileSize(a.size)),
        link,
      );
    }),
  );
}

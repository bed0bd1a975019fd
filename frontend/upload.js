// Upload page: pick or drop many cell images or field photographs (or a ZIP), preview, remove, confirm; then
// upload with a progress bar, list what the server rejected and why, and follow the classification live.
// Without this script the same form posts to the page itself and works (without previews).
// The form says what it uploads: data-field-name (the API's multipart field: "images" or "fields"), data-item
// (the words for one file), data-api-url; every file input marked data-files adds to the one list sent.
// For field photographs, data-item-url (a field page's URL with the id 0) links each accepted field, and
// data-red-cells-needed turns on the running count of red cells examined.
import { csrfToken } from "./csrf.js";
import { progressText, watchClassification } from "./progress.js";

const form = document.getElementById("upload-form");
const fileInputs = form.querySelectorAll("input[data-files]");
const fieldName = form.dataset.fieldName;
const item = form.dataset.item;
const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;
const archiveInput = document.getElementById("upload-archive");
const dropZone = document.getElementById("drop-zone");
const selection = document.getElementById("selection");
const selectionCount = document.getElementById("selection-count");
const previews = document.getElementById("previews");
const confirmButton = document.getElementById("upload-confirm");
const progressWrap = document.getElementById("upload-progress-wrap");
const progressBar = document.getElementById("upload-progress");
const status = document.getElementById("upload-status");
const result = document.getElementById("upload-result");
const resultBody = document.getElementById("upload-result-body");
const maxFiles = Number(form.dataset.maxFiles);

let chosen = []; // { file, url }
let archive = null;

const isZip = (file) => /\.zip$/i.test(file.name) || file.type === "application/zip" || file.type === "application/x-zip-compressed";
const sameFile = (a, b) => a.name === b.name && a.size === b.size && a.lastModified === b.lastModified;

function say(message) {
  status.textContent = message;
}

function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function addFiles(files) {
  for (const file of files) {
    if (isZip(file)) {
      archive = file;
    } else if (!chosen.some((entry) => sameFile(entry.file, file))) {
      // Browsers cannot show TIFF: those are listed without a preview.
      chosen.push({ file, url: /^image\/(png|jpeg|gif|webp|bmp)$/.test(file.type) ? URL.createObjectURL(file) : null });
    }
  }
  render();
}

function remove(entry) {
  if (entry.url) URL.revokeObjectURL(entry.url);
  chosen = chosen.filter((other) => other !== entry);
  render();
  say(`Removed ${entry.file.name}.`);
}

function render() {
  previews.replaceChildren();
  for (const entry of chosen) {
    const image = entry.url
      ? element("img", { src: entry.url, alt: "", width: 96, height: 96 })
      : element("span", { className: "muted", textContent: "No preview" });
    const button = element("button", { type: "button", textContent: "Remove" });
    button.setAttribute("aria-label", `Remove ${entry.file.name}`);
    button.addEventListener("click", () => remove(entry));
    previews.append(element("li", { className: "cell" }, image, element("span", { className: "cell-name", textContent: entry.file.name }), button));
  }
  if (archive) {
    const button = element("button", { type: "button", textContent: "Remove" });
    button.setAttribute("aria-label", `Remove ${archive.name}`);
    button.addEventListener("click", () => {
      archive = null;
      archiveInput.value = "";
      render();
    });
    previews.append(element("li", { className: "cell" }, element("span", { textContent: "ZIP archive" }), element("span", { className: "cell-name", textContent: archive.name }), button));
  }
  const count = chosen.length + (archive ? 1 : 0);
  selection.hidden = count === 0;
  selectionCount.textContent = `${plural(chosen.length, item)}${archive ? " and 1 ZIP archive" : ""}`;
  confirmButton.textContent = count ? `Upload ${selectionCount.textContent}` : "Upload";
  confirmButton.disabled = count === 0;
}

for (const input of fileInputs) {
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = ""; // the list above is what is sent; picking again (or another photograph) adds to it
  });
}
archiveInput.addEventListener("change", () => {
  archive = archiveInput.files[0] || null;
  render();
});

for (const type of ["dragenter", "dragover"]) {
  dropZone.addEventListener(type, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
for (const type of ["dragleave", "drop"]) {
  dropZone.addEventListener(type, () => dropZone.classList.remove("dragging"));
}
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  addFiles(event.dataTransfer.files);
});

function showOutcome(body) {
  const accepted = body.accepted || [];
  const rejected = body.rejected || [];
  const queued = form.dataset.itemUrl ? "accepted and queued: their red cells are found, then classified" : "accepted and queued for classification";
  const parts = [element("p", {}, `${plural(accepted.length, item)} ${queued}; ${rejected.length} rejected.`)];
  if (form.dataset.itemUrl && accepted.length) {
    const pageOf = (id) => form.dataset.itemUrl.replace(/0$/, String(id));
    parts.push(element("ul", { className: "accepted" }, ...accepted.map((one) => element("li", {}, element("a", { href: pageOf(one.id), textContent: `Field ${one.filename}` })))));
  }
  if (rejected.length) {
    parts.push(element("h3", { textContent: "Rejected files" }));
    parts.push(
      element(
        "ul",
        { className: "rejected" },
        ...rejected.map((item) => element("li", {}, element("span", { className: "filename", textContent: item.filename }), `: ${item.error}`)),
      ),
    );
  }
  if (body.detail) parts.push(element("p", { className: "error", textContent: body.detail }));
  resultBody.replaceChildren(...parts);
  result.hidden = false;
}

function follow() {
  const bar = element("progress", { max: 1, value: 0 });
  bar.setAttribute("aria-label", "Classification progress");
  const text = element("p");
  const link = element("a", { href: form.dataset.sampleUrl, className: "button primary", textContent: "See the sample's results" });
  link.hidden = true;
  resultBody.append(element("h3", { textContent: "Classification" }), bar, text, link);
  watchClassification(form.dataset.sampleApiUrl, (sample, error) => {
    if (!sample) {
      text.textContent = `Progress cannot be fetched (${error.message}).`;
      link.hidden = false;
      return false;
    }
    bar.max = sample.counts.total || 1;
    bar.value = sample.counts.classified + sample.counts.failed;
    text.textContent = progressText(sample);
    showRedCells(sample.counts.classified);
    if (sample.status === "processing") return true;
    say("Classification complete.");
    link.hidden = false;
    return false;
  });
}

// The running count of red cells examined against the number a result needs (field photographs).
const redCells = document.getElementById("red-cell-count");
function showRedCells(classified) {
  if (!redCells) return;
  const needed = Number(redCells.dataset.redCellsNeeded);
  redCells.querySelector("[data-count='classified']").textContent = String(classified);
  redCells.querySelector("[data-enough]").textContent = classified >= needed ? "Enough." : "Photograph more fields.";
  redCells.classList.toggle("reached", classified >= needed);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!chosen.length && !archive) {
    say(`Choose ${item}s, or a ZIP archive of them, to upload.`);
    return;
  }
  if (chosen.length > maxFiles) {
    say(`That is ${plural(chosen.length, item)}; at most ${maxFiles} go in one upload. Remove some and upload the rest after.`);
    return;
  }
  const data = new FormData();
  for (const entry of chosen) data.append(fieldName, entry.file, entry.file.name);
  if (archive) data.append("archive", archive, archive.name);

  const request = new XMLHttpRequest();
  request.open("POST", form.dataset.apiUrl);
  request.setRequestHeader("X-CSRFToken", csrfToken());
  request.setRequestHeader("Accept", "application/json");
  request.upload.addEventListener("progress", (progress) => {
    if (progress.lengthComputable) progressBar.value = (100 * progress.loaded) / progress.total;
  });
  request.addEventListener("load", () => {
    progressWrap.hidden = true;
    confirmButton.disabled = false;
    let body = {};
    try {
      body = JSON.parse(request.responseText);
    } catch {
      body = { detail: `The server answered HTTP ${request.status}.` };
    }
    if (request.status === 202 || (request.status === 400 && (body.accepted || body.rejected))) {
      for (const entry of chosen) if (entry.url) URL.revokeObjectURL(entry.url);
      chosen = [];
      archive = null;
      archiveInput.value = "";
      render();
      showOutcome(body);
      say(request.status === 202 ? "Upload done; classifying." : "Nothing was accepted.");
      if ((body.accepted || []).length) follow();
    } else {
      showOutcome({ detail: body.detail || `The upload failed (HTTP ${request.status}).` });
      say("The upload failed.");
    }
  });
  request.addEventListener("error", () => {
    progressWrap.hidden = true;
    confirmButton.disabled = false;
    say("The upload failed: the connection was lost. Try again.");
  });
  confirmButton.disabled = true;
  progressBar.value = 0;
  progressWrap.hidden = false;
  say(`Uploading ${chosen.length + (archive ? 1 : 0)} file(s)…`);
  request.send(data);
});

render();

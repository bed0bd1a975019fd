// Upload page: pick or drop many cell images (or a ZIP), preview, remove, confirm; then upload with a
// progress bar, list what the server rejected and why, and follow the classification live.
// Without this script the same form posts to the page itself and works (without previews).
import { csrfToken } from "./csrf.js";
import { progressText, watchClassification } from "./progress.js";

const form = document.getElementById("upload-form");
const imagesInput = document.getElementById("upload-images");
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
      chosen.push({ file, url: file.type.startsWith("image/") ? URL.createObjectURL(file) : null });
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
  selectionCount.textContent = `${chosen.length} image${chosen.length === 1 ? "" : "s"}${archive ? " and 1 ZIP archive" : ""}`;
  confirmButton.textContent = count ? `Upload ${selectionCount.textContent}` : "Upload";
  confirmButton.disabled = count === 0;
}

imagesInput.addEventListener("change", () => {
  addFiles(imagesInput.files);
  imagesInput.value = ""; // the list above is what is sent; picking again adds to it
});
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
  const parts = [element("p", {}, `${accepted.length} cell image${accepted.length === 1 ? "" : "s"} accepted and queued for classification; ${rejected.length} rejected.`)];
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
    if (sample.status === "processing") return true;
    say("Classification complete.");
    link.hidden = false;
    return false;
  });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!chosen.length && !archive) {
    say("Choose cell images, or a ZIP archive of them, to upload.");
    return;
  }
  if (chosen.length > maxFiles) {
    say(`That is ${chosen.length} images; at most ${maxFiles} go in one upload. Remove some and upload the rest after.`);
    return;
  }
  const data = new FormData();
  for (const entry of chosen) data.append("images", entry.file, entry.file.name);
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

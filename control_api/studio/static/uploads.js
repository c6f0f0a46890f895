// Resumable uploads with tus-js-client: progress, pause/resume, and resume after a
// reload (tus-js-client remembers each file's upload URL in localStorage; dropping the
// same file again continues where the server's offset says).
import * as api from "./api.js";
import { bytes, h } from "./ui.js";

export const CHUNK_BYTES = 1024 * 1024;

export function startUpload(file, folderId, list, onDone) {
  const bar = h("progress", { max: 100, value: 0, "aria-label": `Upload of ${file.name}` });
  const status = h("span", { class: "up-status" }, "starting…");
  const toggle = h("button", { type: "button", class: "small" }, "Pause");
  const item = h("li", { class: "upload", dataset: { name: file.name } },
    h("span", { class: "up-name" }, file.name), bar, status, toggle);
  list.prepend(item);
  const metadata = { filename: file.name };
  if (folderId) metadata.folderId = folderId;
  let running = false;
  let resumed = false;
  let resumedFrom = null;
  const upload = new window.tus.Upload(file, {
    endpoint: "/v1/uploads",
    headers: { Authorization: `Bearer ${api.secret()}` },
    chunkSize: CHUNK_BYTES,
    retryDelays: [0, 1000, 2000],
    metadata,
    removeFingerprintOnSuccess: true,
    onProgress(sent, total) {
      if (resumed && resumedFrom === null) resumedFrom = sent;
      const pct = total ? (sent / total) * 100 : 0;
      bar.value = pct;
      const note = resumedFrom !== null ? ` (resumed at ${bytes(resumedFrom)})` : "";
      status.textContent = `${pct.toFixed(0)} % of ${bytes(total)}${note}`;
    },
    onError(err) {
      running = false;
      toggle.textContent = "Resume";
      item.dataset.state = "error";
      // The server's problem detail when it refused; otherwise the network failed.
      const body = err.originalResponse ? err.originalResponse.getBody() : "";
      let message = `the connection failed at ${bar.value.toFixed(0)} %`;
      try {
        message = JSON.parse(body).detail || message;
      } catch {
        if (body) message = body;
      }
      status.textContent = `Interrupted: ${message}. Resume, or drop the file again later.`;
    },
    onSuccess() {
      running = false;
      bar.value = 100;
      item.dataset.state = "done";
      status.textContent = "Uploaded (its card below shows the processing)";
      toggle.remove();
      onDone();
    },
  });
  const start = () => {
    running = true;
    item.dataset.state = "uploading";
    toggle.textContent = "Pause";
    upload.start();
  };
  toggle.addEventListener("click", () => {
    if (running) {
      upload.abort();
      running = false;
      item.dataset.state = "paused";
      toggle.textContent = "Resume";
      status.textContent = `Paused at ${bar.value.toFixed(0)} %`;
    } else {
      start();
    }
  });
  upload.findPreviousUploads().then((previous) => {
    if (previous.length) {
      upload.resumeFromPreviousUpload(previous[0]);
      item.dataset.resumed = "true";
      // The server's offset (HEAD) decides where it continues; shown on first progress.
      resumed = true;
      status.textContent = "resuming an earlier upload of this file…";
    }
    start();
  });
  return item;
}

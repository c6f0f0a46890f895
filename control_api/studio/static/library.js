// The media library: folders, tags, drag-and-drop uploads, import from URL, preview.
import * as api from "./api.js";
import { startUpload } from "./uploads.js";
import {
  act, badge, bytes, confirmDialog, field, formError, h, mount, notice, poll, select, when,
} from "./ui.js";

const state = { folderId: "", tag: "" };

function folderPath(folders, folder) {
  const byId = new Map(folders.map((f) => [f.folderId, f]));
  const names = [];
  for (let f = folder, guard = 0; f && guard < 32; f = byId.get(f.parentId), guard += 1) names.unshift(f.name);
  return names.join(" / ");
}

function folderOptions(folders, rootLabel = "Library root") {
  return [["", rootLabel], ...folders.map((f) => [f.folderId, folderPath(folders, f)])
    .sort((a, b) => a[1].localeCompare(b[1]))];
}

async function playable(item) {
  let query = "";
  if (item.playbackPolicy === "private") {
    const minted = await api.post(`/v1/media/${item.mediaId}/playback-tokens`, { expiresInSeconds: 3600 });
    query = `?token=${encodeURIComponent(minted.token)}`;
  }
  return { hls: item.playback.hlsUrl + query, mp4: item.playback.mp4Url ? item.playback.mp4Url + query : null };
}

async function previewInto(box, item) {
  const urls = await playable(item);
  const video = h("video", { controls: true, muted: true, playsinline: true, class: "media-preview" });
  video.muted = true;
  box.replaceChildren(video);
  if (window.Hls && window.Hls.isSupported()) {
    const hls = new window.Hls();
    hls.loadSource(urls.hls);
    hls.attachMedia(video);
    window.addEventListener("hashchange", () => hls.destroy(), { once: true });
  } else {
    video.src = urls.mp4 || urls.hls;
  }
  video.play().catch(() => {});
}

function mediaCard(item, folders, refresh) {
  const previewBox = h("div", { class: "preview-box" });
  const tagsInput = h("input", { name: "tags", value: item.tags.join(", "), "aria-label": `Tags of ${item.name}`, placeholder: "tags, comma-separated" });
  const nameInput = h("input", { name: "name", value: item.name, "aria-label": `Name of ${item.name}` });
  const move = select("folderId", folderOptions(folders), item.folderId || "");
  move.setAttribute("aria-label", `Folder of ${item.name}`);
  const save = h("button", { type: "submit", class: "small" }, "Save");
  const form = h("form", { class: "media-edit" },
    h("div", { class: "field", dataset: { field: "name" } }, nameInput, h("div", { class: "field-error", role: "alert" })),
    h("div", { class: "field", dataset: { field: "tags" } }, tagsInput, h("div", { class: "field-error", role: "alert" })),
    h("div", { class: "field", dataset: { field: "folderId" } }, move, h("div", { class: "field-error", role: "alert" })),
    formError(), save);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(save, form, async () => {
      await api.patch(`/v1/media/${item.mediaId}`, {
        name: nameInput.value,
        tags: tagsInput.value.split(",").map((t) => t.trim()).filter(Boolean),
        folderId: move.value || null,
      });
      notice(`Saved ${nameInput.value}`);
      await refresh(true);
    });
  });
  const facts = [bytes(item.sizeBytes)];
  if (item.durationSeconds) facts.push(`${item.durationSeconds.toFixed(1)} s`);
  if (item.video) facts.push(`${item.video.codec} ${item.video.width}×${item.video.height}`);
  if (item.audio) facts.push(item.audio.codec);
  return h("li", { class: "media card", dataset: { mediaId: item.mediaId, status: item.status, name: item.name } },
    h("div", { class: "media-head" }, h("strong", {}, item.name), " ", badge(item.status),
      h("span", { class: "muted" }, ` ${item.source}, ${item.playbackPolicy}`)),
    h("div", { class: "muted" }, facts.join(" · "), ` · ${when(item.createdAt)}`),
    item.error ? h("div", { class: "last-error" }, item.error) : null,
    item.tags.length ? h("div", { class: "tags" }, item.tags.map((t) => h("span", { class: "tag" }, t))) : null,
    form,
    h("div", { class: "row" },
      item.status === "ready" && item.playback
        ? h("button", { type: "button", class: "small", onclick: (e) => act(e.target, null, () => previewInto(previewBox, item)) }, "Preview")
        : null,
      h("button", { type: "button", class: "small danger", onclick: async (e) => {
        if (!(await confirmDialog(`Delete "${item.name}" and its file?`))) return;
        await act(e.target, null, async () => { await api.del(`/v1/media/${item.mediaId}`); await refresh(true); });
      } }, "Delete")),
    previewBox);
}

function dropZone(onFiles) {
  const input = h("input", { type: "file", multiple: true, id: "file-input", class: "visually-hidden" });
  input.addEventListener("change", () => { onFiles([...input.files]); input.value = ""; });
  const zone = h("div", { class: "drop", id: "drop-zone" },
    h("p", {}, "Drop video files here, or "),
    h("label", { for: "file-input", class: "button", tabindex: 0,
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } } }, "choose files…"),
    input);
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFiles([...e.dataTransfer.files]);
  });
  return zone;
}

function importForm(onDone) {
  const button = h("button", { type: "submit" }, "Import");
  const progress = h("div", { id: "import-progress" });
  const form = h("form", { class: "card", "aria-label": "Import from URL" },
    h("h2", {}, "Import from a URL"),
    h("div", { class: "grid" },
      field("URL", h("input", { name: "url", type: "url", required: true, placeholder: "https://example.com/video.mp4" })),
      field("Name", h("input", { name: "name" }))),
    formError(), button, progress);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = form.elements;
    act(button, form, async () => {
      const body = { url: f.url.value };
      if (f.name.value) body.name = f.name.value;
      if (state.folderId) body.folderId = state.folderId;
      let task = await api.post("/v1/media/import", body);
      form.reset();
      const bar = h("progress", { max: 1, value: 0, "aria-label": "Import progress" });
      const text = h("span", {}, "pending");
      progress.replaceChildren(bar, text);
      while (task.status === "pending" || task.status === "running") {
        await new Promise((r) => setTimeout(r, 1000));
        task = await api.get(`/v1/tasks/${task.taskId}`);
        bar.value = task.progress;
        text.textContent = ` ${task.status} ${(task.progress * 100).toFixed(0)} %`;
      }
      text.textContent = task.status === "done" ? " imported" : ` failed: ${task.error}`;
      onDone();
    });
  });
  return form;
}

function foldersPanel(folders, tags, refresh) {
  const pick = (id) => { state.folderId = id; refresh(true); };
  const items = [["", "All media"], ...folderOptions(folders).slice(1)].map(([id, label]) =>
    h("li", {}, h("button", { type: "button", class: "link", "aria-pressed": String(state.folderId === id),
      onclick: () => pick(id) }, label)));
  const create = h("button", { type: "submit", class: "small" }, "Create folder");
  const createForm = h("form", { "aria-label": "New folder" },
    field("New folder", h("input", { name: "name", required: true })), formError(), create);
  createForm.addEventListener("submit", (event) => {
    event.preventDefault();
    act(create, createForm, async () => {
      const body = { name: createForm.elements.name.value };
      if (state.folderId) body.parentId = state.folderId;
      await api.post("/v1/folders", body);
      await refresh(true);
    });
  });
  const current = folders.find((f) => f.folderId === state.folderId);
  let editForm = null;
  if (current) {
    const save = h("button", { type: "submit", class: "small" }, "Rename / move");
    const parent = select("parentId", folderOptions(folders.filter((f) => f.folderId !== current.folderId)), current.parentId || "");
    editForm = h("form", { "aria-label": "This folder" },
      field("Folder name", h("input", { name: "name", value: current.name, required: true })),
      field("Inside", parent), formError(), save,
      h("button", { type: "button", class: "small danger", onclick: async (e) => {
        if (!(await confirmDialog(`Delete the folder "${current.name}"? It must be empty.`))) return;
        await act(e.target, editForm, async () => { await api.del(`/v1/folders/${current.folderId}`); state.folderId = ""; await refresh(true); });
      } }, "Delete folder"));
    editForm.addEventListener("submit", (event) => {
      event.preventDefault();
      act(save, editForm, async () => {
        await api.patch(`/v1/folders/${current.folderId}`, { name: editForm.elements.name.value, parentId: parent.value || null });
        await refresh(true);
      });
    });
  }
  const tagFilter = select("tag", [["", "Any tag"], ...tags.map((t) => [t.name, `${t.name} (${t.mediaCount})`])], state.tag);
  tagFilter.addEventListener("change", () => { state.tag = tagFilter.value; refresh(true); });
  return h("aside", { class: "card side", "aria-label": "Folders and tags" },
    h("h2", {}, "Folders"), h("ul", { class: "plain folders" }, items), editForm, createForm,
    h("h2", {}, "Tags"), field("Filter by tag", tagFilter));
}

export async function libraryPage() {
  const side = h("div", {});
  const grid = h("ul", { class: "plain media-grid", id: "media" });
  const uploads = h("ul", { class: "plain uploads", id: "uploads" });
  let lastSeen = "";
  let generation = 0;
  const refresh = async (force = false) => {
    // A poll still in flight when an edit lands must not paint its older answer.
    const mine = ++generation;
    const q = new URLSearchParams({ limit: "100" });
    if (state.folderId) q.set("folderId", state.folderId);
    if (state.tag) q.set("tag", state.tag);
    const [media, folders, tags] = await Promise.all([
      api.get(`/v1/media?${q}`), api.get("/v1/folders?limit=100"), api.get("/v1/tags?limit=100")]);
    if (mine !== generation) return;
    const seen = JSON.stringify([media, folders, tags, state]);
    if (!force && seen === lastSeen) return; // keeps half-typed edits intact
    lastSeen = seen;
    side.replaceChildren(foldersPanel(folders.folders, tags.tags, refresh));
    grid.replaceChildren(...(media.media.length
      ? media.media.map((m) => mediaCard(m, folders.folders, refresh))
      : [h("li", { class: "muted" }, "Nothing here yet: drop files above.")]));
  };
  await refresh(true);
  mount(h("h1", {}, "Media library"),
    h("div", { class: "library" }, side,
      h("div", {},
        dropZone((files) => files.forEach((f) => startUpload(f, state.folderId, uploads, () => refresh(true)))),
        uploads, grid, importForm(() => refresh(true)))));
  poll(3000, () => refresh(false));
}

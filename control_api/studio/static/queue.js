// A channel's queue: the items in play order, reordered by drag and drop (or, from the
// keyboard, with "up" and "down" buttons), removed, and added from the library.
import * as api from "./api.js";
import { allPages } from "./channels.js";
import { act, confirmDialog, field, formError, h, notice, select } from "./ui.js";

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.max(0, Math.floor(seconds));
  const hms = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const text = hms.map((n) => String(n).padStart(2, "0")).join(":");
  return hms[0] ? text : text.slice(3);
}

/** The queue list. `changed()` reloads the page's queue after an edit. */
export function queueSection(streamId, changed) {
  const base = `/v1/live-streams/${streamId}/queue`;
  const list = h("ol", { class: "plain queue", id: "queue", "aria-label": "Queue, in play order" });
  const summary = h("p", { class: "muted", id: "queue-summary" });
  let dragged = null;
  let shown = "";
  let refocus = null; // after a keyboard move, the same button of the same item keeps the focus

  const move = async (button, item, position) => {
    await act(button, null, async () => {
      await api.patch(`${base}/${item.itemId}`, { position });
      await changed();
    });
  };
  const remove = async (button, item) => {
    if (!(await confirmDialog(`Remove "${item.name}" from the queue? The library item stays.`, "Remove"))) return;
    await act(button, null, async () => {
      await api.del(`${base}/${item.itemId}`);
      notice(`Removed ${item.name} from the queue`);
      await changed();
    });
  };

  const row = (item, count, onAir) => {
    const keyMove = (label, to, direction) => h("button", {
      type: "button", class: "small", "aria-label": `Move ${item.name} ${direction}`, disabled: to < 0 || to >= count,
      onclick: (e) => { refocus = [item.itemId, direction]; move(e.currentTarget, item, to); },
    }, label);
    const li = h("li", {
      class: `queue-item${onAir ? " on-air" : ""}`, draggable: "true",
      dataset: { itemId: item.itemId, mediaId: item.mediaId, position: item.position, name: item.name },
    },
    h("span", { class: "handle", "aria-hidden": "true", title: "Drag to reorder" }, "⠿"),
    h("span", { class: "pos" }, `${item.position + 1}.`),
    h("span", { class: "q-name" }, item.name, onAir ? h("span", { class: "badge live" }, "on air") : null),
    h("span", { class: "muted q-dur" }, duration(item.durationSeconds)),
    h("span", { class: "row q-actions" },
      keyMove("↑", item.position - 1, "up"), keyMove("↓", item.position + 1, "down"),
      h("button", { type: "button", class: "small danger", "aria-label": `Remove ${item.name}`,
        onclick: (e) => remove(e.currentTarget, item) }, "Remove")));
    li.addEventListener("dragstart", (e) => {
      dragged = item;
      e.dataTransfer.effectAllowed = "move";
      e.dataTransfer.setData("text/plain", item.itemId);
      li.classList.add("dragging");
    });
    li.addEventListener("dragend", () => {
      dragged = null;
      for (const el of list.querySelectorAll(".dragging, .over")) el.classList.remove("dragging", "over");
    });
    li.addEventListener("dragover", (e) => {
      if (!dragged || dragged.itemId === item.itemId) return;
      e.preventDefault(); // accepting the drop
      e.dataTransfer.dropEffect = "move";
      li.classList.add("over");
    });
    li.addEventListener("dragleave", () => li.classList.remove("over"));
    li.addEventListener("drop", (e) => {
      e.preventDefault();
      li.classList.remove("over");
      const from = dragged;
      dragged = null;
      // The dragged item takes the place of the one it was dropped on; the others close up.
      if (from && from.itemId !== item.itemId) move(null, from, item.position);
    });
    return li;
  };

  /** Paint the queue; a poll that brings nothing new leaves the list (and a drag) alone. */
  const render = (items, nowPlaying) => {
    const onAirId = nowPlaying ? nowPlaying.itemId : null;
    const seen = JSON.stringify([items, onAirId]);
    if (seen === shown || dragged) return;
    shown = seen;
    list.replaceChildren(...(items.length
      ? items.map((item) => row(item, items.length, item.itemId === onAirId))
      : [h("li", { class: "muted" }, "The queue is empty: add items from the library below.")]));
    const total = items.reduce((sum, i) => sum + (i.durationSeconds || 0), 0);
    summary.textContent = `${items.length} item${items.length === 1 ? "" : "s"}, ${duration(total)} in all. `
      + "Drag an item to reorder; changes apply at the next item boundary.";
    if (refocus) {
      const [itemId, direction] = refocus;
      refocus = null;
      const buttons = [...list.querySelectorAll(`li[data-item-id="${CSS.escape(itemId)}"] .q-actions button`)];
      // The same way if it is still possible, else the other (the item reached an end).
      const target = buttons.find((b) => b.getAttribute("aria-label").endsWith(` ${direction}`) && !b.disabled)
        || buttons.find((b) => !b.disabled);
      if (target) target.focus();
    }
  };
  return { list, summary, render };
}

/** The form that queues ready library items (at the end, or next after the one on air). */
export function addFromLibrary(streamId, current, changed) {
  const picker = h("select", { name: "mediaId", required: true });
  const where = select("where", [["end", "At the end"], ["next", "Next, after the item on air"]], "end");
  const button = h("button", { type: "submit" }, "Add to queue");
  const reload = h("button", { type: "button", class: "small" }, "Reload library");
  const form = h("form", { "aria-label": "Add from the library" },
    h("h3", {}, "Add from the library"),
    h("div", { class: "grid" }, field("Library item", picker, "Ready items only"), field("Where", where)),
    formError(), h("div", { class: "row" }, button, reload));
  const load = async () => {
    const ready = (await allPages("/v1/media", "media")).filter((m) => m.status === "ready");
    const chosen = picker.value;
    picker.replaceChildren(...(ready.length
      ? ready.map((m) => h("option", { value: m.mediaId, selected: m.mediaId === chosen },
        `${m.name} (${duration(m.durationSeconds)})`))
      : [h("option", { value: "" }, "No ready items: upload some in the library")]));
  };
  reload.addEventListener("click", (e) => act(e.currentTarget, form, load));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(button, form, async () => {
      const body = { mediaId: picker.value };
      const { items, nowPlaying } = current();
      if (where.value === "next" && nowPlaying) {
        const onAir = items.find((i) => i.itemId === nowPlaying.itemId);
        if (onAir) body.position = onAir.position + 1;
      }
      const item = await api.post(`/v1/live-streams/${streamId}/queue`, body);
      notice(`Queued ${item.name} at ${item.position + 1}`);
      await changed();
    });
  });
  return { node: form, load };
}

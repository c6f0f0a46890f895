// One channel: start/stop, skip, what is on air with its progress, the preview, the
// queue (reorder, remove, add from the library) and the schedule.
import * as api from "./api.js";
import { allPages } from "./channels.js";
import { livePreview } from "./preview.js";
import { addFromLibrary, duration, queueSection } from "./queue.js";
import { scheduleForm } from "./schedule.js";
import { act, badge, bitrate, confirmDialog, h, mount, notice, poll } from "./ui.js";

/** What is on air; `clock()` gives the latest {np, fetchedAt} so the bar keeps moving
 * between polls without the view being rebuilt. */
function nowPlayingView(stream, items, np, clock) {
  if (!np) {
    let why = "Not playing: press Start, or wait for the schedule.";
    if (!stream.enabled) why = "Stopped: no playout, no takeover by an encoder, no schedule until you start it.";
    else if (stream.state === "error") why = `Not playing: ${stream.errorReason || "playout failed"}.`;
    else if (stream.state === "connecting") why = "Starting…";
    else if (stream.state === "live") why = "An encoder has taken over the output; the queue resumes when it stops.";
    return { node: h("p", { class: "muted", id: "np-idle" }, why), tick: () => {} };
  }
  const item = items.find((i) => i.itemId === np.itemId);
  const name = item ? item.name : np.mediaId;
  const total = item && item.durationSeconds ? item.durationSeconds : null;
  const bar = h("progress", { id: "np-progress", max: total || 1, value: 0, "aria-label": `Progress of ${name}` });
  const time = h("span", { id: "np-time" });
  // Between polls the position moves on with the clock, so the bar does not jump in steps.
  const tick = () => {
    const latest = clock();
    if (!latest.np || latest.np.itemId !== np.itemId) return; // the next paint replaces the view
    const at = latest.np.positionSeconds + (Date.now() - latest.fetchedAt) / 1000;
    const pos = total ? Math.min(at, total) : at;
    bar.value = total ? pos : 0;
    time.textContent = `${duration(pos)} / ${duration(total)}`;
  };
  tick();
  return {
    node: h("div", { id: "np", dataset: { itemId: np.itemId } },
      h("p", {}, h("strong", { id: "np-name" }, name), item ? h("span", { class: "muted" }, ` (item ${item.position + 1})`) : null),
      bar, " ", time),
    tick,
  };
}

function outputFacts(stream) {
  const p = stream.profile || {};
  const rows = [
    ["Output", p.width ? `${p.width}×${p.height}, ${p.fps} fps` : "—"],
    ["Video / audio", `${bitrate(p.videoBitrate)} / ${bitrate(p.audioBitrate)}`],
    ["Renditions", stream.quality],
    ["Playback (HLS)", h("code", {}, stream.playback.hlsUrl)],
  ];
  return h("dl", { class: "facts" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export async function channelPage(id) {
  const base = `/v1/live-streams/${id}`;
  let stream = await api.get(base);
  if (stream.source !== "queue") {
    location.hash = `#/streams/${id}`; // an encoder's stream has its own page
    return;
  }
  let items = [];
  let nowPlaying = null;
  let fetchedAt = Date.now();
  let ticker = null;
  const title = h("h1", {}, stream.name, " ", h("span", { id: "state" }));
  const controls = h("div", { class: "row actions", role: "group", "aria-label": "Channel controls" });
  const onAir = h("div", { id: "now-playing" });
  const player = livePreview(stream);
  const queue = queueSection(id, () => refresh(true));
  const library = addFromLibrary(id, () => ({ items, nowPlaying }), () => refresh(true));

  const action = (label, path, done, extra = {}) => h("button", {
    type: "button", ...extra,
    onclick: (e) => act(e.currentTarget, null, async () => {
      keepFocus = true; // the clicked button is replaced: the focus goes to its successor
      await api.post(path);
      notice(done);
      await refresh(true);
    }),
  }, label);
  const remove = async (button) => {
    if (!(await confirmDialog(`Delete the channel "${stream.name}" and its queue? Library items stay.`))) return;
    await act(button, null, async () => {
      await api.del(base);
      notice("Channel deleted");
      location.hash = "#/channels";
    });
  };
  // Parts are rebuilt only when what they show changed: a button that keeps the
  // keyboard focus is not replaced under it by a poll.
  let painted = "";
  let keepFocus = false;
  const paint = () => {
    const onAirItem = nowPlaying && items.find((i) => i.itemId === nowPlaying.itemId);
    const seen = JSON.stringify([stream.state, stream.enabled, stream.errorReason, nowPlaying && nowPlaying.itemId, onAirItem]);
    queue.render(items, nowPlaying);
    if (seen === painted) return;
    painted = seen;
    title.querySelector("#state").replaceChildren(badge(stream.state),
      stream.enabled ? "" : h("span", { class: "badge disabled" }, "stopped"));
    const buttons = [];
    if (!nowPlaying) buttons.push(action("Start", `${base}/start`, "Started: the queue plays out"));
    if (nowPlaying || stream.enabled) buttons.push(action("Stop", `${base}/stop`, "Stopped"));
    buttons.push(action("Skip", `${base}/queue/skip`, "Skipped to the next item", { disabled: !nowPlaying }));
    buttons.push(h("button", { type: "button", class: "danger", onclick: (e) => remove(e.currentTarget) }, "Delete"),
      h("a", { href: `#/streams/${id}` }, "Sessions, destinations, settings →"));
    const focused = controls.contains(document.activeElement) ? document.activeElement.textContent : null;
    const refocus = keepFocus || focused !== null;
    keepFocus = false;
    controls.replaceChildren(...buttons);
    if (refocus) {
      const enabled = [...controls.querySelectorAll("button:not(:disabled)")];
      (enabled.find((b) => b.textContent === focused) || enabled[0])?.focus();
    }
    const view = nowPlayingView(stream, items, nowPlaying, () => ({ np: nowPlaying, fetchedAt }));
    onAir.replaceChildren(view.node);
    clearInterval(ticker);
    ticker = setInterval(view.tick, 500);
    player.follow(stream.state);
  };
  // The queue (with what is on air) every tick; the stream itself every other tick, or at
  // once when playout began or ended: about 30 requests a minute.
  let ticks = 0;
  const refresh = async (full = false) => {
    const wasOnAir = Boolean(nowPlaying);
    const doc = await api.get(`${base}/queue?limit=100`);
    items = doc.total > doc.items.length ? await allPages(`${base}/queue`, "items") : doc.items;
    nowPlaying = doc.nowPlaying;
    fetchedAt = Date.now();
    ticks += 1;
    if (full || ticks % 2 === 0 || wasOnAir !== Boolean(nowPlaying)) stream = await api.get(base);
    paint();
  };
  window.addEventListener("hashchange", () => clearInterval(ticker), { once: true });

  mount(
    title,
    controls,
    h("div", { class: "two" },
      h("div", {},
        h("section", { class: "card", "aria-label": "Now playing" }, h("h2", {}, "Now playing"), onAir),
        h("section", { class: "card", "aria-label": "Output" }, h("h2", {}, "Output"), outputFacts(stream))),
      player.node),
    h("section", { class: "card", "aria-label": "Queue" }, h("h2", {}, "Queue"), queue.summary, queue.list, library.node),
    scheduleForm(stream, (s) => { stream = s; }),
  );
  await Promise.all([refresh(true), library.load()]);
  poll(3000, () => refresh(false));
}

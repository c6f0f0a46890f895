// Channels (live streams with source "queue"): the list with live state, and the create form.
import * as api from "./api.js";
import { ingestCard } from "./streams.js";
import { act, badge, checkbox, field, formError, h, mount, poll, select } from "./ui.js";

// The API lists at most 100 per page; ten pages bound what one refresh may cost.
const PAGE = 100;
const MAX_PAGES = 10;

/** Every row of a paged list (`plural` names the array), up to MAX_PAGES pages. */
export async function allPages(path, plural) {
  const rows = [];
  const sep = path.includes("?") ? "&" : "?";
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const doc = await api.get(`${path}${sep}limit=${PAGE}&offset=${page * PAGE}`);
    rows.push(...doc[plural]);
    if (rows.length >= doc.total || !doc[plural].length) break;
  }
  return rows;
}

export const RESOLUTIONS = [
  ["", "Configured default"], ["1920x1080", "1920×1080"], ["1280x720", "1280×720"],
  ["854x480", "854×480"], ["640x360", "640×360"], ["320x180", "320×180"],
];

function createForm(onCreated) {
  const button = h("button", { type: "submit" }, "Create channel");
  const form = h("form", { class: "card", "aria-label": "New channel" },
    h("h2", {}, "New channel"),
    h("p", { class: "muted" }, "A channel plays its queue of library items out as a live stream, "
      + "conformed to one output size and frame rate. Add items and a schedule on its page."),
    h("div", { class: "grid" },
      field("Name", h("input", { name: "name", required: true, maxlength: 200 })),
      field("Output size", select("resolution", RESOLUTIONS, "")),
      field("Frame rate", h("input", { name: "fps", type: "number", min: 1, max: 120, placeholder: "default" })),
      field("Video bitrate (kbit/s)", h("input", { name: "videoBitrate", type: "number", min: 100, placeholder: "default" })),
      field("Quality", select("quality", [["passthrough", "Passthrough (output profile only)"],
        ["standard", "Standard (720p/480p/360p)"], ["high", "High (1080p/720p/480p)"]], "passthrough")),
      field("Playback", select("playbackPolicy", [["public", "Public"], ["private", "Private (tokens)"]], "public"))),
    h("div", { class: "row" }, checkbox("loop", "Loop: start the queue again after its last item", true),
      checkbox("recording", "Record every session")),
    formError(), button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(button, form, async () => {
      const f = form.elements;
      const body = {
        name: f.name.value, source: "queue", loop: f.loop.checked, quality: f.quality.value,
        recording: f.recording.checked, playbackPolicy: f.playbackPolicy.value,
      };
      const profile = {};
      if (f.resolution.value) [profile.width, profile.height] = f.resolution.value.split("x").map(Number);
      if (f.fps.value) profile.fps = Number(f.fps.value);
      if (f.videoBitrate.value) profile.videoBitrate = Number(f.videoBitrate.value) * 1000;
      if (Object.keys(profile).length) body.profile = profile;
      const channel = await api.post("/v1/live-streams", body);
      form.reset();
      onCreated(channel);
    });
  });
  return form;
}

function channelRows(channels) {
  if (!channels.length) return [h("tr", {}, h("td", { colspan: 4 }, "No channels yet: create one below."))];
  return channels.map((c) => h("tr", { dataset: { streamId: c.streamId } },
    h("td", {}, h("a", { href: `#/channels/${c.streamId}` }, c.name)),
    h("td", { class: "state" }, badge(c.state), c.enabled ? null : h("span", { class: "badge disabled" }, "stopped")),
    h("td", {}, c.profile ? `${c.profile.width}×${c.profile.height} ${c.profile.fps} fps` : "—",
      c.loop ? h("span", { class: "muted" }, ", loops") : null),
    h("td", { class: "hide-narrow" }, c.scheduleRepeat && c.scheduleRepeat !== "none"
      ? c.scheduleRepeat : (c.scheduledStart || c.scheduledEnd ? "once" : "—"))));
}

export async function channelsPage() {
  const body = h("tbody", { id: "channels-body" });
  const total = h("span", { class: "muted" });
  const onceBox = h("div", { id: "once" });
  let generation = 0;
  const refresh = async () => {
    const mine = ++generation;
    const channels = (await allPages("/v1/live-streams", "streams")).filter((s) => s.source === "queue");
    if (mine !== generation) return; // an older poll answering late
    body.replaceChildren(...channelRows(channels));
    total.textContent = `${channels.length} channel${channels.length === 1 ? "" : "s"}`;
  };
  await refresh();
  const form = createForm((channel) => {
    onceBox.replaceChildren(
      h("p", {}, h("a", { href: `#/channels/${channel.streamId}` }, `Open ${channel.name} →`),
        h("span", { class: "muted" }, " to add items from the library and start it.")),
      h("p", { class: "muted" }, "An encoder that publishes with this channel's key takes over its output; "
        + "when it stops, the queue resumes."),
      ingestCard(channel, channel.ingest));
    onceBox.scrollIntoView({ behavior: "smooth" });
    refresh();
  });
  mount(
    h("div", { class: "row" }, h("h1", {}, "Channels"), total),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "State"), h("th", {}, "Output"),
        h("th", { class: "hide-narrow" }, "Schedule"))),
      body)),
    onceBox,
    form,
  );
  poll(3000, refresh);
}

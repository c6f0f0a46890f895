// Streams: the list with live state, and the create form.
import * as api from "./api.js";
import {
  act, badge, checkbox, field, formError, h, mount, poll, secretLine, select, when,
} from "./ui.js";

/** The ingest details, with the key: shown once, after create or rotate. */
export function ingestCard(stream, keys) {
  const ingest = stream.ingest || {};
  const server = ingest.rtmpUrl;
  const key = keys.streamKey;
  return h("section", { class: "card once", "aria-label": "Ingest details" },
    h("h2", {}, "Stream key — shown once"),
    h("p", { class: "warn" }, "Copy the key now: it is not shown again (rotate it to get a new one)."),
    secretLine("Stream key", key),
    secretLine("RTMP server", server),
    ingest.rtmpsUrl ? secretLine("RTMPS server", ingest.rtmpsUrl) : null,
    secretLine("RTMP full URL", keys.rtmpFullUrl),
    secretLine("SRT URL", keys.srtFullUrl),
    ingest.whipUrl ? secretLine("WHIP URL", ingest.whipUrl) : null,
    h("h3", {}, "OBS"),
    h("ol", {},
      h("li", {}, "Settings → Stream → Service: Custom…"),
      h("li", {}, "Server: ", h("code", {}, server)),
      h("li", {}, "Stream Key: the key above"),
      h("li", {}, "Output: keyframe interval 2 s, then Start Streaming"),
      h("li", {}, "Or over WebRTC (OBS 30+): Service: WHIP, Server: the WHIP URL, Bearer Token: the key")),
    h("h3", {}, "ffmpeg"),
    secretLine("Command",
      `ffmpeg -re -i input.mp4 -c:v libx264 -g 60 -c:a aac -f flv "${keys.rtmpFullUrl}"`),
    secretLine("Over SRT",
      `ffmpeg -re -i input.mp4 -c:v libx264 -g 60 -c:a aac -f mpegts "${keys.srtFullUrl}"`));
}

async function createForm(onCreated) {
  const [plans, regions] = await Promise.all([api.get("/v1/plans"), api.get("/v1/regions")]);
  const planNames = Object.keys(plans.plans || {});
  const button = h("button", { type: "submit" }, "Create stream");
  const form = h("form", { class: "card", "aria-label": "New stream" },
    h("h2", {}, "New stream"),
    h("div", { class: "grid" },
      field("Name", h("input", { name: "name", required: true, maxlength: 200 })),
      field("Quality", select("quality", [["passthrough", "Passthrough (source only)"],
        ["standard", "Standard (720p/480p/360p)"], ["high", "High (1080p/720p/480p)"]], "passthrough")),
      field("Plan", select("plan", [["", "Default"], ...planNames.map((p) => [p, p])], "")),
      field("Region", select("region", [["", "Default"], ...(regions.regions || []).map((r) => [r, r])], "")),
      field("Reconnect window (seconds)", h("input", { name: "reconnectWindowSeconds", type: "number", min: 0, value: 60 })),
      field("Playback", select("playbackPolicy", [["public", "Public"], ["private", "Private (tokens)"]], "public")),
      field("SRT passphrase (optional)", h("input", { name: "srtPassphrase", type: "password", autocomplete: "new-password" }),
        "10–79 characters; SRT publishers must then encrypt with it")),
    h("div", { class: "row" }, checkbox("lowLatency", "Low latency", true), checkbox("recording", "Record every session")),
    formError(),
    button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(button, form, async () => {
      const f = form.elements;
      const body = {
        name: f.name.value,
        quality: f.quality.value,
        lowLatency: f.lowLatency.checked,
        recording: f.recording.checked,
        playbackPolicy: f.playbackPolicy.value,
        reconnectWindowSeconds: Number(f.reconnectWindowSeconds.value),
      };
      if (f.plan.value) body.plan = f.plan.value;
      if (f.region.value) body.region = f.region.value;
      if (f.srtPassphrase.value) body.srtPassphrase = f.srtPassphrase.value;
      const stream = await api.post("/v1/live-streams", body);
      form.reset();
      onCreated(stream);
    });
  });
  return form;
}

function streamRows(streams) {
  if (!streams.length) return [h("tr", {}, h("td", { colspan: 5 }, "No streams yet: create one below."))];
  return streams.map((s) => h("tr", { dataset: { streamId: s.streamId } },
    h("td", {}, h("a", { href: `#/streams/${s.streamId}` }, s.name)),
    h("td", { class: "state" }, badge(s.state), s.enabled ? null : h("span", { class: "badge disabled" }, "stopped")),
    h("td", {}, s.quality),
    h("td", { class: "hide-narrow" }, when(s.startedAt)),
    h("td", { class: "hide-narrow" }, h("code", {}, s.streamId))));
}

export async function streamsPage() {
  const body = h("tbody", { id: "streams-body" });
  const total = h("span", { class: "muted" });
  const onceBox = h("div", { id: "once" });
  let generation = 0;
  const refresh = async () => {
    const mine = ++generation;
    const doc = await api.get("/v1/live-streams?limit=100");
    if (mine !== generation) return; // an older poll answering late
    body.replaceChildren(...streamRows(doc.streams));
    total.textContent = `${doc.total} stream${doc.total === 1 ? "" : "s"}`;
  };
  await refresh();
  const form = await createForm((stream) => {
    onceBox.replaceChildren(ingestCard(stream, stream.ingest),
      h("p", {}, h("a", { href: `#/streams/${stream.streamId}` }, `Open ${stream.name} →`)));
    onceBox.scrollIntoView({ behavior: "smooth" });
    refresh();
  });
  mount(
    h("div", { class: "row" }, h("h1", {}, "Live streams"), total),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "State"), h("th", {}, "Quality"),
        h("th", { class: "hide-narrow" }, "Started"), h("th", { class: "hide-narrow" }, "ID"))),
      body)),
    onceBox,
    form,
  );
  poll(2000, refresh);
}

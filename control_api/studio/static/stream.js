// One stream: controls, live preview, health, destinations and sessions.
import * as api from "./api.js";
import { ingestCard } from "./streams.js";
import { destinationsSection } from "./destinations.js";
import { goLiveSection, whepPlay } from "./webrtc.js";
import { attachHls, withToken } from "./preview.js";
import {
  act, badge, bitrate, bytes, checkbox, confirmDialog, field, formError, h, mount, notice, poll,
  select, sparkline, when,
} from "./ui.js";

function preview(stream) {
  const video = h("video", { id: "preview", controls: true, muted: true, autoplay: true, playsinline: true });
  video.muted = true;
  const status = h("p", { class: "muted", id: "preview-status" }, "The preview starts when the stream is live.");
  const mode = select("previewMode", [["hls", "HLS"], ["whep", "WebRTC (WHEP, sub-second)"]], "hls");
  let hls = null;
  let whep = null;
  let starting = false;
  const stop = () => {
    if (hls) hls.destroy();
    hls = null;
    if (whep) whep.stop();
    whep = null;
    video.removeAttribute("src");
    video.srcObject = null;
  };
  const startWhep = async () => {
    const url = new URL(await withToken(stream, stream.playback.whepUrl), location.href);
    status.textContent = "WebRTC: connecting";
    whep = await whepPlay(url.pathname + url.search, video, (state) => (status.textContent = `WebRTC: ${state}`));
  };
  const start = async () => {
    if (hls || whep || video.src || starting) return;
    starting = true;
    try {
      if (mode.value === "whep") await startWhep();
      else await startHls();
    } finally {
      starting = false;
    }
  };
  mode.addEventListener("change", () => {
    stop();
    if (stream.state === "live") start().catch((err) => (status.textContent = `Preview error: ${err.message}`));
  });
  const startHls = async () => {
    hls = attachHls(video, await withToken(stream, stream.playback.hlsUrl), stream.lowLatency, status);
  };
  video.addEventListener("playing", () => (status.textContent = mode.value === "whep" ? "Playing over WebRTC" : "Playing"));
  const node = h("section", { class: "card preview", "aria-label": "Preview" }, h("h2", {}, "Preview"),
    field("Play over", mode), video, status);
  return { node, start, stop, setStream: (s) => (stream = s) };
}

function healthView(health, samples) {
  const ingest = health.ingest;
  if (!ingest) return [h("p", { class: "muted" }, "No encoder connected.")];
  const v = ingest.video;
  const a = ingest.audio;
  const rows = [
    ["Protocol", `${ingest.protocol} from ${ingest.remoteAddress}`],
    ["Connected", when(ingest.connectedAt)],
    ["Encoder", ingest.encoderConnected ? "connected" : `gone since ${when(ingest.encoderLeftAt)}`],
    ["Video", v ? `${v.codec} ${v.width}×${v.height}` : "—"],
    ["Frame rate", v && v.fps ? `${v.fps.toFixed(2)} fps` : "—"],
    ["Keyframe interval", v && v.keyframeInterval ? `${v.keyframeInterval.toFixed(2)} s` : "—"],
    ["Audio", a ? `${a.codec} ${a.sampleRate} Hz, ${a.channels} ch` : "—"],
    ["Bitrate", bitrate(ingest.bitrate)],
    ["Received", bytes(ingest.bytesIn)],
    ["Frames dropped", ingest.framesDropped],
  ];
  if (ingest.srt) {
    const s = ingest.srt;
    rows.push(["SRT RTT", `${s.rttMs.toFixed(1)} ms`], ["SRT latency", `${s.latencyMs} ms`],
      ["SRT loss", `${(s.lossRate * 100).toFixed(2)} % (${s.packetsLost} lost, ${s.packetsRetransmitted} retransmitted)`],
      ["SRT encryption", s.encrypted ? `AES-${s.keyLength * 8}` : "none"]);
  }
  return [
    h("dl", { class: "facts" }, rows.map(([k, val]) => [h("dt", {}, k), h("dd", {}, String(val))])),
    h("div", { class: "spark-box" }, h("span", { class: "muted" }, "Bitrate, last minute"), sparkline(samples)),
    ...warningsView(health.warnings),
    ...renditionsView(health.renditions),
  ];
}

// What went wrong with an output (a recording stopped, transcoding fell back): ingest goes on.
function warningsView(warnings) {
  if (!warnings || !warnings.length) return [];
  return [h("ul", { class: "warnings", "aria-label": "Warnings" }, warnings.map((w) => h("li", {}, w)))];
}

// The transcoded ladder, tallest first, as health.renditions measures it.
function renditionsView(renditions) {
  if (!renditions || !renditions.length) return [];
  const head = ["Rendition", "Size", "Bitrate", "Frame rate", "Behind source", "Dropped"];
  return [h("div", { class: "table-wrap" }, h("table", { class: "renditions", "aria-label": "Renditions" },
    h("thead", {}, h("tr", {}, head.map((t) => h("th", {}, t)))),
    h("tbody", {}, renditions.map((r) => h("tr", { "data-rendition": r.name },
      h("td", {}, r.name), h("td", {}, `${r.width}×${r.height}`), h("td", {}, bitrate(r.bitrate)),
      h("td", {}, `${r.fps.toFixed(1)} fps`), h("td", {}, `${r.lagMs} ms`), h("td", {}, String(r.droppedFrames)))))))];
}

function viewersView(v) {
  const c = v.current;
  const rows = [
    ["Watching now", `${c.total} (HLS ${c.hls}, WebRTC ${c.webrtc}, RTMP ${c.rtmp}, SRT ${c.srt})`],
    ["Peak this session", v.peakViewers],
    ["Views", v.totalViews],
    ["Watch time", `${Math.round(v.viewerSeconds)} s`],
  ];
  return h("dl", { class: "facts" }, rows.map(([k, val]) => [h("dt", {}, k), h("dd", {}, String(val))]));
}

function sessionsTable(doc) {
  const rows = doc.sessions.map((s) => h("tr", {},
    h("td", {}, when(s.startedAt)), h("td", {}, s.endedAt ? when(s.endedAt) : "ongoing"),
    h("td", {}, s.durationSeconds == null ? "—" : `${Math.round(s.durationSeconds)} s`),
    h("td", {}, s.protocol), h("td", { class: "hide-narrow" }, bytes(s.bytesIn)),
    h("td", { class: "hide-narrow" }, s.peakViewers ?? 0),
    h("td", { class: "hide-narrow" }, s.recordingMediaId ? h("a", { href: "#/library" }, s.recordingMediaId) : "—")));
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 7 }, "No sessions yet.")));
  return h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, ["Started", "Ended", "Duration", "Protocol"].map((t) => h("th", {}, t)),
      h("th", { class: "hide-narrow" }, "Received"), h("th", { class: "hide-narrow" }, "Peak viewers"),
      h("th", { class: "hide-narrow" }, "Recording"))),
    h("tbody", {}, rows)));
}

function settingsForm(stream, onSaved) {
  const button = h("button", { type: "submit" }, "Save settings");
  const form = h("form", { class: "card", "aria-label": "Settings" },
    h("h2", {}, "Settings"),
    h("div", { class: "grid" },
      field("Name", h("input", { name: "name", value: stream.name, required: true })),
      field("Quality", select("quality", [["passthrough", "Passthrough"], ["standard", "Standard"], ["high", "High"]], stream.quality)),
      field("Reconnect window (seconds)", h("input", { name: "reconnectWindowSeconds", type: "number", min: 0, value: stream.reconnectWindowSeconds })),
      field("Playback", select("playbackPolicy", [["public", "Public"], ["private", "Private"]], stream.playbackPolicy))),
    h("div", { class: "row" }, checkbox("lowLatency", "Low latency", stream.lowLatency), checkbox("recording", "Record every session", stream.recording)),
    h("p", { class: "muted" }, "Media settings apply from the next session."),
    formError(), button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = form.elements;
    act(button, form, async () => {
      onSaved(await api.patch(`/v1/live-streams/${stream.streamId}`, {
        name: f.name.value, quality: f.quality.value, lowLatency: f.lowLatency.checked,
        recording: f.recording.checked, reconnectWindowSeconds: Number(f.reconnectWindowSeconds.value),
        playbackPolicy: f.playbackPolicy.value,
      }));
      notice("Settings saved");
    });
  });
  return form;
}

export async function streamPage(id) {
  let stream = await api.get(`/v1/live-streams/${id}`);
  const base = `/v1/live-streams/${id}`;
  const title = h("h1", {}, stream.name, " ", h("span", { id: "state" }, badge(stream.state)));
  const once = h("div", { id: "once" });
  const player = preview(stream);
  const goLive = goLiveSection(stream);
  // Leaving the page ends what it started: a WHEP preview left open would stay counted
  // as a viewer, and a broadcast (camera on) would have no End button any more.
  window.addEventListener("hashchange", () => {
    player.stop();
    goLive.stop();
  }, { once: true });
  const health = h("div", { id: "health" });
  const sessions = h("div", { id: "sessions" });
  const viewers = h("div", { id: "viewers" });
  const samples = [];
  const controls = h("div", { class: "row actions", role: "group", "aria-label": "Stream controls" });
  const destinations = await destinationsSection(id);

  const renderControls = () => {
    const toggle = stream.enabled
      ? h("button", { type: "button", onclick: (e) => act(e.target, null, async () => {
        await api.post(`${base}/stop`); notice("Stopped: ingest is refused until you start it"); await refresh(true);
      }) }, "Stop")
      : h("button", { type: "button", onclick: (e) => act(e.target, null, async () => {
        await api.post(`${base}/start`); notice("Started: ingest is allowed"); await refresh(true);
      }) }, "Start");
    controls.replaceChildren(toggle,
      h("button", { type: "button", onclick: (e) => rotate(e.target) }, "Rotate key"),
      h("button", { type: "button", class: "danger", onclick: (e) => remove(e.target) }, "Delete"),
      h("a", { href: `/play/${stream.edgeId}`, target: "_blank", rel: "noopener" }, "Open player ↗"));
  };
  const rotate = async (button) => {
    const live = ["live", "connecting"].includes(stream.state);
    const ok = await confirmDialog(live
      ? "The encoder is connected: rotating disconnects it and the old key stops working at once."
      : "The old key stops working at once.", "Rotate key");
    if (!ok) return;
    await act(button, null, async () => {
      const keys = await api.post(`${base}/rotate-key${live ? "?force=true" : ""}`);
      once.replaceChildren(ingestCard(stream, keys));
    });
  };
  const remove = async (button) => {
    if (!(await confirmDialog(`Delete the stream "${stream.name}"? This cannot be undone.`))) return;
    await act(button, null, async () => {
      await api.del(base);
      notice("Stream deleted");
      location.hash = "#/streams";
    });
  };
  const refreshViewers = async () => viewers.replaceChildren(viewersView(await api.get(`${base}/viewership`)));
  const refreshSessions = async () => sessions.replaceChildren(sessionsTable(await api.get(`${base}/sessions?limit=20`)));
  // Health carries the state, so the stream itself is read again only when the state
  // moved or after an action: the page stays well inside the default 60 requests a minute.
  const refresh = async (full = false) => {
    const hl = await api.get(`${base}/health`);
    const doc = full || hl.state !== stream.state ? await api.get(base) : stream;
    const changed = full || doc.state !== stream.state || doc.enabled !== stream.enabled;
    stream = doc;
    player.setStream(stream);
    title.querySelector("#state").replaceChildren(badge(stream.state),
      stream.enabled ? "" : h("span", { class: "badge disabled" }, "stopped"),
      stream.errorReason ? h("span", { class: "muted" }, ` ${stream.errorReason}`) : "");
    samples.push(hl.ingest ? hl.ingest.bitrate : 0);
    if (samples.length > 20) samples.shift(); // a minute at one sample every 3 s
    health.replaceChildren(...healthView(hl, samples));
    if (stream.state === "live") player.start().catch((err) => notice(err.message, "error"));
    else if (stream.state === "ended" || stream.state === "idle") player.stop();
    if (changed) {
      renderControls();
      await refreshSessions();
    }
  };
  renderControls();
  mount(
    h("p", {}, h("a", { href: "#/streams" }, "← Streams")),
    title,
    controls,
    once,
    h("div", { class: "two" },
      player.node,
      h("section", { class: "card", "aria-label": "Health" }, h("h2", {}, "Health"), health)),
    goLive.node,
    h("section", { class: "card", "aria-label": "Ingest" }, h("h2", {}, "Ingest"),
      h("dl", { class: "facts" },
        h("dt", {}, "RTMP server"), h("dd", {}, h("code", {}, stream.ingest.rtmpUrl)),
        h("dt", {}, "SRT"), h("dd", {}, h("code", {}, stream.ingest.srtUrl)),
        h("dt", {}, "WHIP"), h("dd", {}, h("code", {}, stream.ingest.whipUrl)),
        h("dt", {}, "Playback (HLS)"), h("dd", {}, h("code", {}, stream.playback.hlsUrl)),
        h("dt", {}, "Playback (WHEP)"), h("dd", {}, h("code", {}, stream.playback.whepUrl)),
        h("dt", {}, "Playback (RTMP)"), h("dd", {}, h("code", {}, stream.playback.rtmpUrl)),
        h("dt", {}, "Playback (SRT)"), h("dd", {}, h("code", {}, stream.playback.srtUrl))),
      h("p", { class: "muted" }, "The stream key is shown only at creation; rotate it to get a new one.",
        " OBS 30+ over WebRTC: Service WHIP, Server the WHIP URL, Bearer Token the stream key.",
        stream.playbackPolicy === "private" ? " Private playback needs a token: ?token=T (HLS, WHEP, RTMP) or ,s=T (SRT)." : "")),
    h("section", { class: "card", "aria-label": "Viewers" }, h("h2", {}, "Viewers"), viewers),
    destinations.node,
    h("section", { class: "card", "aria-label": "Sessions" }, h("h2", {}, "Sessions"), sessions),
    settingsForm(stream, (s) => { stream = s; title.firstChild.textContent = s.name; }),
  );
  await refresh(true);
  await refreshViewers();
  poll(3000, () => refresh(false));
  poll(10000, refreshViewers);
  poll(6000, destinations.refresh);
  poll(15000, refreshSessions); // bytes and durations of an ongoing session
}

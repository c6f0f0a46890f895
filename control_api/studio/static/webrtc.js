// WebRTC in the studio: "Go live" publishes the camera or the screen over WHIP with the
// stream key; WHEP plays a stream back. Both speak the same HTTP the server documents
// for OBS and players (POST an SDP offer, 201 with the answer and the session's
// Location, DELETE it to end), on this page's own origin.
import { field, h, select } from "./ui.js";

const GATHER_LIMIT_MS = 3000;

/** The path of an absolute URL the API gave: the studio talks to its own origin. */
function samePath(url) {
  const parsed = new URL(url, location.href);
  return parsed.pathname + parsed.search;
}

/** Resolves once ICE gathering completes (or after a bound): the offer carries the
 * candidates, so no trickle PATCH is needed. */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_LIMIT_MS);
  });
}

function preferH264(transceiver) {
  const caps = RTCRtpReceiver.getCapabilities && RTCRtpReceiver.getCapabilities("video");
  if (!caps || !transceiver.setCodecPreferences) return;
  const h264 = caps.codecs.filter((c) => /H264|rtx/i.test(c.mimeType));
  if (h264.length) transceiver.setCodecPreferences(h264);
}

async function problemText(resp) {
  const text = await resp.text();
  try {
    const doc = JSON.parse(text);
    return doc.detail || doc.title || `HTTP ${resp.status}`;
  } catch {
    return text || `HTTP ${resp.status}`;
  }
}

/** Offer → POST → answer; returns the session URL (Location). */
async function negotiate(pc, url, headers) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const resp = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/sdp", ...headers },
    body: pc.localDescription.sdp,
  });
  if (resp.status !== 201) {
    const err = new Error(await problemText(resp));
    err.status = resp.status;
    throw err;
  }
  const location = resp.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
  return location;
}

async function capture(source) {
  if (source === "screen") {
    return navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 30 }, audio: true });
  }
  return navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } },
    audio: true,
  });
}

/** A WHIP publisher of ``media`` (a MediaStream) to ``whipPath`` with ``key``. */
export async function whipPublish(whipPath, key, media, onState = () => {}) {
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) {
    const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [media] });
    if (track.kind === "video") preferH264(transceiver);
  }
  pc.addEventListener("connectionstatechange", () => onState(pc.connectionState));
  let session = null;
  try {
    session = await negotiate(pc, whipPath, { Authorization: `Bearer ${key}` });
  } catch (err) {
    pc.close();
    throw err;
  }
  return {
    pc,
    async stop() {
      // DELETE first: a closed peer connection can end the session on the server
      // before the DELETE arrives, which then answers 404.
      if (session) await fetch(session, { method: "DELETE" }).catch(() => {});
      pc.close();
    },
  };
}

/** A WHEP viewer of ``whepPath`` playing into ``video``. */
export async function whepPlay(whepPath, video, onState = () => {}) {
  const pc = new RTCPeerConnection();
  preferH264(pc.addTransceiver("video", { direction: "recvonly" }));
  pc.addTransceiver("audio", { direction: "recvonly" });
  const stream = new MediaStream();
  pc.addEventListener("track", (event) => {
    stream.addTrack(event.track);
    video.srcObject = stream;
    video.play().catch(() => {});
  });
  pc.addEventListener("connectionstatechange", () => onState(pc.connectionState));
  let session = null;
  try {
    session = await negotiate(pc, whepPath, {});
  } catch (err) {
    pc.close();
    throw err;
  }
  return {
    pc,
    async stop() {
      if (session) await fetch(session, { method: "DELETE" }).catch(() => {});
      pc.close();
      video.srcObject = null;
    },
  };
}

/** The stream page's "Go live" card: key, source, local preview, state. */
export function goLiveSection(stream) {
  const key = h("input", { name: "whipKey", type: "password", autocomplete: "off" });
  const source = select("source", [["camera", "Camera and microphone"], ["screen", "Screen"]], "camera");
  const local = h("video", { id: "golive-preview", muted: true, autoplay: true, playsinline: true });
  local.muted = true;
  local.hidden = true; // shown while this browser is live
  const status = h("p", { class: "muted", id: "golive-status", role: "status" }, "Not live from this browser.");
  const start = h("button", { type: "button" }, "Go live");
  const end = h("button", { type: "button", disabled: true }, "End broadcast");
  let media = null;
  let publisher = null;
  const reset = () => {
    if (media) media.getTracks().forEach((t) => t.stop());
    media = null;
    publisher = null;
    local.srcObject = null;
    local.hidden = true;
    start.disabled = false;
    end.disabled = true;
  };
  start.addEventListener("click", async () => {
    if (!key.value.trim()) {
      status.textContent = "Paste the stream key first (it is shown once, at creation or rotation).";
      return;
    }
    start.disabled = true;
    status.textContent = "Starting…";
    try {
      media = await capture(source.value);
      local.srcObject = media;
      local.hidden = false;
      local.play().catch(() => {});
      status.textContent = "WebRTC: connecting";
      publisher = await whipPublish(samePath(stream.ingest.whipUrl), key.value.trim(), media,
        (state) => (status.textContent = `WebRTC: ${state}`));
      end.disabled = false;
    } catch (err) {
      status.textContent = `Could not go live: ${err.message}`;
      reset();
    }
  });
  end.addEventListener("click", async () => {
    if (publisher) await publisher.stop();
    reset();
    status.textContent = "Broadcast ended.";
  });
  const node = h("section", { class: "card", "aria-label": "Go live" },
    h("h2", {}, "Go live"),
    h("p", { class: "muted" }, "Publish this browser's camera or screen over WebRTC (WHIP)."),
    field("Stream key", key, "Shown once, at creation or rotation."),
    field("Source", source),
    h("div", { class: "row" }, start, end),
    local, status);
  const stop = async () => {
    if (publisher) await publisher.stop();
    reset();
  };
  return { node, stop };
}

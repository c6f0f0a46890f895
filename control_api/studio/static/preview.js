// A live stream's HLS preview (hls.js), started when the stream goes live and stopped
// when it ends, so a page never asks for a playlist that is not there (a 404 would be a
// console error in every tab left open on an idle channel).
import * as api from "./api.js";
import { h } from "./ui.js";

/** ``url`` for this stream's viewers: with a fresh playback token when it is private. */
export async function withToken(stream, url) {
  if (stream.playbackPolicy !== "private") return url;
  const minted = await api.post(`/v1/live-streams/${stream.streamId}/playback-tokens`, { expiresInSeconds: 3600 });
  return `${url}?token=${encodeURIComponent(minted.token)}`;
}

/** Play an HLS ``url`` in ``video`` (hls.js, or the browser's own HLS); the hls.js
 * instance to destroy later, if one was made. */
export function attachHls(video, url, lowLatency, status) {
  let hls = null;
  if (window.Hls && window.Hls.isSupported()) {
    hls = new window.Hls({ lowLatencyMode: lowLatency, maxLiveSyncPlaybackRate: 1.1 });
    hls.on(window.Hls.Events.ERROR, (_, data) => {
      if (data.fatal) status.textContent = `Preview error: ${data.details}`;
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
    video.src = url;
  } else {
    status.textContent = "hls.js is not installed on this server (scripts/web.sh)";
    return null;
  }
  status.textContent = "Live preview";
  video.play().catch(() => {});
  return hls;
}

export function livePreview(stream) {
  const video = h("video", { id: "preview", controls: true, muted: true, autoplay: true, playsinline: true });
  video.muted = true;
  const status = h("p", { class: "muted", id: "preview-status" }, "The preview starts when the stream is live.");
  let hls = null;
  const stop = () => {
    if (hls) hls.destroy();
    hls = null;
    video.removeAttribute("src");
    video.load();
  };
  const start = async () => {
    if (hls || video.getAttribute("src")) return;
    hls = attachHls(video, await withToken(stream, stream.playback.hlsUrl), stream.lowLatency, status);
  };
  /** Follow the stream's state: play while live, let go otherwise. */
  const follow = (state) => {
    if (state === "live") {
      start();
    } else if (hls || video.getAttribute("src")) {
      stop();
      status.textContent = "The preview starts when the stream is live.";
    }
  };
  window.addEventListener("hashchange", stop, { once: true });
  video.addEventListener("playing", () => (status.textContent = "Playing"));
  return {
    node: h("section", { class: "card preview", "aria-label": "Preview" }, h("h2", {}, "Preview"), video, status),
    follow,
  };
}

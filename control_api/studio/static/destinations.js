// A stream's multistream destinations: add, enable/disable, remove, live status.
import * as api from "./api.js";
import { act, badge, bytes, checkbox, confirmDialog, field, formError, h, when } from "./ui.js";

export async function destinationsSection(streamId) {
  const base = `/v1/live-streams/${streamId}/destinations`;
  const list = h("div", { id: "destinations" });

  const row = (d) => {
    const st = d.status || {};
    return h("li", { class: "dest", dataset: { destinationId: d.destinationId } },
      h("div", {},
        h("strong", {}, d.name || d.url), " ", badge(st.state || "idle"),
        d.rendition && d.rendition !== "source" ? h("span", { class: "muted" }, ` pushes ${d.rendition}`) : null,
        h("div", { class: "muted" }, h("code", {}, d.url)),
        h("div", { class: "muted" }, `sent ${bytes(st.bytesSent)}, ${st.reconnects || 0} reconnects`,
          st.connectedAt ? `, connected ${when(st.connectedAt)}` : ""),
        st.lastError ? h("div", { class: "last-error" }, `Last error: ${st.lastError}`) : null),
      h("div", { class: "row" },
        h("button", { type: "button", onclick: (e) => act(e.target, null, async () => {
          await api.patch(`${base}/${d.destinationId}`, { enabled: !d.enabled });
          await refresh();
        }) }, d.enabled ? "Disable" : "Enable"),
        h("button", { type: "button", class: "danger", onclick: async (e) => {
          if (!(await confirmDialog(`Remove the destination ${d.name || d.url}?`, "Remove"))) return;
          await act(e.target, null, async () => { await api.del(`${base}/${d.destinationId}`); await refresh(); });
        } }, "Remove")));
  };
  const refresh = async () => {
    const doc = await api.get(base);
    list.replaceChildren(doc.destinations.length
      ? h("ul", { class: "plain" }, doc.destinations.map(row))
      : h("p", { class: "muted" }, "No destinations: the stream is not pushed anywhere."));
  };

  const button = h("button", { type: "submit" }, "Add destination");
  const form = h("form", { "aria-label": "New destination" },
    h("div", { class: "grid" },
      field("Name", h("input", { name: "name", maxlength: 200 })),
      field("URL", h("input", { name: "url", required: true, placeholder: "rtmp://a.example/live" }), "rtmp://, rtmps:// or srt://"),
      field("Stream key", h("input", { name: "streamKey", type: "password", autocomplete: "off" })),
      field("Rendition (optional)", h("input", { name: "rendition", maxlength: 16, placeholder: "source" }),
        "a rung of the stream's quality ladder, e.g. 720p")),
    checkbox("enabled", "Enabled", true),
    formError(), button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = form.elements;
    act(button, form, async () => {
      const body = { url: f.url.value, enabled: f.enabled.checked };
      if (f.name.value) body.name = f.name.value;
      if (f.streamKey.value) body.streamKey = f.streamKey.value;
      if (f.rendition.value) body.rendition = f.rendition.value;
      await api.post(base, body);
      form.reset();
      await refresh();
    });
  });
  await refresh();
  return {
    node: h("section", { class: "card", "aria-label": "Destinations" }, h("h2", {}, "Destinations"), list, form),
    refresh,
  };
}

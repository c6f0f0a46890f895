// Webhooks: register (the signing secret shown once), delete, delivery log with retry.
import * as api from "./api.js";
import { act, badge, confirmDialog, field, formError, h, mount, secretLine, when } from "./ui.js";

const EVENTS = ["stream.connecting", "stream.live", "stream.ended", "stream.error",
  "destination.error", "recording.ready", "recording.failed", "media.ready", "task.failed"];

async function deliveries(hook, box) {
  const doc = await api.get(`/v1/webhooks/${hook.webhookId}/deliveries?limit=20`);
  const rows = doc.deliveries.map((d) => h("tr", {},
    h("td", {}, d.eventType), h("td", {}, badge(d.status)), h("td", {}, d.attempts),
    h("td", {}, d.responseStatus ?? (d.error || "—")), h("td", { class: "hide-narrow" }, when(d.lastAttemptAt)),
    h("td", {}, h("button", { type: "button", class: "small", onclick: (e) => act(e.target, null, async () => {
      await api.post(`/v1/webhooks/${hook.webhookId}/deliveries/${d.deliveryId}/retry`);
      await deliveries(hook, box);
    }) }, "Retry"))));
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 6 }, "No deliveries yet.")));
  box.replaceChildren(h("div", { class: "table-wrap" }, h("table", {},
    h("thead", {}, h("tr", {}, h("th", {}, "Event"), h("th", {}, "Status"), h("th", {}, "Attempts"),
      h("th", {}, "Response"), h("th", { class: "hide-narrow" }, "Last attempt"), h("th", {}, ""))),
    h("tbody", {}, rows))));
}

export async function webhooksPage() {
  const list = h("div", { id: "webhooks" });
  const once = h("div", { id: "once" });
  const refresh = async () => {
    const doc = await api.get("/v1/webhooks?limit=100");
    if (!doc.webhooks.length) {
      list.replaceChildren(h("p", { class: "muted" }, "No webhooks yet."));
      return;
    }
    list.replaceChildren(...doc.webhooks.map((w) => {
      const log = h("div", { class: "log" });
      const toggle = h("button", { type: "button", "aria-expanded": "false" }, "Deliveries");
      toggle.addEventListener("click", () => act(toggle, null, async () => {
        const open = toggle.getAttribute("aria-expanded") === "true";
        toggle.setAttribute("aria-expanded", String(!open));
        if (open) log.replaceChildren();
        else await deliveries(w, log);
      }));
      return h("section", { class: "card", dataset: { webhookId: w.webhookId } },
        h("h2", {}, h("code", {}, w.url)),
        h("p", { class: "muted" }, w.events.join(", ")),
        h("div", { class: "row" }, toggle,
          h("button", { type: "button", class: "danger", onclick: async (e) => {
            if (!(await confirmDialog(`Delete the webhook to ${w.url} and its pending deliveries?`))) return;
            await act(e.target, null, async () => { await api.del(`/v1/webhooks/${w.webhookId}`); await refresh(); });
          } }, "Delete")),
        log);
    }));
  };
  const button = h("button", { type: "submit" }, "Add webhook");
  const boxes = EVENTS.map((name) => {
    const id = `ev-${name.replace(".", "-")}`;
    return h("div", { class: "field check" }, h("input", { type: "checkbox", id, name: "event", value: name, checked: true }),
      h("label", { for: id }, name));
  });
  const form = h("form", { class: "card", "aria-label": "New webhook" },
    h("h2", {}, "New webhook"),
    field("URL", h("input", { name: "url", type: "url", required: true, placeholder: "https://example.com/hooks" })),
    h("fieldset", { class: "field", dataset: { field: "events" } }, h("legend", {}, "Events"), h("div", { class: "checks" }, boxes),
      h("div", { class: "field-error", role: "alert" })),
    formError(), button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(button, form, async () => {
      const events = [...form.querySelectorAll("input[name=event]:checked")].map((i) => i.value);
      const hook = await api.post("/v1/webhooks", { url: form.elements.url.value, events });
      once.replaceChildren(h("section", { class: "card once", "aria-label": "Signing secret" },
        h("h2", {}, "Signing secret — shown once"),
        h("p", {}, "Verify the HMAC-SHA256 signature header of each delivery with it."),
        secretLine("Secret", hook.secret)));
      form.reset();
      await refresh();
    });
  });
  await refresh();
  mount(h("h1", {}, "Webhooks"), list, once, form);
}

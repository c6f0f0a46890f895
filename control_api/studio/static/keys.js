// API keys: list, create (the secret shown once), revoke.
import * as api from "./api.js";
import { act, confirmDialog, field, formError, h, mount, secretLine, select, when } from "./ui.js";

export async function keysPage() {
  const body = h("tbody", {});
  const once = h("div", { id: "once" });
  const refresh = async () => {
    const doc = await api.get("/v1/api-keys");
    body.replaceChildren(...doc.apiKeys.map((k) => h("tr", { dataset: { keyId: k.keyId } },
      h("td", {}, k.name, api.secret().startsWith(k.prefix) ? h("span", { class: "muted" }, " (signed in with it)") : null),
      h("td", {}, k.access), h("td", {}, h("code", {}, `${k.prefix}…`)),
      h("td", { class: "hide-narrow" }, when(k.createdAt)), h("td", { class: "hide-narrow" }, when(k.lastUsedAt)),
      h("td", {}, h("button", { type: "button", class: "danger", onclick: async (e) => {
        if (!(await confirmDialog(`Revoke the key "${k.name}"? Anything using it stops working at once.`, "Revoke"))) return;
        await act(e.target, null, async () => { await api.del(`/v1/api-keys/${k.keyId}`); await refresh(); });
      } }, "Revoke")))));
  };
  const button = h("button", { type: "submit" }, "Create key");
  const form = h("form", { class: "card", "aria-label": "New API key" },
    h("h2", {}, "New API key"),
    h("div", { class: "grid" },
      field("Name", h("input", { name: "name", required: true })),
      field("Access", select("access", [["full", "Full"], ["restricted", "Restricted"]], "full")),
      field("CORS origins (restricted keys)", h("input", { name: "corsOrigins", placeholder: "https://app.example, *" }),
        "Comma-separated")),
    formError(), button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = form.elements;
    act(button, form, async () => {
      const origins = f.corsOrigins.value.split(",").map((s) => s.trim()).filter(Boolean);
      const key = await api.post("/v1/api-keys", { name: f.name.value, access: f.access.value, corsOrigins: origins });
      once.replaceChildren(h("section", { class: "card once", "aria-label": "New key secret" },
        h("h2", {}, `Key "${key.name}" — shown once`),
        h("p", { class: "warn" }, "Copy the secret now: only its hash is stored."),
        secretLine("Secret", key.key)));
      form.reset();
      await refresh();
    });
  });
  await refresh();
  mount(h("h1", {}, "API keys"),
    h("div", { class: "table-wrap" }, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Access"), h("th", {}, "Prefix"),
        h("th", { class: "hide-narrow" }, "Created"), h("th", { class: "hide-narrow" }, "Last used"), h("th", {}, ""))),
      body)),
    once, form);
}

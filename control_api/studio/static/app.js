// The studio's shell: sign-in, navigation and a hash router over the pages.
import * as api from "./api.js";
import { act, checkbox, field, formError, h, mount, notice } from "./ui.js";
import { streamsPage } from "./streams.js";
import { streamPage } from "./stream.js";
import { libraryPage } from "./library.js";
import { channelsPage } from "./channels.js";
import { channelPage } from "./channel.js";
import { webhooksPage } from "./webhooks.js";
import { keysPage } from "./keys.js";

const ROUTES = [
  [/^#\/streams\/(ls_[\w-]+)$/, streamPage],
  [/^#\/streams$/, streamsPage],
  [/^#\/library$/, libraryPage],
  [/^#\/channels\/(ls_[\w-]+)$/, channelPage],
  [/^#\/channels$/, channelsPage],
  [/^#\/webhooks$/, webhooksPage],
  [/^#\/keys$/, keysPage],
];

let signingIn = false;

function signInPage() {
  const key = h("input", { name: "apiKey", type: "password", autocomplete: "off", required: true });
  const exchange = checkbox("exchange", "Exchange it for a one-hour token (the key itself is not kept)");
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "card narrow", "aria-label": "Sign in" },
    h("h1", {}, "Sign in"),
    h("p", {}, "Paste an API key (rk_…). It stays in this browser tab only and is forgotten when you sign out or close the tab."),
    field("API key", key),
    exchange,
    formError(),
    button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    signingIn = true;
    act(button, form, async () => {
      let secret = key.value.trim();
      if (form.elements.exchange.checked) secret = await api.exchange(secret);
      api.signIn(secret);
      try {
        await api.get("/v1/regions"); // proves the secret before showing anything
      } catch (err) {
        api.signOut();
        throw err;
      }
      if (!location.hash || location.hash === "#/signin") location.hash = "#/streams";
      else route();
    }).then(() => {
      signingIn = false;
      if (!api.secret()) key.focus();
    });
  });
  mount(form);
  key.focus();
}

function route() {
  const nav = document.getElementById("nav");
  if (!api.secret()) {
    nav.hidden = true;
    signInPage();
    return;
  }
  nav.hidden = false;
  const hash = location.hash || "#/streams";
  for (const link of nav.querySelectorAll("a")) {
    const current = hash.startsWith(link.getAttribute("href"));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const [pattern, page] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      page(...match.slice(1)).catch((err) => {
        mount(h("p", { class: "form-error", role: "alert" }, err.message));
      });
      return;
    }
  }
  location.hash = "#/streams";
}

document.getElementById("sign-out").addEventListener("click", () => {
  api.signOut();
  notice("Signed out");
  location.hash = "#/signin";
  route();
});

window.addEventListener("studio:unauthorized", () => {
  // A revoked key or an expired token: back to the sign-in form.
  if (signingIn) return;
  api.signOut();
  notice("Your key or token is no longer valid: sign in again", "error");
  route();
});

window.addEventListener("hashchange", route);
route();

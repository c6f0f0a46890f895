// Small DOM helpers: every text goes in as textContent, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function mount(...children) {
  const main = document.getElementById("main");
  main.replaceChildren(...children);
  return main;
}

export function notice(text, kind = "info") {
  const box = document.getElementById("notice");
  box.className = kind;
  box.textContent = text;
  clearTimeout(notice.timer);
  if (text) notice.timer = setTimeout(() => notice(""), 6000);
}

/** A labelled form control; `name` is the API's field name, so problems find it. */
export function field(label, input, hint) {
  const id = input.id || `f-${input.name}-${Math.random().toString(36).slice(2, 8)}`;
  input.id = id;
  return h(
    "div",
    { class: "field", dataset: { field: input.name } },
    h("label", { for: id }, label),
    input,
    hint ? h("small", { class: "hint" }, hint) : null,
    h("div", { class: "field-error", role: "alert" }),
  );
}

export function checkbox(name, label, checked = false) {
  const input = h("input", { type: "checkbox", name, checked });
  const id = `f-${name}-${Math.random().toString(36).slice(2, 8)}`;
  input.id = id;
  return h("div", { class: "field check", dataset: { field: name } }, input, h("label", { for: id }, label),
    h("div", { class: "field-error", role: "alert" }));
}

export function select(name, options, value) {
  return h(
    "select",
    { name },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
  );
}

/** Show an API error: the problem's detail next to the field it names, else on the form. */
export function showError(form, err) {
  clearErrors(form);
  const fields = err.fieldErrors || [];
  let placed = false;
  for (const { field: name, message } of fields) {
    const leaf = String(name).split(".").pop();
    const box = form.querySelector(`[data-field="${CSS.escape(leaf)}"] .field-error`);
    if (box) {
      box.textContent = message;
      placed = true;
    }
  }
  if (!placed) {
    const summary = form.querySelector(".form-error");
    if (summary) summary.textContent = err.message;
    else notice(err.message, "error");
  }
}

export function clearErrors(form) {
  for (const box of form.querySelectorAll(".field-error, .form-error")) box.textContent = "";
}

export function formError() {
  return h("div", { class: "form-error", role: "alert" });
}

/** Run an async action from a button; errors go to `form` (or the notice bar). */
export async function act(button, form, action) {
  if (button) button.disabled = true;
  try {
    if (form) clearErrors(form);
    return await action();
  } catch (err) {
    if (form) showError(form, err);
    else notice(err.message, "error");
    return undefined;
  } finally {
    if (button) button.disabled = false;
  }
}

export function copyButton(text, label = "Copy") {
  const btn = h("button", { type: "button", class: "small" }, label);
  btn.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
      btn.textContent = "Copied";
    } catch {
      // Clipboard needs a secure context: select the text so Ctrl+C works.
      const code = btn.previousElementSibling;
      if (code) window.getSelection().selectAllChildren(code);
      btn.textContent = "Selected: press Ctrl+C";
    }
    setTimeout(() => (btn.textContent = label), 2000);
  });
  return btn;
}

export function secretLine(label, value) {
  return h("div", { class: "secret" }, h("span", { class: "label" }, label),
    h("code", {}, value), copyButton(value));
}

/** A modal confirmation with real buttons; resolves true when confirmed. */
export function confirmDialog(message, action = "Delete") {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "confirm" },
      h("p", {}, message),
      h("div", { class: "actions" },
        h("button", { type: "button", value: "cancel", onclick: () => dialog.close("cancel") }, "Cancel"),
        h("button", { type: "button", class: "danger", value: "ok", onclick: () => dialog.close("ok") }, action)));
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "ok");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString();
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function bitrate(bps) {
  if (!bps) return "—";
  return bps >= 1e6 ? `${(bps / 1e6).toFixed(2)} Mbit/s` : `${Math.round(bps / 1000)} kbit/s`;
}

export function badge(state) {
  return h("span", { class: `badge ${state}` }, state);
}

/** Repeats `tick` every `ms` while the page stays current; honours 429 Retry-After. */
export function poll(ms, tick) {
  const route = location.hash;
  let timer = null;
  const run = async () => {
    if (location.hash !== route) return;
    let wait = ms;
    try {
      await tick();
    } catch (err) {
      if (err.status === 429) wait = Math.max(ms, err.retryAfter * 1000);
    }
    if (location.hash === route) timer = setTimeout(run, wait);
  };
  timer = setTimeout(run, ms);
  window.addEventListener("hashchange", () => clearTimeout(timer), { once: true });
}

/** An SVG sparkline of the last values. */
export function sparkline(values, width = 240, height = 40) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "spark");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "bitrate over the last minute");
  if (values.length > 1) {
    const max = Math.max(...values, 1) * 1.25; // headroom: a steady bitrate is not pinned to the top
    const step = width / (values.length - 1);
    const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(height - (v / max) * (height - 4) - 2).toFixed(1)}`);
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", pts.join(" "));
    svg.append(line);
  }
  return svg;
}

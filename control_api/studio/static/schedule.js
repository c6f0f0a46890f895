// A channel's schedule and loop. The browser shows and takes times in the person's local
// time (datetime-local inputs); the API gets ISO 8601 UTC.
import * as api from "./api.js";
import { act, checkbox, field, formError, h, notice, select } from "./ui.js";

const pad = (n) => String(n).padStart(2, "0");

export function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fromLocalInput(value) {
  return value ? new Date(value).toISOString().replace(/\.\d{3}Z$/, "Z") : null;
}

export function scheduleText(c) {
  if (!c.scheduledStart && !c.scheduledEnd) return "No schedule: plays from Start until Stop.";
  const from = c.scheduledStart ? new Date(c.scheduledStart).toLocaleString() : "now";
  const to = c.scheduledEnd ? new Date(c.scheduledEnd).toLocaleString() : "until stopped";
  const repeat = { daily: ", every day", weekly: ", every week" }[c.scheduleRepeat] || "";
  return `Plays from ${from} to ${to}${repeat}; outside it the channel is idle.`;
}

/** Only what changed is sent, so saving the loop alone never re-sends the schedule. */
export function scheduleForm(channel, onSaved) {
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const button = h("button", { type: "submit" }, "Save schedule");
  const summary = h("p", { class: "muted", id: "schedule-summary" }, scheduleText(channel));
  const form = h("form", { class: "card", "aria-label": "Schedule" },
    h("h2", {}, "Schedule"),
    summary,
    h("div", { class: "grid" },
      field("Starts", h("input", { name: "scheduledStart", type: "datetime-local", value: toLocalInput(channel.scheduledStart) }),
        `Your local time (${tz}); empty: no start`),
      field("Ends", h("input", { name: "scheduledEnd", type: "datetime-local", value: toLocalInput(channel.scheduledEnd) }),
        "Empty: no end"),
      field("Repeat", select("scheduleRepeat", [["none", "Once"], ["daily", "Every day"], ["weekly", "Every week"]],
        channel.scheduleRepeat || "none"))),
    checkbox("loop", "Loop: start the queue again after its last item", Boolean(channel.loop)),
    formError(), button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const f = form.elements;
    act(button, form, async () => {
      const wanted = {
        loop: f.loop.checked,
        scheduleRepeat: f.scheduleRepeat.value,
        scheduledStart: fromLocalInput(f.scheduledStart.value),
        scheduledEnd: fromLocalInput(f.scheduledEnd.value),
      };
      const body = {};
      for (const [name, value] of Object.entries(wanted)) {
        const was = name.startsWith("scheduled") ? fromLocalInput(toLocalInput(channel[name])) : channel[name] ?? null;
        if (value !== was) body[name] = value;
      }
      if (!Object.keys(body).length) {
        notice("Nothing changed");
        return;
      }
      channel = await api.patch(`/v1/live-streams/${channel.streamId}`, body);
      summary.textContent = scheduleText(channel);
      notice("Schedule saved");
      onSaved(channel);
    });
  });
  return form;
}

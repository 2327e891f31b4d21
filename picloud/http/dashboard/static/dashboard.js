// PiCloud dashboard: small improvements on pages that work without script.
// No inline handlers (the Content-Security-Policy allows only this file).
"use strict";

// A form with data-confirm asks before it posts (delete, revoke, bulk replay).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm) {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  }
});

// The source editor: line numbers that follow the text, and the line a
// validation error names marked and given the caret.
function setUpEditor(box) {
  const area = box.querySelector("textarea");
  const gutter = box.querySelector(".gutter");
  const bad = Number(area.dataset.errorLine || 0);
  const draw = () => {
    const count = area.value.split("\n").length;
    gutter.replaceChildren();
    for (let n = 1; n <= count; n += 1) {
      const span = document.createElement("span");
      span.textContent = String(n);
      if (n === bad) span.className = "bad";
      gutter.append(span, "\n");
    }
    gutter.scrollTop = area.scrollTop;
  };
  area.addEventListener("input", draw);
  area.addEventListener("scroll", () => { gutter.scrollTop = area.scrollTop; });
  draw();
  if (bad > 0) {
    const lines = area.value.split("\n");
    const at = lines.slice(0, bad - 1).reduce((sum, line) => sum + line.length + 1, 0);
    area.focus();
    area.setSelectionRange(at, at + (lines[bad - 1] || "").length);
  }
}

// The event stream's live tail: server-sent events appended as rows.
function row(data) {
  const item = document.createElement("li");
  item.className = "event fresh";
  item.dataset.version = String(data.version);
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  const parts = [["version", "#" + data.version], ["time", data.at], ["type", data.type], ["summary", data.summary]];
  for (const [cls, text] of parts) {
    const part = document.createElement(cls === "type" ? "code" : "span");
    part.className = cls;
    part.textContent = text;
    summary.append(part, " ");
  }
  const body = document.createElement("pre");
  body.className = "json";
  body.textContent = data.data;
  const meta = document.createElement("pre");
  meta.className = "json meta";
  meta.textContent = data.meta;
  details.append(summary, body, meta);
  item.append(details);
  return item;
}

function setUpTail(list) {
  const status = document.getElementById("tail-status");
  const say = (text) => { if (status) status.textContent = text; };
  const source = new EventSource(list.dataset.live);
  source.addEventListener("open", () => say("Live tail: connected."));
  source.addEventListener("error", () => say("Live tail: reconnecting…"));
  source.addEventListener("app-event", (message) => {
    const data = JSON.parse(message.data);
    if (list.querySelector(`[data-version="${data.version}"]`)) return;
    list.append(row(data));
    const none = document.getElementById("no-events");
    if (none) none.remove();
    while (list.children.length > 500) list.firstElementChild.remove();
  });
  source.addEventListener("ended", (message) => {
    // Signed out or no longer allowed: stop rather than reconnect forever.
    // (An app one may no longer see answers as an absent one: not_found.)
    if (["unauthenticated", "forbidden", "not_found"].includes(message.data)) {
      source.close();
      say("Live tail: stopped (" + message.data + "). Reload the page.");
    }
  });
  window.addEventListener("pagehide", () => source.close());
}

document.querySelectorAll("[data-editor]").forEach(setUpEditor);
document.querySelectorAll("[data-live]").forEach(setUpTail);

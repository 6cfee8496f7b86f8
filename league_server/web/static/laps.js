// Every-lap page: after each server-sent event, fetch this same page again and swap in its lap section,
// so the table is always the server's rendering (escaped by Jinja2); nothing is formatted here.
"use strict";

(function () {
  const section = document.querySelector("[data-laps]");
  if (!section) return;
  const eventsUrl = section.dataset.eventsUrl;
  let fetching = false;
  let pending = false;

  function setStatus(text, state) {
    const el = document.querySelector("[data-laps] [data-live-status]");
    if (!el) return;
    el.textContent = text;
    el.dataset.state = state;
  }

  async function refresh() {
    if (fetching) {
      pending = true;
      return;
    }
    fetching = true;
    try {
      do {
        pending = false;
        const response = await fetch(window.location.href, { cache: "no-store" });
        if (!response.ok) throw new Error("laps page request failed: HTTP " + response.status);
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = doc.querySelector("[data-laps]");
        if (fresh) document.querySelector("[data-laps]").replaceChildren(...fresh.childNodes);
        setStatus("live", "live");
      } while (pending);
    } catch (err) {
      setStatus("update failed — retrying", "error");
      setTimeout(refresh, 2000);
    } finally {
      fetching = false;
    }
  }

  let opened = false;
  function connect() {
    const source = new EventSource(eventsUrl);
    source.onopen = function () {
      setStatus("live", "live");
      if (opened) refresh(); // reconnected: laps may have arrived meanwhile
      opened = true;
    };
    source.onmessage = function () {
      refresh();
    };
    source.onerror = function () {
      setStatus("reconnecting…", "down");
      // After an HTTP error EventSource stops for good (see leaderboard.js): start a new one later.
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 10000);
    };
  }
  connect();
})();

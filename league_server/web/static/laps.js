// Every-lap page: the server pushes the laps stored or edited since the page was rendered (event "laps" on
// /races/{id}/events?laps=1). Rows are updated in place by lap id; the newest page also takes new laps at the
// top and keeps its page size (the "older" link follows). The cells come formatted from the server
// (league_server/web/formatting.py lap_cells, the same as the rendered rows) and go in with textContent only.
// "resync" (the page fell too far behind, or the race's rules changed): reload the page.
"use strict";

(function () {
  const section = document.querySelector("[data-laps]");
  if (!section) return;
  const eventsUrl = section.dataset.eventsUrl;
  const newest = section.dataset.newest === "1";
  const pageSize = Number(section.dataset.pageSize || 100);
  const rowsEl = section.querySelector("[data-laps-rows]");
  const emptyEl = section.querySelector("[data-laps-empty]");
  const totalEl = section.querySelector("[data-lap-total]");
  const statusEl = section.querySelector("[data-live-status]");
  const RECONNECT_AFTER_HTTP_ERROR_MS = 10000;

  function setStatus(text, state) {
    if (!statusEl) return;
    statusEl.textContent = text;
    statusEl.dataset.state = state;
  }

  function row(lap) {
    const tr = document.createElement("tr");
    tr.className = lap.valid ? "valid" : "invalid";
    tr.dataset.lapId = String(lap.lap_id);
    for (const [className, text] of lap.cells) {
      const td = document.createElement("td");
      td.className = className;
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }

  function lapId(tr) {
    return Number(tr.dataset.lapId);
  }

  // The page shows the laps between its oldest and newest row (all newer ones too, on the newest page).
  function onThisPage(id) {
    const first = rowsEl.firstElementChild;
    const last = rowsEl.lastElementChild;
    if (!first) return newest;
    return id >= lapId(last) && (newest || id <= lapId(first));
  }

  function insertInOrder(tr, id) {
    const after = Array.from(rowsEl.children).find((other) => lapId(other) < id);
    rowsEl.insertBefore(tr, after || null);
  }

  // Dropped off the bottom of the newest page: its "older" links now start below the new last row.
  function keepPageSize() {
    let trimmed = false;
    while (rowsEl.children.length > pageSize) {
      rowsEl.lastElementChild.remove();
      trimmed = true;
    }
    if (!trimmed) return;
    const href = window.location.pathname + "?before=" + lapId(rowsEl.lastElementChild);
    for (const pager of section.querySelectorAll(".pager")) {
      let older = pager.querySelector('[data-page="older"]');
      if (!older) {
        older = document.createElement("a");
        older.dataset.page = "older";
        older.rel = "next";
        older.textContent = "older ›";
        pager.append(older);
      }
      older.href = href;
    }
  }

  function apply(message) {
    if (message.resync) {
      window.location.reload();
      return;
    }
    for (const lap of message.laps) {
      const existing = rowsEl.querySelector('tr[data-lap-id="' + lap.lap_id + '"]');
      if (lap.deleted) {
        if (existing) existing.remove();
      } else if (existing) {
        existing.replaceWith(row(lap));
      } else if (onThisPage(lap.lap_id)) {
        insertInOrder(row(lap), lap.lap_id);
      }
    }
    if (newest) keepPageSize();
    if (message.laps.length && totalEl) totalEl.textContent = Number(message.total).toLocaleString("en");
    if (emptyEl) emptyEl.hidden = rowsEl.children.length > 0;
  }

  function connect() {
    // Reconnects send the last event id (the data version) themselves: the server sends what was missed.
    const source = new EventSource(eventsUrl);
    source.addEventListener("laps", function (message) {
      setStatus("live", "live");
      apply(JSON.parse(message.data));
    });
    source.onopen = function () {
      setStatus("live", "live");
    };
    source.onerror = function () {
      setStatus("reconnecting…", "down");
      // After an HTTP error EventSource stops for good (see leaderboard.js): start a new one later.
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, RECONNECT_AFTER_HTTP_ERROR_MS);
    };
  }
  connect();
})();

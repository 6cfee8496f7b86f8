// Live leaderboard: fetches the JSON leaderboard (league_server.ranking, via GET /api/races/{id}/leaderboard)
// when its event stream opens, then takes the new leaderboards the server pushes on that stream
// (/races/{id}/events?leaderboard=1, computed once per burst of laps for all watchers). No ranking happens here:
// the rows are drawn in the order and with the values the server sends. Text goes in with textContent only
// (racer and team names are user input). Highlights: an entry whose best lap improved is marked "pb"
// (green); the one holding a new overall best lap is marked "ob" (purple), for data-highlight-ms.
// The big screen asks the same stream for more (data-stream-events="laps track"): those events, and each new
// leaderboard, are handed on as "pitlane:<name>" DOM events on document (bigscreen.js draws them).
"use strict";

(function () {
  const root = document.querySelector("[data-leaderboard]");
  if (!root) return;

  const apiUrl = root.dataset.apiUrl;
  const eventsUrl = root.dataset.eventsUrl;
  const highlightMs = Number(root.dataset.highlightMs || 5000);
  const rowsEl = root.querySelector("[data-board-rows]");
  const tableEl = root.querySelector("[data-board-table]");
  // a virtual race's page: a column with each entry's model's robustness (_board.html's show_robustness)
  const showRobustness = Boolean(tableEl && tableEl.dataset.robustness === "yes");
  const emptyEl = root.querySelector("[data-board-empty]");
  const statusEl = root.querySelector("[data-live-status]");
  const MIN_REFETCH_GAP_MS = 250; // at most 4 refetches per second however fast laps arrive
  const EPS_S = 1e-9;
  const RECONNECT_AFTER_HTTP_ERROR_MS = 10000;

  let previous = null; // last leaderboard received
  const highlights = new Map(); // entry key -> {kind: "pb" | "ob", until: epoch ms}
  let fetching = false;
  let pending = false;
  let lastFetchAt = 0;
  let expiryTimer = null;

  const streamEvents = (root.dataset.streamEvents || "").split(" ").filter(Boolean);

  // Mirrors league_server/web/formatting.py (seconds, gap, gap_ahead, position, ranking_value): units are in
  // the column headers.
  function seconds(v) {
    return v === null || v === undefined ? "—" : Number(v).toFixed(3);
  }
  function behind(gapS, gapLaps) {
    if (gapLaps) return "+" + gapLaps + (gapLaps === 1 ? " lap" : " laps");
    return gapS === null || gapS === undefined ? "—" : "+" + Number(gapS).toFixed(3);
  }
  function gap(e) {
    if (e.position === null || e.position === undefined || e.position === 1) return "—";
    return behind(e.gap_s, e.gap_laps);
  }
  function gapAhead(e) {
    if (e.position === null || e.position === undefined || e.position === 1) return "—";
    return behind(e.gap_ahead_s, e.gap_ahead_laps);
  }
  function position(e) {
    if (e.status === "dnf") return "DNF";
    return e.position === null || e.position === undefined ? "—" : String(e.position);
  }
  function carNumber(n) {
    return n === null || n === undefined ? "" : String(n);
  }
  // "fragile 83 %": the verdict and clean-lap completion of the entry's model (formatting.robustness_label)
  function robustnessLabel(badge) {
    if (!badge) return "—";
    return badge.verdict + " " + Math.round(100 * badge.completion) + "\u00a0%";
  }
  // The racer cell's second line, shown where the secondary columns give way (phones).
  function subline(e) {
    const parts = [];
    if (showRobustness && e.robustness) parts.push(robustnessLabel(e.robustness)); // first: the line may be cut
    if (e.laps) parts.push(e.laps + (e.laps === 1 ? " lap" : " laps") + " · last " + seconds(e.last_lap_s) + " s");
    if (e.team) parts.push(e.team);
    return parts.join(" · ");
  }
  function rankingValue(e, method) {
    if (method === "most_laps_in") {
      return e.counted_laps === null || e.counted_laps === undefined ? "—" : String(e.counted_laps);
    }
    return seconds(e.ranking_value_s);
  }
  function key(entry) {
    return String(entry.car_id);
  }
  // Whose best lap a highlight follows: the entry's racer (entries are one per racer; a virtual race's
  // entries all drive the league's simulator car), else its car.
  function entryKey(entry) {
    return entry.racer_id === null || entry.racer_id === undefined ? "car:" + entry.car_id : "racer:" + entry.racer_id;
  }
  function setStatus(text, state) {
    if (!statusEl) return;
    statusEl.textContent = text;
    statusEl.dataset.state = state;
  }
  function overallBest(board) {
    let best = null;
    for (const e of board.entries) {
      if (e.best_lap_s !== null && e.best_lap_s !== undefined && (best === null || e.best_lap_s < best)) {
        best = e.best_lap_s;
      }
    }
    return best;
  }

  // Compare two consecutive leaderboards; mark entries whose best lap improved.
  function detectBests(before, after) {
    if (!before) return;
    const beforeBest = new Map(before.entries.map((e) => [entryKey(e), e.best_lap_s]));
    const oldOverall = overallBest(before);
    const newOverall = overallBest(after);
    const until = Date.now() + highlightMs;
    for (const e of after.entries) {
      if (e.best_lap_s === null || e.best_lap_s === undefined) continue;
      const was = beforeBest.get(entryKey(e));
      const improved = was === null || was === undefined || e.best_lap_s < was - EPS_S;
      if (!improved) continue;
      const overall = e.best_lap_s === newOverall && (oldOverall === null || e.best_lap_s < oldOverall - EPS_S);
      if (overall) {
        // One overall best at a time: an earlier purple that was just beaten stays a (green) personal best.
        for (const mark of highlights.values()) if (mark.kind === "ob") mark.kind = "pb";
      }
      highlights.set(entryKey(e), { kind: overall ? "ob" : "pb", until: until });
    }
  }

  function cell(className, text) {
    const td = document.createElement("td");
    td.className = className;
    td.textContent = text;
    return td;
  }
  function span(className, text) {
    const el = document.createElement("span");
    el.className = className;
    el.textContent = text;
    return el;
  }
  // The robustness cell: the verdict as a coloured badge, the card's summary as its title; "—" without one.
  function robustnessCell(e) {
    const td = document.createElement("td");
    td.className = "robust";
    const badge = e.robustness;
    const mark = span(badge ? "robust-badge" : "robust-none", robustnessLabel(badge));
    if (badge) mark.dataset.verdict = badge.verdict;
    mark.title = badge ? badge.summary : "not measured: the model's card has no robustness";
    td.append(mark);
    return td;
  }
  function racerCell(e) {
    const td = document.createElement("td");
    td.className = "racer";
    td.append(span("name", e.racer || e.car_id), span("sub", subline(e)));
    return td;
  }

  function render(board) {
    const now = Date.now();
    const rows = [];
    for (const e of board.entries) {
      const tr = document.createElement("tr");
      tr.dataset.key = key(e);
      tr.dataset.status = e.status || "ranked";
      const mark = highlights.get(entryKey(e));
      if (mark && mark.until > now) tr.classList.add(mark.kind);
      tr.append(
        cell("num pos", position(e)),
        cell("num no", carNumber(e.car_number)),
        racerCell(e),
        cell("team", e.team || ""),
        ...(showRobustness ? [robustnessCell(e)] : []),
        cell("num value", rankingValue(e, board.ranking)),
        cell("num gap", gap(e)),
        cell("num ahead", gapAhead(e)),
        cell("num laps", String(e.laps)),
        cell("num last", seconds(e.last_lap_s))
      );
      rows.push(tr);
    }
    rowsEl.replaceChildren(...rows);
    if (emptyEl) emptyEl.hidden = board.entries.length > 0;
    scheduleExpiry(now);
  }

  // Re-draw when the earliest highlight runs out, so the colour goes away on time.
  function scheduleExpiry(now) {
    let next = null;
    for (const [k, mark] of highlights) {
      if (mark.until <= now) highlights.delete(k);
      else if (next === null || mark.until < next) next = mark.until;
    }
    if (expiryTimer !== null) clearTimeout(expiryTimer);
    expiryTimer = next === null ? null : setTimeout(() => previous && render(previous), next - now + 20);
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
        const wait = lastFetchAt + MIN_REFETCH_GAP_MS - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        lastFetchAt = Date.now();
        const response = await fetch(apiUrl, { cache: "no-store", headers: { Accept: "application/json" } });
        if (!response.ok) throw new Error("leaderboard request failed: HTTP " + response.status);
        apply(await response.json());
      } while (pending);
    } catch (err) {
      setStatus("update failed — retrying", "error");
      setTimeout(refresh, 2000);
    } finally {
      fetching = false;
    }
  }

  // A leaderboard pushed by the server (the same JSON as the API, computed once for every watcher).
  function apply(board) {
    if (previous && Date.parse(board.updated_at) < Date.parse(previous.updated_at)) return; // older than shown
    detectBests(previous, board);
    previous = board;
    render(board);
    document.dispatchEvent(new CustomEvent("pitlane:leaderboard", { detail: board }));
  }

  function connect() {
    const source = new EventSource(eventsUrl);
    source.addEventListener("leaderboard", function (message) {
      setStatus("live", "live");
      apply(JSON.parse(message.data));
    });
    for (const name of streamEvents) {
      source.addEventListener(name, function (message) {
        document.dispatchEvent(new CustomEvent("pitlane:" + name, { detail: JSON.parse(message.data) }));
      });
    }
    source.onopen = function () {
      setStatus("live", "live");
      refresh(); // also covers laps that arrived while the stream was down
    };
    source.onerror = function () {
      setStatus("reconnecting…", "down");
      // EventSource reconnects by itself after a dropped stream (the server sends retry:), but gives up for
      // good on an HTTP error (e.g. 503 when the server has too many streams): then start a new one later.
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, RECONNECT_AFTER_HTTP_ERROR_MS);
    };
  }

  // Big screen: scroll the board slowly when it is taller than its box, pause at both ends, jump back.
  function autoScroll(box) {
    const STEP_PX = 1;
    const TICK_MS = 30;
    const PAUSE_MS = 3000;
    let pauseUntil = Date.now() + PAUSE_MS;
    let rewind = false;
    setInterval(function () {
      const max = box.scrollHeight - box.clientHeight;
      const now = Date.now();
      if (max <= 0 || now < pauseUntil) return;
      if (rewind) {
        box.scrollTop = 0;
        rewind = false;
        pauseUntil = now + PAUSE_MS;
      } else if (box.scrollTop >= max - 1) {
        rewind = true;
        pauseUntil = now + PAUSE_MS;
      } else {
        box.scrollTop += STEP_PX;
      }
    }, TICK_MS);
  }

  refresh();
  connect();
  const scrollBox = root.querySelector("[data-scroll]");
  if (root.hasAttribute("data-autoscroll") && scrollBox) autoScroll(scrollBox);
})();

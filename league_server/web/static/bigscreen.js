// Big screen extras beside the leaderboard: the race clock, the cars on track and the last-lap ticker.
// Their data comes on leaderboard.js's event stream, handed on as "pitlane:track", "pitlane:laps" and
// "pitlane:leaderboard" events. Text goes in with textContent only (racer names are user input).
"use strict";

(function () {
  const TICKER_LAPS = 6;
  const clockEl = document.querySelector("[data-clock]");
  const trackEl = document.querySelector("[data-track]");
  const trackEmptyEl = document.querySelector("[data-track-empty]");
  const tickerEl = document.querySelector("[data-ticker]");

  function span(className, text) {
    const el = document.createElement("span");
    el.className = className;
    el.textContent = text;
    return el;
  }
  function carNumber(n) {
    return n === null || n === undefined ? "" : String(n);
  }

  // ---- race clock: mirrors formatting.race_clock / duration; the page's server time corrects this clock.
  let windowStart = null;
  let windowEnd = null;
  let skewMs = 0;
  function parseTime(text) {
    return text ? Date.parse(text) : null;
  }
  function duration(totalS) {
    const whole = Math.max(0, Math.ceil(totalS));
    const hours = Math.floor(whole / 3600);
    const minutes = Math.floor((whole % 3600) / 60);
    const secs = whole % 60;
    const mm = hours ? String(minutes).padStart(2, "0") : String(minutes);
    return (hours ? hours + ":" : "") + mm + ":" + String(secs).padStart(2, "0");
  }
  function raceClock(nowMs) {
    if (windowStart !== null && nowMs < windowStart) {
      return ["before", "starts in", duration((windowStart - nowMs) / 1000)];
    }
    if (windowEnd !== null && nowMs >= windowEnd) return ["finished", "race", "finished"];
    if (windowEnd !== null) return ["running", "time left", duration((windowEnd - nowMs) / 1000)];
    if (windowStart !== null) return ["running", "race", "running"];
    return null;
  }
  function tickClock() {
    const shown = raceClock(Date.now() + skewMs);
    clockEl.hidden = shown === null;
    if (shown === null) return;
    clockEl.dataset.state = shown[0];
    clockEl.querySelector("[data-clock-label]").textContent = shown[1];
    clockEl.querySelector("[data-clock-time]").textContent = shown[2];
  }
  if (clockEl) {
    windowStart = parseTime(clockEl.dataset.windowStart);
    windowEnd = parseTime(clockEl.dataset.windowEnd);
    skewMs = Number(clockEl.dataset.serverNow || Date.now()) - Date.now();
    tickClock();
    setInterval(tickClock, 250);
    document.addEventListener("pitlane:leaderboard", function (event) {
      windowStart = parseTime(event.detail.window_start);
      windowEnd = parseTime(event.detail.window_end);
      tickClock();
    });
  }

  // ---- on track now: the list the server pushes whenever it changes.
  const TRACK_NAMES_UP_TO = 5; // more cars on track: numbers only (see pitlane.css)
  function trackCar(car) {
    const li = document.createElement("li");
    li.className = "track-car";
    li.dataset.state = car.state;
    li.append(span("car-no", carNumber(car.number)), span("track-name", car.racer || car.car_id));
    return li;
  }
  if (trackEl) {
    document.addEventListener("pitlane:track", function (event) {
      trackEl.replaceChildren(...event.detail.map(trackCar));
      trackEl.toggleAttribute("data-many", event.detail.length > TRACK_NAMES_UP_TO);
      if (trackEmptyEl) trackEmptyEl.hidden = event.detail.length > 0;
    });
  }

  // ---- ticker: the newest laps first; a marshal's edit updates (or removes) a lap already shown.
  function tick(lap) {
    const li = document.createElement("li");
    li.className = "tick";
    li.dataset.lapId = String(lap.lap_id);
    li.dataset.valid = lap.valid ? "yes" : "no";
    li.append(span("car-no", carNumber(lap.car_number)), span("tick-name", lap.racer), span("tick-time", lap.counted));
    return li;
  }
  function shownIds() {
    return Array.from(tickerEl.children, (li) => Number(li.dataset.lapId));
  }
  function applyLaps(message) {
    if (message.resync) return; // the ticker is best effort: the next laps refill it
    const oldest = shownIds().reduce((a, b) => Math.min(a, b), Infinity);
    const full = tickerEl.children.length >= TICKER_LAPS;
    const laps = message.laps.slice().sort((a, b) => a.lap_id - b.lap_id);
    for (const lap of laps) {
      const existing = tickerEl.querySelector('[data-lap-id="' + lap.lap_id + '"]');
      if (lap.deleted) {
        if (existing) existing.remove();
      } else if (existing) {
        existing.replaceWith(tick(lap));
      } else if (!full || lap.lap_id > oldest) {
        const newer = Array.from(tickerEl.children).find((li) => Number(li.dataset.lapId) < lap.lap_id);
        tickerEl.insertBefore(tick(lap), newer || null);
      }
    }
    while (tickerEl.children.length > TICKER_LAPS) tickerEl.lastElementChild.remove();
  }
  if (tickerEl) {
    document.addEventListener("pitlane:laps", function (event) {
      applyLaps(event.detail);
    });
  }
})();

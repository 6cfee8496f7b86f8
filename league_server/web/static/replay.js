// Replays and the ghost race of a virtual race: each evaluation's drive (GET /api/races/{id}/replays/{sid},
// a contracts.virtual_race.Replay) animated on a canvas, every car on the same clock, in real time.
// Written by hand: it draws a few hundred line segments per frame; no charting library does "cars on a track".
(function () {
  "use strict";

  const root = document.querySelector("[data-replay]");
  if (!root) return;
  const canvas = root.querySelector("[data-canvas]");
  const ctx = canvas.getContext("2d");
  const legend = root.querySelector("[data-legend] tbody");
  const FLOOR = "#cfd8c6", ROAD = "#5a5a5a", TAPE = "#ffffff", OFF = "#dc1e1e";
  // the viewer's speed colours (sim/viewer/draw.py): slow blue, cyan, green, yellow, fast red
  const STOPS = [[45, 75, 235], [0, 190, 235], [40, 205, 70], [250, 215, 0], [235, 35, 35]];
  const CAR_COLOURS = ["#ffb020", "#00b7ff", "#ff4fa3", "#8cff4f", "#b98cff", "#ffffff", "#ff7b39", "#3fffd2"];
  const state = { cars: [], t0: 0, frame: 0, done: false };
  window.pitlaneReplay = state; // what a test (or a curious racer) can read: the frame shown, the cars

  function speedColour(speed, top) {
    const t = Math.max(0, Math.min(1, speed / Math.max(top, 1e-9))) * (STOPS.length - 1);
    const i = Math.min(STOPS.length - 2, Math.floor(t)), f = t - i;
    const c = STOPS[i].map((v, k) => Math.round(v + (STOPS[i + 1][k] - v) * f));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  function view(replay) {
    const pts = replay.outer.concat(replay.inner);
    const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
    const lo = [Math.min(...xs), Math.min(...ys)], hi = [Math.max(...xs), Math.max(...ys)];
    const margin = 24;
    const scale = Math.min((canvas.width - 2 * margin) / (hi[0] - lo[0]), (canvas.height - 2 * margin) / (hi[1] - lo[1]));
    const cx = (lo[0] + hi[0]) / 2, cy = (lo[1] + hi[1]) / 2;
    return (x, y) => [canvas.width / 2 + (x - cx) * scale, canvas.height / 2 - (y - cy) * scale];
  }

  function polygon(points, to) {
    ctx.beginPath();
    points.forEach((p, i) => { const [u, v] = to(p[0], p[1]); if (i) ctx.lineTo(u, v); else ctx.moveTo(u, v); });
    ctx.closePath();
  }

  function drawTrack(replay, to) {
    ctx.fillStyle = FLOOR; ctx.fillRect(0, 0, canvas.width, canvas.height);
    polygon(replay.outer, to); ctx.fillStyle = ROAD; ctx.fill();
    polygon(replay.inner, to); ctx.fillStyle = FLOOR; ctx.fill();
    ctx.strokeStyle = TAPE; ctx.lineWidth = 3;
    polygon(replay.outer, to); ctx.stroke();
    polygon(replay.inner, to); ctx.stroke();
  }

  function drawCar(car, index, frame, to) {
    const r = car.replay, last = Math.min(frame, r.x_m.length - 1);
    const off = new Set(r.off_track);
    ctx.lineWidth = 3;
    for (let i = Math.max(1, last - 45); i <= last; i++) { // the last 3 s of path, coloured by speed
      if (off.has(i - 1)) continue; // put back on the track: no line across the jump
      ctx.strokeStyle = speedColour(r.speed_mps[i], r.max_speed_mps);
      ctx.beginPath(); ctx.moveTo(...to(r.x_m[i - 1], r.y_m[i - 1])); ctx.lineTo(...to(r.x_m[i], r.y_m[i])); ctx.stroke();
    }
    ctx.strokeStyle = OFF; ctx.lineWidth = 3;
    for (const i of r.off_track) {
      if (i > last) break;
      const [u, v] = to(r.x_m[i], r.y_m[i]);
      ctx.beginPath(); ctx.moveTo(u - 6, v - 6); ctx.lineTo(u + 6, v + 6); ctx.moveTo(u - 6, v + 6); ctx.lineTo(u + 6, v - 6); ctx.stroke();
    }
    const [u, v] = to(r.x_m[last], r.y_m[last]);
    ctx.fillStyle = CAR_COLOURS[index % CAR_COLOURS.length];
    ctx.strokeStyle = "#111"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.arc(u, v, 8, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
  }

  function lapClock(r, frame) {
    const last = Math.min(frame, r.x_m.length - 1), lap = r.lap[last];
    let start = 0;
    while (start < r.lap.length && r.lap[start] !== lap) start++;
    const finished = frame >= r.x_m.length;
    return { lap: lap + 1, seconds: finished ? null : (last - start + 1) * r.dt_s };
  }

  function updateLegend(frame) {
    state.cars.forEach((car, index) => {
      const clock = lapClock(car.replay, frame);
      const laps = car.replay.laps_s.filter((s) => s !== null && s !== undefined);
      const row = car.row;
      row.children[1].textContent = String(clock.lap);
      row.children[2].textContent = clock.seconds === null ? "finished" : clock.seconds.toFixed(2);
      row.children[3].textContent = laps.length ? Math.min(...laps).toFixed(2) : "–";
    });
  }

  function tick(now) {
    if (!state.cars.length) return;
    const r0 = state.cars[0].replay;
    const frame = Math.floor((now - state.t0) / 1000 / r0.dt_s);
    state.frame = frame;
    const to = state.to;
    drawTrack(r0, to);
    state.cars.forEach((car, index) => drawCar(car, index, frame, to));
    updateLegend(frame);
    state.done = state.cars.every((car) => frame >= car.replay.x_m.length);
    if (!state.done) requestAnimationFrame(tick);
  }

  function addRow(entry, index) {
    const row = document.createElement("tr");
    const name = document.createElement("td");
    const swatch = document.createElement("span");
    swatch.className = "swatch"; swatch.style.background = CAR_COLOURS[index % CAR_COLOURS.length];
    const link = document.createElement("a"); // every result links to its own replay
    link.href = `${location.pathname.replace(/\/(ghost|replays\/\d+)$/, "")}/replays/${entry.submission_id}`;
    link.textContent = entry.name;
    name.append(swatch, link);
    row.append(name);
    for (let k = 0; k < 3; k++) { const td = document.createElement("td"); td.className = "num"; row.append(td); }
    legend.append(row);
    return row;
  }

  async function start() {
    const entries = await (await fetch(root.dataset.listUrl)).json();
    const only = root.dataset.only;
    // one evaluation (any finished one, ranked or not), or every racer's ranked one
    const wanted = only
      ? [entries.find((e) => String(e.submission_id) === only) || { submission_id: Number(only), name: `evaluation ${only}` }]
      : entries;
    const responses = await Promise.all(wanted.map((e) => fetch(`${root.dataset.replayBase}/${e.submission_id}`)));
    const kept = wanted.filter((_, i) => responses[i].ok); // an evaluation that kept no replay is left out
    if (!kept.length) { root.querySelector("[data-empty]").hidden = false; return; }
    const replays = await Promise.all(responses.filter((r) => r.ok).map((r) => r.json()));
    state.cars = kept.map((entry, i) => ({ entry, replay: replays[i], row: addRow(entry, i) }));
    state.to = view(replays[0]);
    state.t0 = performance.now();
    requestAnimationFrame(tick);
  }

  root.querySelector("[data-restart]").addEventListener("click", () => {
    state.t0 = performance.now();
    if (state.done) { state.done = false; requestAnimationFrame(tick); }
  });
  start();
})();

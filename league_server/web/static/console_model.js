// The console's watch page of one model (/console/models/{id}): the model from GET /api/console/models/{id}
// (ModelOut + recipe + progress_history), then live TrainingProgress lines and status changes from its event
// stream (`event: progress`, `event: status`), drawn as uPlot charts (or, without uPlot, a table of the latest
// figures). A finished model shows its evaluation: the PNG, the laps, the parity summary, its robustness
// card (verdict, clean laps on held-out tracks, advice), the animated replay
// (replay.js, loaded once the replay exists), the car's archive and a one-click race submission. The owner can
// stop, share and remix; anyone who may read a shared model can remix it. Requests and elements go through
// console_api.js (window.pitlaneConsole): names are user input and only ever set as text.
(function () {
  "use strict";

  const root = document.querySelector("[data-model]");
  if (!root) return;
  const { api, el } = window.pitlaneConsole;
  const $ = (selector) => root.querySelector(selector);
  const base = `/api/console/models/${root.dataset.modelId}`;
  const FINAL = ["finished", "failed", "stopped"];
  const LIVE = ["queued", "running"];
  const HISTORY_ROWS = 12; // rows of the plain table shown when uPlot is not served
  const RECONNECT_MS = 5000; // after the server refused the stream (the browser retries other drops itself)
  const FOLLOW_MS = 3000; // how often a race submission's status is asked for
  const NO_PROGRESS = {
    draft: "A draft: not trained yet.",
    queued: "Waiting for a free worker: the curves start when training does.",
    running: "Starting: the curves start with the first progress report.",
    ended: "No training progress was reported.",
  };
  // pitlane.css's palette: axes and grid in the muted tones, one colour a series
  const MUTED = "#8d96a3", LINE = "#2a3039";
  const COLOURS = { reward: "#ffb020", completion: "#1fa855", lap: "#00b7ff", evalLap: "#c58cff", speed: "#ff7b39" };

  const state = {
    model: null, history: [], useCharts: false, charts: null, source: null, opened: false,
    clock: { base_s: 0, at_ms: 0 }, replayStarted: false, racesLoaded: false,
  };
  window.pitlaneConsoleModel = state; // what a test (or a curious racer) can read

  // ------------------------------------------------------------------------------------------ formatting

  const blank = (v) => v === null || v === undefined || Number.isNaN(v);
  const fixed = (v, digits) => (blank(v) ? "–" : Number(v).toFixed(digits));
  const count = (v) => (blank(v) ? "–" : Math.round(Number(v)).toLocaleString("en"));
  const unit = (text, u) => (text === "–" ? text : `${text}\u00a0${u}`); // never wrapped from its number
  function minSec(seconds) {
    if (blank(seconds)) return "–";
    const s = Math.max(0, Math.floor(seconds));
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
  }
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : word.endsWith("x") ? "es" : "s"}`;
  const modelUrl = (id) => `/console/models/${encodeURIComponent(id)}`;
  const post = (path, body) => api("POST", base + path, body);

  // ---------------------------------------------------------------------------------------- the header

  function renderHead(m) {
    $("[data-name]").textContent = m.name;
    document.title = `${m.name} · pitlane league`;
    renderBadge(m);

    const facts = [
      ["by ", m.owner], ["track ", m.track], ["observation ", m.observation],
      ["budget ", blank(m.budget_minutes) ? null : unit(Number(m.budget_minutes).toLocaleString("en"), "min")],
    ].filter(([, value]) => !blank(value));
    const parts = [];
    for (const [label, value] of facts) parts.push(parts.length ? " · " : "", label, el("strong", {}, value));
    parts.push(" · trained ", el("strong", { "data-elapsed": true }, minSec(elapsed())), " (min:s)");
    $("[data-facts]").replaceChildren(...parts);

    const lineage = [];
    if (m.parent) {
      lineage.push("remixed from ", el("a", { href: modelUrl(m.parent.id) }, m.parent.name));
      if (m.parent.author) lineage.push(" by ", el("span", { class: "cw-author" }, m.parent.author));
      lineage.push(" · ");
    }
    lineage.push(plural(Number(m.remixes || 0), "remix"));
    $("[data-lineage]").replaceChildren(...lineage);
    $("[data-lineage]").hidden = false;

    const reason = $("[data-reason]");
    reason.hidden = !m.reason && m.status !== "failed";
    reason.textContent = m.status === "failed" ? `Training failed: ${m.reason || "no reason given"}`
      : m.reason ? `${m.status}: ${m.reason}` : "";
    reason.dataset.state = m.status;
  }

  // The status, and while running the job's phase when it is not training (starting, exporting, evaluating).
  function renderBadge(m) {
    const badge = $("[data-status]");
    const p = state.history[state.history.length - 1] || m.progress;
    const phase = p && p.phase;
    badge.textContent = m.status === "running" && phase && phase !== "training" ? `running: ${phase}` : m.status;
    badge.dataset.state = m.status;
    badge.className = `model-status cw-badge status-${m.status}`;
  }

  // Training time: the server's figure, advanced by the wall clock while the job runs.
  function elapsed() {
    const m = state.model;
    if (!m) return null;
    if (m.status !== "running") return Number(m.training_s) > 0 ? Number(m.training_s) : state.clock.base_s;
    return state.clock.base_s + (performance.now() - state.clock.at_ms) / 1000;
  }

  function setClock(seconds) {
    if (blank(seconds) || seconds < state.clock.base_s) return;
    state.clock = { base_s: seconds, at_ms: performance.now() };
  }

  // ------------------------------------------------------------------------------------------ actions

  function note(text, kind) {
    const node = $("[data-action-note]");
    node.textContent = text;
    node.dataset.state = kind || "";
  }

  function renderActions(m) {
    const mine = Boolean(m.mine);
    $("[data-stop]").hidden = !(mine && LIVE.includes(m.status));
    const edit = $("[data-edit]");
    edit.hidden = !(mine && m.status === "draft");
    edit.href = `/console/models/new?from=${encodeURIComponent(m.id)}`;
    $("[data-share-wrap]").hidden = !mine;
    $("[data-share]").checked = Boolean(m.shared);
    $("[data-remix]").hidden = false;
    $("[data-remix]").textContent = mine ? "Remix (an editable copy)" : "Remix";
    if (m.files && m.files.recipe) $("[data-recipe-link]").href = m.files.recipe;
  }

  $("[data-stop]").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    note("stopping: the job exports and evaluates what it has learnt so far…", "busy");
    try {
      apply(await post("/stop"));
    } catch (error) {
      note(`could not stop: ${error.message}`, "error");
      button.disabled = false;
    }
  });

  $("[data-share]").addEventListener("change", async (event) => {
    const box = event.currentTarget;
    const shared = box.checked;
    box.disabled = true;
    try {
      const answer = await post("/share", { shared });
      state.model.shared = answer && typeof answer.shared === "boolean" ? answer.shared : shared;
      box.checked = state.model.shared;
      note(state.model.shared ? "shared: the league's gallery lists it" : "private: only you see it", "ok");
    } catch (error) {
      box.checked = !shared;
      note(`could not change sharing: ${error.message}`, "error");
    } finally {
      box.disabled = false;
    }
  });

  $("[data-remix]").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    note("making your copy…", "busy");
    try {
      const copy = await post("/remix");
      window.location.assign(`/console/models/new?from=${encodeURIComponent(copy.id)}`);
    } catch (error) {
      note(`could not remix: ${error.message}`, "error");
      button.disabled = false;
    }
  });

  // ---------------------------------------------------------------------------------------- progress

  // Merges progress lines into the history, in time order, one line per t_s (the page may see a line twice:
  // in the history it fetched and on the stream).
  function addProgress(lines) {
    const history = state.history;
    for (const p of lines) {
      if (!p || blank(p.t_s)) continue;
      const last = history[history.length - 1];
      if (!last || p.t_s > last.t_s) { history.push(p); continue; }
      const at = history.findIndex((q) => q.t_s >= p.t_s);
      if (history[at].t_s === p.t_s) history[at] = p; else history.splice(at, 0, p);
    }
    const last = history[history.length - 1];
    if (last) setClock(last.t_s);
  }

  function renderFigures() {
    const p = state.history[state.history.length - 1] || {};
    const figures = {
      steps: count(p.steps),
      steps_per_s: fixed(p.steps_per_s, 0),
      episodes: count(p.episodes),
      mean_reward: fixed(p.mean_reward, 1),
      lap_completion_pct: unit(fixed(p.lap_completion_pct, 0), "%"),
      best_lap_s: unit(fixed(p.best_lap_s, 2), "s"),
      best_eval_lap_s: unit(fixed(p.best_eval_lap_s, 2), "s"),
      eval_clean_laps: count(p.eval_clean_laps),
    };
    for (const [key, text] of Object.entries(figures)) $(`[data-fig="${key}"]`).textContent = text;
    const none = state.history.length === 0;
    $("[data-figures]").hidden = none;
    const empty = $("[data-no-progress]");
    empty.hidden = !none || !state.model;
    if (state.model) empty.textContent = NO_PROGRESS[state.model.status] || NO_PROGRESS.ended;
  }

  function renderProgress() {
    renderFigures();
    if (state.model) renderBadge(state.model);
    if (!state.history.length) return;
    // the charts appear with the first progress line (their width is known once they are shown)
    if (state.useCharts && !state.charts) state.charts = makeCharts();
    if (state.charts) drawCharts(); else drawTable();
  }

  function drawTable() {
    $("[data-history]").hidden = false;
    const rows = state.history.slice(-HISTORY_ROWS).reverse().map((p) => el("tr", {},
      [minSec(p.t_s), count(p.steps), fixed(p.steps_per_s, 0), count(p.episodes), fixed(p.mean_reward, 1),
        fixed(p.lap_completion_pct, 0), fixed(p.best_lap_s, 2), fixed(p.best_eval_lap_s, 2)]
        .map((text) => el("td", { class: "num" }, text))));
    $("[data-history-rows]").replaceChildren(...rows);
  }

  // ------------------------------------------------------------------------------------------- charts

  function axis(label, size) {
    return {
      label, size, labelSize: 18, stroke: MUTED, font: "12px system-ui, sans-serif", labelFont: "12px system-ui, sans-serif",
      grid: { stroke: LINE, width: 1 }, ticks: { stroke: LINE, width: 1, size: 5 },
    };
  }

  function series(label, stroke, extra) {
    return { label, stroke, width: 2, spanGaps: true, points: { size: 5, fill: stroke }, ...extra };
  }

  // One chart a figure; x: training time in minutes (the legend shows it as min:s under the cursor).
  const CHARTS = {
    reward: { y: "reward / episode", series: [series("mean reward", COLOURS.reward)],
      values: (h) => [h.map((p) => p.mean_reward ?? null)] },
    completion: { y: "% of episodes", range: [0, 100], series: [series("lap completion %", COLOURS.completion)],
      values: (h) => [h.map((p) => p.lap_completion_pct ?? null)] },
    lap: { y: "lap time (s)",
      series: [series("training best (s)", COLOURS.lap), series("evaluation best (s)", COLOURS.evalLap, { dash: [6, 4] })],
      values: (h) => [h.map((p) => p.best_lap_s ?? null), h.map((p) => p.best_eval_lap_s ?? null)] },
    speed: { y: "steps / s", series: [series("steps/s", COLOURS.speed)], values: (h) => [h.map((p) => p.steps_per_s ?? null)] },
  };

  function chartSize(host) {
    const narrow = window.innerWidth < 640;
    return { width: Math.max(200, Math.floor(host.clientWidth)), height: narrow ? 190 : 210 };
  }

  function chartData(spec) {
    return [state.history.map((p) => p.t_s / 60), ...spec.values(state.history)];
  }

  function makeCharts() {
    const wrap = $("[data-charts]");
    wrap.hidden = false;
    const charts = {};
    for (const [name, spec] of Object.entries(CHARTS)) {
      const host = $(`[data-chart="${name}"]`);
      const options = {
        ...chartSize(host),
        scales: { x: { time: false }, ...(spec.range ? { y: { range: spec.range } } : {}) },
        cursor: { drag: { x: false, y: false } }, // no zooming: a finger scrolls the page on a phone
        legend: { live: true },
        series: [{ label: "time", value: (u, v) => (blank(v) ? "–" : `${minSec(v * 60)} min:s`) }, ...spec.series],
        axes: [axis("training time (min)", 28), axis(spec.y, 50)],
      };
      charts[name] = { plot: new window.uPlot(options, chartData(spec), host), host, spec };
    }
    new ResizeObserver(() => {
      for (const chart of Object.values(charts)) chart.plot.setSize(chartSize(chart.host));
    }).observe(wrap);
    return charts;
  }

  function drawCharts() {
    for (const chart of Object.values(state.charts)) chart.plot.setData(chartData(chart.spec));
  }

  // ------------------------------------------------------------------------------------------ results

  function renderResults(m) {
    const files = m.files || {};
    const laps = Array.isArray(m.laps) ? m.laps : [];
    const show = Boolean(files.png || files.archive || files.replay || laps.length);
    $("[data-results]").hidden = !show;
    if (!show) return;
    const png = $("[data-eval-png]");
    if (files.png && png.getAttribute("src") !== files.png) png.src = files.png;
    png.hidden = !files.png;
    renderLaps(laps);
    renderParity(m.parity);
    renderRobustness(m.robustness);
    if (files.replay) startReplay(files.replay, m.name);
    // the car's files and race submission are the owner's (a shared model is remixed, not downloaded)
    const owner = Boolean(m.mine && files.archive);
    $("[data-car]").hidden = !owner;
    if (owner) $("[data-archive]").href = files.archive;
    $("[data-submit-form]").hidden = !owner;
    if (owner && !state.racesLoaded) loadRaces(m);
  }

  function renderLaps(laps) {
    const rows = laps.map((lap, i) => {
      const completed = lap.completed !== false;
      const clean = completed && Number(lap.offtrack || 0) === 0;
      const result = !completed ? `not completed (${unit(fixed(lap.progress, 0), "%")})`
        : lap.valid === false ? "completed, not valid" : clean ? "clean" : "completed";
      return el("tr", { dataset: { result: !completed ? "incomplete" : clean ? "clean" : "offtrack" } },
        el("td", { class: "num" }, i + 1),
        el("td", { class: "num" }, completed ? fixed(lap.lap_time_s, 2) : "–"),
        el("td", { class: "num" }, count(lap.offtrack ?? 0)),
        el("td", { class: "num" }, count(lap.resets ?? 0)),
        el("td", { class: "cw-lap-result" }, result));
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "5", class: "empty" }, "no evaluation laps")));
    $("[data-laps]").replaceChildren(...rows);
  }

  // The export's parity summary, as the training job's result gives it (trainer/job/finish.py
  // parity_summary): int8 against fp32 action agreement, whether int8 meets the export's targets, and the
  // closed-loop best lap of each exported file.
  function renderParity(parity) {
    const node = $("[data-parity]");
    if (!parity) { node.textContent = "No parity report."; return; }
    const rate = parity.int8_agreement;
    if (blank(rate)) { node.textContent = "Parity: no int8 model was compared with fp32."; return; }
    const parts = ["Parity, int8 vs fp32: the same action on ", el("strong", {}, unit((100 * rate).toFixed(2), "%")), " of frames"];
    if (typeof parity.int8_meets_targets === "boolean") {
      const ok = parity.int8_meets_targets;
      parts.push(" ", el("span", { class: ok ? "cw-ok" : "cw-bad" }, ok ? "meets the export's targets" : "misses the export's targets"));
    }
    const laps = parity.best_lap_s || {};
    if (!blank(laps.int8) && !blank(laps.fp32)) {
      parts.push(`; closed-loop best lap int8 ${unit(fixed(laps.int8, 2), "s")}, fp32 ${unit(fixed(laps.fp32, 2), "s")}`);
    }
    parts.push(".");
    node.replaceChildren(...parts);
  }

  // The exported card's robustness (league_server/robustness.py RobustnessOut; contracts.robustness): the
  // verdict, clean-lap completion (0-1) with its 95 % interval, each held-out track's clean laps and best lap
  // against the car's physical limit, and the card's advice; "not measured" with the contract's advice when
  // the card has none. Verdicts, summary and advice are the server's words, never rebuilt here.
  const pct = (share) => unit(fixed(blank(share) ? share : 100 * share, 0), "%");
  function renderRobustness(r) {
    const panel = $("[data-robustness]");
    panel.hidden = !r;
    if (!r) return;
    const measured = Boolean(r.measured && r.card);
    const badge = $("[data-robust-verdict]");
    badge.textContent = measured ? r.verdict : "not measured";
    badge.dataset.verdict = measured ? r.verdict : "none";
    $("[data-robust-figures]").hidden = !measured;
    $("[data-robust-table]").hidden = !measured;
    // the advice already holds the summary; a ready model has no advice: its summary then
    const advice = $("[data-robust-advice]");
    advice.textContent = r.advice || r.summary || "";
    advice.hidden = !advice.textContent;
    advice.dataset.verdict = badge.dataset.verdict;
    if (!measured) {
      $("[data-robust-what]").textContent = "This model's card has no robustness figures.";
      return;
    }
    const c = r.card;
    const where = c.held_out ? "DeepRacer tracks it never trained on" : "tracks, some of which it trained on";
    $("[data-robust-what]").textContent = `Clean laps: laps finished without leaving the track (on a real car, `
      + `leaving it is a crash), under the held-out ${c.randomization} perturbation on ${where}; `
      + `${plural(c.seeds, "seed")} × ${plural(c.laps_per_seed, "lap")} per track, driving ${c.model_file}.`;
    $("[data-robust-completion]").textContent = pct(c.completion);
    const [low, high] = c.completion_ci95 || [];
    $("[data-robust-ci]").textContent = blank(low) || blank(high) ? "–"
      : `${fixed(100 * low, 0)}–${fixed(100 * high, 0)}\u00a0%`;
    $("[data-robust-resets]").textContent = pct(c.completion_with_resets);
    $("[data-robust-shift]").textContent = c.randomization;
    const rows = (c.tracks || []).map((t) => el("tr", { dataset: { track: t.track } },
      el("td", {}, t.track),
      el("td", { class: "num" }, `${count(t.clean_laps)}\u00a0/\u00a0${count(t.attempted_laps)}`),
      el("td", { class: "num" }, `${pct(t.completion)} (${fixed(100 * t.ci_low, 0)}–${fixed(100 * t.ci_high, 0)})`),
      el("td", { class: "num" }, fixed(t.best_lap_s, 2)),
      el("td", { class: "num" }, blank(t.best_over_limit) ? "–" : `${fixed(t.best_over_limit, 2)}× the car's limit`)));
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "5", class: "empty" }, "no held-out tracks")));
    $("[data-robust-tracks]").replaceChildren(...rows);
  }

  // replay.js animates the element marked data-replay: one evaluation (data-only) fetched from
  // `${data-replay-base}/${data-only}`, named by an entry of the list at data-list-url. A model has one
  // replay and no list, so the list is a one-entry data: URL. Loaded here, once the replay exists, because
  // replay.js starts as soon as it runs.
  function startReplay(url, name) {
    if (state.replayStarted) return;
    state.replayStarted = true;
    const wrap = $("[data-replay-wrap]");
    const cut = url.lastIndexOf("/");
    const only = url.slice(cut + 1);
    wrap.dataset.replayBase = url.slice(0, cut);
    wrap.dataset.only = only;
    wrap.dataset.listUrl = `data:application/json,${encodeURIComponent(JSON.stringify([{ submission_id: only, name }]))}`;
    wrap.setAttribute("data-replay", "");
    wrap.hidden = false;
    // replay.js links each legend row to a race's replay page; a model's replay has none: keep the name only
    new MutationObserver(() => {
      for (const a of wrap.querySelectorAll("[data-legend] a")) a.replaceWith(el("span", {}, a.textContent));
    }).observe(wrap.querySelector("[data-legend] tbody"), { childList: true, subtree: true });
    document.body.append(el("script", { src: root.dataset.replayJs }));
  }

  // ----------------------------------------------------------------------------------- race submission

  async function loadRaces(m) {
    state.racesLoaded = true;
    const select = $("[data-races]");
    const button = $("[data-submit-button]");
    let races;
    try {
      const me = await api("GET", "/api/console/me");
      races = await api("GET", `/api/races?status=open&league_id=${encodeURIComponent(me.racer.league_id)}`);
    } catch (error) {
      select.replaceChildren(el("option", { value: "" }, `could not list the races: ${error.message}`));
      button.disabled = true;
      return;
    }
    // only virtual races take a model (where the server says which kind a race is)
    races = races.filter((r) => r.kind === undefined || r.kind === null || r.kind === "virtual");
    races.sort((a, b) => Number(b.track === m.track) - Number(a.track === m.track));
    const options = races.map((r) => el("option", { value: String(r.id) },
      `${r.name}${r.track ? ` · ${r.track}` : ""}${r.track === m.track ? " (this model's track)" : ""}`));
    if (!options.length) options.push(el("option", { value: "" }, "no open virtual race in your league"));
    select.replaceChildren(...options);
    button.disabled = races.length === 0;
  }

  function showSubmission(sub) {
    const result = $("[data-submit-result]");
    result.dataset.state = sub.status;
    let text = `submission ${sub.id}: ${sub.status}`;
    if (sub.status === "failed" && sub.reason) text += ` — ${sub.reason}`;
    if (sub.status === "finished") {
      const laps = (sub.laps || []).filter((lap) => lap.completed).map((lap) => lap.lap_time_s);
      text += `, ${plural(laps.length, "lap")}${laps.length ? `, best ${unit(Math.min(...laps).toFixed(2), "s")}` : ""}`;
    }
    result.replaceChildren(text, " · ", el("a", { href: `/races/${encodeURIComponent(sub.race_id)}` }, "race page"));
  }

  // The submission's progress (queued -> running -> finished or failed), from the racer's own list. A plain
  // fetch, not api(): a server whose list takes only the racer's bearer token answers 401 here, and api()
  // would take that for an ended session; the race page then shows how the evaluation ends.
  async function follow(sub) {
    while (!["finished", "failed"].includes(sub.status)) {
      await new Promise((resolve) => setTimeout(resolve, FOLLOW_MS));
      let mine;
      try {
        const response = await fetch("/api/submissions", { credentials: "same-origin" });
        if (!response.ok) return;
        mine = await response.json();
      } catch (error) {
        return;
      }
      const now = Array.isArray(mine) && mine.find((s) => s.id === sub.id);
      if (!now) return;
      sub = now;
      showSubmission(sub);
    }
  }

  $("[data-submit-form]").addEventListener("submit", async (event) => {
    event.preventDefault();
    const raceId = Number($("[data-races]").value);
    if (!raceId) return;
    const button = $("[data-submit-button]");
    const result = $("[data-submit-result]");
    button.disabled = true;
    result.dataset.state = "busy";
    result.textContent = "submitting: the server checks the model…";
    try {
      const sub = await post("/submit", { race_id: raceId });
      showSubmission(sub);
      follow(sub);
    } catch (error) {
      result.dataset.state = "refused";
      result.textContent = `refused: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  });

  // ------------------------------------------------------------------------------------- live updates

  function setLive(text, kind) {
    const node = $("[data-live-status]");
    node.textContent = text;
    node.dataset.state = kind;
  }

  function listen() {
    if (state.source || !state.model || !LIVE.includes(state.model.status)) return;
    setLive("connecting…", "connecting");
    const source = new EventSource(`${base}/events`);
    state.source = source;
    source.addEventListener("open", () => {
      setLive("live", "live");
      // the stream ends every so often and the browser reconnects: catch up on what was written meanwhile
      if (state.opened) refresh();
      state.opened = true;
    });
    source.addEventListener("progress", (event) => {
      addProgress([JSON.parse(event.data)]);
      if (state.model.status === "queued") state.model.status = "running"; // its first line: it started
      renderProgress();
    });
    source.addEventListener("status", (event) => onStatus(JSON.parse(event.data)));
    source.addEventListener("error", () => {
      if (state.source !== source) return;
      setLive("reconnecting…", "down");
      if (source.readyState === EventSource.CLOSED) { // refused (signed out, gone): try again later
        state.source = null;
        setTimeout(() => { state.opened = true; listen(); }, RECONNECT_MS);
      }
    });
  }

  function stopListening() {
    if (state.source) state.source.close();
    state.source = null;
    setLive("", "ended");
  }

  function onStatus(change) {
    if (!state.model || !change || !change.status) return;
    state.model.status = change.status;
    state.model.reason = change.reason ?? null;
    render(state.model);
    if (FINAL.includes(change.status)) {
      stopListening();
      refresh(); // the outcome: evaluation, laps, parity, files
    }
  }

  function render(m) {
    renderHead(m);
    renderActions(m);
    renderProgress();
    renderResults(m);
  }

  function apply(m) {
    state.model = { ...(state.model || {}), ...m };
    addProgress(m.progress_history || []);
    if (m.progress) addProgress([m.progress]);
    if (m.status === "running" && !state.history.length && !state.clock.at_ms) setClock(Number(m.training_s) || 0);
    render(state.model);
    if (LIVE.includes(m.status)) listen(); else if (state.source) stopListening();
  }

  async function refresh() {
    try {
      apply(await api("GET", base));
    } catch (error) {
      loadError(error);
    }
  }

  function loadError(error) {
    const node = $("[data-load-error]");
    node.hidden = false;
    node.textContent = error.status === 404
      ? "No such model here: it was deleted, or it is another racer's model they have not shared."
      : `Could not load the model: ${error.message}`;
    if (!state.model) {
      const badge = $("[data-status]");
      badge.textContent = "unavailable";
      badge.className = "model-status cw-badge status-failed";
    }
  }

  setInterval(() => {
    const node = root.querySelector("[data-elapsed]");
    if (node && state.model && state.model.status === "running") node.textContent = minSec(elapsed());
  }, 1000);

  state.useCharts = root.dataset.assetsOk === "yes" && typeof window.uPlot === "function";
  refresh();
})();

// The create page: a recipe built from a form. Loads the defaults (GET /api/console/defaults), the tracks (GET
// /api/console/tracks) and, with ?from=<id>, that model (GET /api/console/models/<id>): my draft is edited in
// place (PUT), anything else starts a new model from its recipe. "Check" posts the recipe to
// /api/console/check and shows each problem at its line of the reward function (or at its field); "Train"
// and "Save draft" create (POST /api/console/models {recipe, train}) or update the draft. Keys the form does
// not edit (car, seed, format, ...) are kept from the recipe it started from.
(function () {
  "use strict";
  const form = document.querySelector("[data-recipe-editor]");
  if (!form) return;
  const { api, ApiError, el } = window.pitlaneConsole;
  const $ = (selector) => form.querySelector(selector);
  const $$ = (selector) => Array.from(form.querySelectorAll(selector));
  const contract = JSON.parse(form.dataset.contractDefaults);

  const OBSERVATION_TEXT = {
    state: ["State", "where the car is on the track, its heading and speed: trains fastest; races in the simulator"],
    camera: ["Camera", "what the car's camera sees, as on a real car. Camera trains through distillation: " +
      "a state teacher, then a camera student"],
  };

  const state = {
    base: null,          // the recipe the form started from (keys it does not edit are sent back as they were)
    draftId: null,       // editing this draft of mine (PUT), or null (POST a new model)
    limits: {},
    templates: {},
    tracks: [],
    actions: [],         // discrete actions [{steering_angle, speed}]
    continuous: null,    // {steering_angle: {low, high}, speed: {low, high}}
    busy: false,
  };

  // --------------------------------------------------------------------------------------- reward editor

  // One interface over CodeMirror (when its files are served) and the plain textarea fallback.
  function makeSourceEditor(textarea) {
    if (window.CodeMirror) {
      const cm = window.CodeMirror.fromTextArea(textarea, {
        mode: "python", theme: "material-darker", lineNumbers: true, indentUnit: 4, tabSize: 4,
        matchBrackets: true, lineWrapping: false,
        extraKeys: {
          // Python wants spaces: Tab indents the selection or inserts four spaces
          Tab: (editor) => (editor.somethingSelected()
            ? editor.indentSelection("add")
            : editor.replaceSelection(" ".repeat(editor.getOption("indentUnit")), "end", "+input")),
          "Shift-Tab": (editor) => editor.indentSelection("subtract"),
        },
      });
      let marks = [];
      return {
        kind: "codemirror",
        get: () => cm.getValue(),
        set: (text) => cm.setValue(text),
        clear() {
          for (const mark of marks) {
            cm.removeLineClass(mark.line, "background", "cm-problem-line");
            mark.widget.clear();
          }
          marks = [];
        },
        // problems [{line, message}] under their lines; the first scrolled into view
        show(problems) {
          for (const problem of problems) {
            const index = Math.min(Math.max(problem.line, 1), cm.lineCount()) - 1;
            const line = cm.addLineClass(index, "background", "cm-problem-line");
            const node = el("div", { class: "cm-problem", role: "alert" }, problemBody(problem));
            marks.push({ line, widget: cm.addLineWidget(index, node, { coverGutter: false, noHScroll: true }) });
          }
          if (problems.length) cm.scrollIntoView({ line: problems[0].line - 1, ch: 0 }, 120);
        },
      };
    }
    const list = el("ul", { class: "line-problems" });
    textarea.after(list);
    return {
      kind: "textarea",
      get: () => textarea.value,
      set: (text) => { textarea.value = text; },
      clear: () => list.replaceChildren(),
      // without CodeMirror: a list under the textarea; a click selects the line
      show(problems) {
        list.replaceChildren(...problems.map((problem) => el("li", {
          class: "cm-problem",
          onclick: () => selectLine(textarea, problem.line),
        }, problemBody(problem))));
      },
    };
  }

  // "line N  first line of the message", the rest (a traceback, the params of the failing call) folded
  function problemBody(problem) {
    const [first, ...rest] = String(problem.message).split("\n");
    const head = [el("span", { class: "cm-problem-at" }, `line ${problem.line}`), " ", first];
    if (!rest.length) return el("div", {}, head);
    return el("details", {}, el("summary", {}, head), el("pre", {}, rest.join("\n")));
  }

  function selectLine(textarea, line) {
    const lines = textarea.value.split("\n");
    const start = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
    textarea.focus();
    textarea.setSelectionRange(start, start + (lines[line - 1] || "").length);
  }

  const source = makeSourceEditor($("[data-reward-source]"));

  // ------------------------------------------------------------------------------------------------ tracks

  function trackCard(track) {
    const input = el("input", { type: "radio", name: "track", value: track.name, class: "sr-only" });
    const card = el("label", { class: "track-card", dataset: { track: track.name } },
      input,
      el("img", { src: track.thumbnail, alt: "", loading: "lazy", width: "160", height: "100" }),
      el("span", { class: "track-name" }, track.name),
      el("span", { class: "track-dims" },
        el("span", {}, `${Number(track.length_m).toFixed(1)} m long`),
        el("span", {}, `${Number(track.width_m).toFixed(2)} m wide`)));
    input.addEventListener("change", () => selectTrack(track.name));
    return card;
  }

  function showTracks(tracks, selected) {
    const grid = $("[data-track-grid]");
    const known = tracks.some((t) => t.name === selected);
    const shown = known ? tracks : [...tracks, { name: selected, length_m: NaN, width_m: NaN, thumbnail: "" }];
    grid.replaceChildren(...shown.map(trackCard));
    selectTrack(selected);
  }

  function selectTrack(name) {
    for (const card of $$(".track-card")) {
      const on = card.dataset.track === name;
      card.classList.toggle("selected", on);
      card.querySelector("input").checked = on;
    }
    // the direction's names, when the server says which way the track runs as drawn
    const track = state.tracks.find((t) => t.name === name);
    const forward = track && track.direction;
    const other = { clockwise: "counter-clockwise", "counter-clockwise": "clockwise" }[forward];
    $('[data-direction-label="forward"]').textContent = other ? forward : "the track's own direction";
    $('[data-direction-label="reverse"]').textContent = other || "reversed";
  }

  function selectedTrack() {
    const checked = $("input[name=track]:checked");
    return checked ? checked.value : state.base.track;
  }

  // ------------------------------------------------------------------------------------------ action space

  const limit = (key, fallback) => (state.limits[key] !== undefined ? state.limits[key] : fallback);

  function numberInput(value, attrs, onValue) {
    const input = el("input", { type: "number", step: "any", ...attrs });
    input.value = value;
    input.addEventListener("input", () => onValue(input.valueAsNumber));
    return input;
  }

  function showActions() {
    const steer = limit("steering_limit_deg", 30);
    const [slow, fast] = limit("speed_range_mps", [0.1, 4]);
    const max = limit("max_discrete_actions", 50);
    const rows = state.actions.map((action, i) => el("tr", { dataset: { field: `action_space.${i}` } },
      el("td", { class: "num" }, String(i)),
      el("td", { dataset: { field: `action_space.${i}.steering_angle` } }, numberInput(action.steering_angle,
        { min: -steer, max: steer, "aria-label": `action ${i} steering angle, degrees` },
        (v) => { action.steering_angle = v; }), " °"),
      el("td", { dataset: { field: `action_space.${i}.speed` } }, numberInput(action.speed,
        { min: slow, max: fast, "aria-label": `action ${i} speed, m/s` }, (v) => { action.speed = v; }), " m/s"),
      el("td", {}, el("button", {
        type: "button", class: "remove", title: "remove this action", disabled: state.actions.length <= 1,
        onclick: () => { state.actions.splice(i, 1); showActions(); },
      }, "×"))));
    $("[data-actions-rows]").replaceChildren(...rows);
    $("[data-add-action]").disabled = state.actions.length >= max;
    $("[data-actions-count]").textContent =
      `${state.actions.length} action${state.actions.length === 1 ? "" : "s"} of at most ${max} · ` +
      `steering within ±${steer} °, speed ${slow} – ${fast} m/s`;
  }

  function showContinuous() {
    const steer = limit("steering_limit_deg", 30);
    const [slow, fast] = limit("speed_range_mps", [0.1, 4]);
    for (const input of $$("[data-range]")) {
      const [axis, end] = input.dataset.range.split(".");
      input.value = state.continuous[axis][end];
      Object.assign(input, axis === "speed" ? { min: slow, max: fast } : { min: -steer, max: steer });
    }
    $("[data-steer-range]").textContent = `−${steer} ° to ${steer} °`;
    $("[data-speed-range]").textContent = `${slow} to ${fast} m/s`;
  }

  function setActionType(type) {
    $(`input[name=action_space_type][value=${type}]`).checked = true;
    $("[data-discrete]").hidden = type !== "discrete";
    $("[data-continuous]").hidden = type !== "continuous";
  }

  const actionType = () => $("input[name=action_space_type]:checked").value;

  // ------------------------------------------------------------------------------------ algorithm, settings

  function setAlgorithm(algorithm) {
    $(`input[name=training_algorithm][value=${algorithm}]`).checked = true;
    for (const row of $$("[data-only]")) row.hidden = row.dataset.only !== algorithm;
    const sac = algorithm === "sac";
    $("input[name=action_space_type][value=discrete]").disabled = sac;
    $("[data-sac-note]").hidden = !sac;
    if (sac && actionType() === "discrete") setActionType("continuous");
  }

  function showObservations(kinds, selected) {
    const box = $("[data-observations]");
    const options = kinds.includes(selected) ? kinds : [...kinds, selected];
    box.append(...options.map((kind) => {
      const [title, text] = OBSERVATION_TEXT[kind] || [kind, ""];
      return el("label", { class: "choice" },
        el("input", { type: "radio", name: "observation", value: kind, checked: kind === selected }),
        el("span", {}, el("strong", {}, title), text ? el("small", {}, text) : null));
    }));
  }

  function showStop(stop) {
    const minutes = form.elements.minutes;
    minutes.value = stop.minutes;
    minutes.min = limit("min_minutes", 0.25);
    minutes.max = limit("max_minutes", 1440);
    $("[data-minutes-range]").textContent = `· ${minutes.min} – ${minutes.max}`;
    const early = stop.until_clean_laps !== null && stop.until_clean_laps !== undefined;
    form.elements.stop_early.checked = early;
    form.elements.clean_laps.value = early ? stop.until_clean_laps : contract.until_clean_laps;
    form.elements.clean_laps.disabled = !early;
  }

  // ------------------------------------------------------------------------------------------------ recipe

  const number = (input) => (Number.isFinite(input.valueAsNumber) ? input.valueAsNumber : null);

  function fill(recipe) {
    form.elements.name.value = recipe.name;
    form.elements.description.value = recipe.description || "";
    showTracks(state.tracks, recipe.track);
    $(`input[name=direction][value=${recipe.reverse ? "reverse" : "forward"}]`).checked = true;
    const discrete = recipe.action_space_type === "discrete";
    state.actions = discrete ? recipe.action_space.map((a) => ({ ...a })) : contract.discrete.map((a) => ({ ...a }));
    state.continuous = discrete ? structuredClone(contract.continuous) : structuredClone(recipe.action_space);
    showActions();
    showContinuous();
    setActionType(recipe.action_space_type);
    for (const input of $$("[data-hp]")) input.value = recipe.hyperparameters[input.dataset.hp];
    setAlgorithm(recipe.training_algorithm);
    source.set(recipe.reward_function);
    showStop(recipe.stop);
  }

  function recipe() {
    const out = structuredClone(state.base);
    out.name = form.elements.name.value.trim();
    out.description = form.elements.description.value;
    out.track = selectedTrack();
    out.reverse = $("input[name=direction]:checked").value === "reverse";
    out.action_space_type = actionType();
    out.action_space = out.action_space_type === "discrete"
      ? state.actions.map((a) => ({ steering_angle: nullIfNaN(a.steering_angle), speed: nullIfNaN(a.speed) }))
      : {
        steering_angle: { low: number($('[data-range="steering_angle.low"]')), high: number($('[data-range="steering_angle.high"]')) },
        speed: { low: number($('[data-range="speed.low"]')), high: number($('[data-range="speed.high"]')) },
      };
    out.training_algorithm = $("input[name=training_algorithm]:checked").value;
    out.hyperparameters = { ...state.base.hyperparameters };
    for (const input of $$("[data-hp]")) {
      out.hyperparameters[input.dataset.hp] = input.dataset.kind === "number"
        ? (input.value === "" ? null : Number(input.value)) : input.value;
    }
    out.reward_function = source.get();
    const checked = $("input[name=observation]:checked");
    out.observation = checked ? checked.value : state.base.observation;
    out.stop = {
      minutes: number(form.elements.minutes),
      until_clean_laps: form.elements.stop_early.checked ? number(form.elements.clean_laps) : null,
    };
    return out;
  }

  const nullIfNaN = (value) => (Number.isFinite(value) ? value : null);

  // ---------------------------------------------------------------------------------------------- problems

  function clearProblems() {
    source.clear();
    for (const node of $$(".field-problem")) node.remove();
    for (const node of $$("[aria-invalid]")) node.removeAttribute("aria-invalid");
    $("[data-check-result]").replaceChildren();
  }

  // the element of the longest data-field that `field` starts with (by dotted parts), or null
  function fieldElement(field) {
    const parts = String(field || "").split(".");
    for (let n = parts.length; n > 0; n -= 1) {
      const key = parts.slice(0, n).join(".");
      const found = $$("[data-field]").find((node) => node.dataset.field === key && !node.hidden);
      if (found) return found;
    }
    return null;
  }

  // problems [{field, message, line}] -> at their line, at their field, or in the list by the buttons;
  // returns how many could not be placed
  function showProblems(problems) {
    const lines = problems.filter((p) => p.line !== null && p.line !== undefined);
    source.show(lines);
    const unplaced = [];
    for (const problem of problems) {
      if (lines.includes(problem)) continue;
      const target = fieldElement(problem.field);
      if (!target) { unplaced.push(problem); continue; }
      const note = el("p", { class: "field-problem", role: "alert" }, problem.message);
      const input = target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea");
      if (input && target.tagName !== "SECTION") input.setAttribute("aria-invalid", "true");
      if (target.tagName === "TD") target.append(note);
      else if (target.tagName === "TR") target.lastElementChild.append(note);
      else if (target.tagName === "SECTION") target.querySelector("h2").after(note);
      else target.append(note);
    }
    const first = form.querySelector(".field-problem, .cm-problem");
    if (first) first.scrollIntoView({ block: "center" });
    return unplaced;
  }

  function status(text, kind, extra) {
    const box = $("[data-submit-status]");
    box.dataset.state = kind || "";
    box.replaceChildren(text || "", ...(extra || []));
  }

  function problemList(problems) {
    return el("ul", { class: "problem-list" }, problems.map((p) => el("li", {}, p.field ? `${p.field}: ` : "", p.message)));
  }

  function summaryText(summary) {
    const min = summary.reward_min ?? summary.min;
    const mean = summary.reward_mean ?? summary.mean;
    const max = summary.reward_max ?? summary.max;
    const parts = [];
    if (min !== undefined) parts.push(`reward min ${fmt(min)}, mean ${fmt(mean)}, max ${fmt(max)}`);
    if (summary.calls !== undefined) {
      const off = summary.offtrack_calls !== undefined ? ` (${summary.offtrack_calls} off track)` : "";
      parts.push(`${summary.calls} calls${off}`);
    }
    if (summary.us_per_call !== undefined) parts.push(`${fmt(summary.us_per_call)} µs per call`);
    return parts.join(" · ");
  }

  const fmt = (value) => (typeof value === "number" ? Number(value.toPrecision(4)).toString() : String(value));

  function showCheck(result) {
    clearProblems();
    const box = $("[data-check-result]");
    const unplaced = showProblems(result.problems || []);
    const summary = result.reward_summary;
    const parts = [];
    if (result.ok) parts.push(el("p", { class: "check-ok" }, "✓ the recipe checks out"));
    else parts.push(el("p", { class: "check-bad" }, `✗ ${result.problems.length} problem${result.problems.length === 1 ? "" : "s"}`));
    if (summary) {
      parts.push(el("p", { class: "reward-summary", dataset: { rewardSummary: "" } }, summaryText(summary)));
      for (const warning of summary.warnings || []) parts.push(el("p", { class: "warning" }, `warning: ${warning}`));
    }
    if (unplaced.length) parts.push(problemList(unplaced));
    box.replaceChildren(...parts);
  }

  // ------------------------------------------------------------------------------------------------ actions

  async function busy(button, work) {
    if (state.busy) return;
    state.busy = true;
    const buttons = $$("button[data-check], button[data-save], button[data-train]");
    for (const b of buttons) b.disabled = true;
    button.classList.add("busy");
    try {
      await work();
    } finally {
      state.busy = false;
      for (const b of buttons) b.disabled = false;
      button.classList.remove("busy");
    }
  }

  async function check() {
    status("checking the recipe…", "busy");
    try {
      const result = await api("POST", "/api/console/check", { recipe: recipe() });
      showCheck(result);
      status(result.ok ? "the recipe checks out" : "the check found problems: see the marked places", result.ok ? "ok" : "refused");
    } catch (exc) {
      status(`could not check: ${exc.message}`, "refused");
    }
  }

  // the server refused the recipe (422 {detail, problems}) or the quota (409 {detail})
  function refused(exc, what) {
    if (!(exc instanceof ApiError)) {
      status(`could not reach the server: ${exc.message}`, "refused");
      return;
    }
    clearProblems();
    const problems = exc.problems || [];
    const unplaced = problems.length ? showProblems(problems) : [];
    if (problems.length && !unplaced.length) {
      const n = problems.length;
      status(`${what}: ${n} problem${n === 1 ? "" : "s"}, marked where ${n === 1 ? "it is" : "they are"}`, "refused");
    } else {
      status(`${what}: ${exc.message}`, "refused", unplaced.length ? [problemList(unplaced)] : []);
    }
  }

  async function save() {
    status("saving…", "busy");
    try {
      if (state.draftId !== null) {
        await api("PUT", `/api/console/models/${state.draftId}`, { recipe: recipe(), train: false });
      } else {
        const model = await api("POST", "/api/console/models", { recipe: recipe(), train: false });
        editDraft(model.id);
      }
      clearProblems();
      status(`draft saved ${new Date().toLocaleTimeString()}`, "ok");
    } catch (exc) {
      refused(exc, "not saved");
    }
  }

  async function train() {
    status("checking the recipe and queueing the training…", "busy");
    try {
      let model;
      if (state.draftId !== null) {
        // save the edits, then train: two steps, so a refused check leaves the draft saved as edited
        await api("PUT", `/api/console/models/${state.draftId}`, { recipe: recipe(), train: false });
        model = await api("POST", `/api/console/models/${state.draftId}/train`);
      } else {
        model = await api("POST", "/api/console/models", { recipe: recipe(), train: true });
      }
      status("queued: opening the model…", "ok");
      window.location.assign(`/console/models/${model.id}`);
    } catch (exc) {
      refused(exc, "not trained");
    }
  }

  function editDraft(id) {
    state.draftId = id;
    $("[data-editor-title]").textContent = "Edit draft";
    const url = new URL(window.location.href);
    url.searchParams.set("from", id);
    window.history.replaceState(null, "", url);
  }

  // ------------------------------------------------------------------------------------------------ wiring

  function wire() {
    $("[data-add-action]").addEventListener("click", () => {
      const last = state.actions[state.actions.length - 1] || { steering_angle: 0, speed: 1 };
      state.actions.push({ ...last });
      showActions();
    });
    $("[data-default-actions]").addEventListener("click", () => {
      state.actions = contract.discrete.map((a) => ({ ...a }));
      showActions();
    });
    for (const radio of $$("input[name=action_space_type]")) radio.addEventListener("change", () => setActionType(radio.value));
    for (const radio of $$("input[name=training_algorithm]")) radio.addEventListener("change", () => setAlgorithm(radio.value));
    form.elements.stop_early.addEventListener("change", () => {
      form.elements.clean_laps.disabled = !form.elements.stop_early.checked;
    });
    $("[data-use-template]").addEventListener("click", () => {
      const name = $("[data-template]").value;
      if (state.templates[name] !== undefined) source.set(state.templates[name]);
    });
    $("[data-check]").addEventListener("click", (event) => busy(event.currentTarget, check));
    $("[data-save]").addEventListener("click", (event) => busy(event.currentTarget, save));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      busy($("[data-train]"), train);
    });
  }

  async function start() {
    const from = form.dataset.from;
    try {
      const [defaults, tracks, model] = await Promise.all([
        api("GET", "/api/console/defaults"),
        api("GET", "/api/console/tracks"),
        from ? api("GET", `/api/console/models/${from}`) : Promise.resolve(null),
      ]);
      state.limits = defaults.limits || {};
      state.templates = defaults.templates || {};
      state.tracks = tracks;
      $("[data-template]").replaceChildren(...Object.keys(state.templates).map((name) => el("option", { value: name }, name)));
      let base = defaults.recipe;
      if (model) {
        base = structuredClone(model.recipe);
        if (model.mine && model.status === "draft") {
          editDraft(model.id);
        } else {
          if (!model.mine) base.remixed_from = { name: model.name, author: model.owner || null, url: `/console/models/${model.id}` };
          $("[data-editor-title]").textContent = `New model from “${model.name}”`;
        }
      }
      state.base = base;
      showObservations(defaults.observations || ["state"], base.observation);
      fill(base);
    } catch (exc) {
      const box = $("[data-load-error]");
      box.textContent = `could not load the editor: ${exc.message}`;
      box.hidden = false;
      return;
    }
    wire();
    form.dataset.ready = "yes";
  }

  start();
})();

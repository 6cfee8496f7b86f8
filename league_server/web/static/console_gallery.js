// The console's recipe gallery (/console/gallery): the shared models of the racer's league (GET /api/recipes),
// one card each: what made it (track, observation, algorithm), how it drove (best evaluation lap, its race
// results), where it came from (remixed from ... by ...) and how often it was remixed; View, Remix (POST
// /api/console/models/{id}/remix, then the create page on the copy) and the recipe's TOML. Requests and
// elements go through console_api.js (window.pitlaneConsole): names are user input, set as text only.
(function () {
  "use strict";

  const root = document.querySelector("[data-gallery]");
  if (!root) return;
  const { api, el } = window.pitlaneConsole;
  const $ = (selector) => root.querySelector(selector);
  const ALGORITHMS = { clipped_ppo: "PPO (clipped)", sac: "SAC" };
  const state = { recipes: [] };
  window.pitlaneGallery = state; // what a test can read

  const blank = (v) => v === null || v === undefined || Number.isNaN(v);
  const lapText = (s) => (blank(s) ? "–" : `${Number(s).toFixed(2)}\u00a0s`);
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : word.endsWith("x") ? "es" : "s"}`;
  const modelUrl = (id) => `/console/models/${encodeURIComponent(id)}`;

  const fact = (label, value) => el("div", {}, el("dt", {}, label), el("dd", {}, value));

  function raceList(races) {
    if (!races.length) return el("p", { class: "meta cg-races-none" }, "not raced yet");
    return el("ul", { class: "cg-races", "aria-label": "race results" }, races.map((race) => el("li", {},
      el("a", { href: `/races/${encodeURIComponent(race.race_id)}` }, race.race), ": best lap ",
      el("strong", {}, lapText(race.best_lap_s)), blank(race.rank) ? "" : ` (#${race.rank})`)));
  }

  function lineage(r) {
    const parts = [];
    if (r.parent) {
      parts.push("remixed from ", el("a", { href: modelUrl(r.parent.id) }, r.parent.name));
      if (r.parent.author) parts.push(" by ", el("span", { class: "cw-author" }, r.parent.author));
      parts.push(" · ");
    }
    parts.push(plural(Number(r.remixes || 0), "remix"));
    return el("p", { class: "meta cw-lineage", "data-lineage": true }, parts);
  }

  function card(r) {
    const remix = el("button", { type: "button", class: "primary", dataset: { remix: r.id } }, "Remix");
    remix.addEventListener("click", () => doRemix(r, remix));
    return el("li", { class: "cg-card", dataset: { recipeId: r.id } },
      el("h2", {}, el("a", { href: modelUrl(r.id) }, r.name)),
      el("p", { class: "meta cg-author" }, "by ", el("strong", {}, r.author || "–"),
        r.mine ? " (you)" : "",
        r.status && r.status !== "finished"
          ? [" · ", el("span", { class: `model-status cw-badge status-${r.status}` }, r.status)] : ""),
      el("dl", { class: "cg-facts" },
        fact("track", r.track || "–"),
        fact("observation", r.observation || "–"),
        fact("algorithm", ALGORITHMS[r.training_algorithm] || r.training_algorithm || "–"),
        fact("best evaluation lap", lapText(r.best_eval_lap_s))),
      raceList(Array.isArray(r.races) ? r.races : []),
      lineage(r),
      el("div", { class: "cg-buttons" },
        el("a", { class: "button", href: modelUrl(r.id) }, "View"),
        remix,
        el("a", { class: "button", href: r.recipe || `/api/recipes/${encodeURIComponent(r.id)}.toml`, download: true },
          "Recipe TOML")));
  }

  function note(text, kind) {
    const node = $("[data-gallery-note]");
    node.textContent = text;
    node.dataset.state = kind || "";
  }

  async function doRemix(r, button) {
    button.disabled = true;
    note(`making your copy of “${r.name}”…`, "busy");
    try {
      const copy = await api("POST", `/api/console/models/${encodeURIComponent(r.id)}/remix`);
      window.location.assign(`/console/models/new?from=${encodeURIComponent(copy.id)}`);
    } catch (error) {
      note(`could not remix “${r.name}”: ${error.message}`, "error");
      button.disabled = false;
    }
  }

  const SORTS = {
    newest: (a, b) => b.id - a.id,
    fastest: (a, b) => (a.best_eval_lap_s ?? Infinity) - (b.best_eval_lap_s ?? Infinity) || b.id - a.id,
    remixes: (a, b) => (b.remixes || 0) - (a.remixes || 0) || b.id - a.id,
  };

  function draw() {
    const track = $("[data-track]").value;
    const shown = state.recipes.filter((r) => !track || r.track === track)
      .sort(SORTS[$("[data-sort]").value] || SORTS.newest);
    $("[data-cards]").replaceChildren(...shown.map(card));
    $("[data-gallery-empty]").hidden = state.recipes.length > 0;
    $("[data-gallery-count]").textContent = state.recipes.length
      ? `${plural(state.recipes.length, "recipe")}${track ? `, ${shown.length} on ${track}` : ""}.` : "";
  }

  function fillTracks() {
    const tracks = [...new Set(state.recipes.map((r) => r.track).filter(Boolean))].sort();
    $("[data-track]").replaceChildren(el("option", { value: "" }, "all tracks"),
      ...tracks.map((t) => el("option", { value: t }, t)));
  }

  async function load() {
    try {
      state.recipes = await api("GET", "/api/recipes");
    } catch (error) {
      note(`could not load the gallery: ${error.message}`, "error");
      return;
    }
    fillTracks();
    draw();
  }

  $("[data-sort]").addEventListener("change", draw);
  $("[data-track]").addEventListener("change", draw);
  load();
})();

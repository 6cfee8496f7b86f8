// The console's recipe gallery (/console/gallery): the shared models of the racer's league (GET /api/recipes),
// one card each: what made it (track, observation, algorithm), how it drove (best evaluation lap, its race
// results), where it came from (remixed from ... by ...) and how often it was remixed; View, Remix (POST
// /api/console/models/{id}/remix, then the create page on the copy) and the recipe's TOML. Names are user
// input: text only.
(function () {
  "use strict";

  const root = document.querySelector("[data-gallery]");
  if (!root) return;
  const $ = (selector) => root.querySelector(selector);
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = (meta && meta.content) || root.dataset.csrfToken || "";
  const ALGORITHMS = { clipped_ppo: "PPO (clipped)", sac: "SAC" };
  const state = { recipes: [] };
  window.pitlaneGallery = state; // what a test can read

  const blank = (v) => v === null || v === undefined || Number.isNaN(v);
  const lapText = (s) => (blank(s) ? "–" : `${Number(s).toFixed(2)} s`);
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : word.endsWith("x") ? "es" : "s"}`;
  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }
  const modelUrl = (id) => `/console/models/${encodeURIComponent(id)}`;

  function fact(list, label, value) {
    const row = el("div");
    row.append(el("dt", label), el("dd", value));
    list.append(row);
  }

  function card(r) {
    const item = el("li", null, { class: "cg-card", "data-recipe-id": String(r.id) });
    const title = el("h2");
    title.append(el("a", r.name, { href: modelUrl(r.id) }));
    item.append(title);
    const by = el("p", null, { class: "meta cg-author" });
    by.append("by ", el("strong", r.author || "–"));
    if (r.status && r.status !== "finished") by.append(" · ", el("span", r.status, { class: "cw-badge", "data-state": r.status }));
    item.append(by);

    const facts = el("dl", null, { class: "cg-facts" });
    fact(facts, "track", r.track || "–");
    fact(facts, "observation", r.observation || "–");
    fact(facts, "algorithm", ALGORITHMS[r.training_algorithm] || r.training_algorithm || "–");
    fact(facts, "best evaluation lap", lapText(r.best_eval_lap_s));
    item.append(facts);

    const races = Array.isArray(r.races) ? r.races : [];
    if (races.length) {
      const list = el("ul", null, { class: "cg-races", "aria-label": "race results" });
      for (const race of races) {
        const li = el("li");
        li.append(el("a", race.race, { href: `/races/${encodeURIComponent(race.race_id)}` }), ": best lap ",
          el("strong", lapText(race.best_lap_s)));
        if (!blank(race.rank)) li.append(` (#${race.rank})`);
        list.append(li);
      }
      item.append(list);
    } else {
      item.append(el("p", "not raced yet", { class: "meta cg-races-none" }));
    }

    const lineage = el("p", null, { class: "meta cw-lineage" });
    if (r.parent) {
      lineage.append("remixed from ", el("a", r.parent.name, { href: modelUrl(r.parent.id) }));
      if (r.parent.author) lineage.append(" by ", el("span", r.parent.author, { class: "cw-author" }));
      lineage.append(" · ");
    }
    lineage.append(plural(Number(r.remixes || 0), "remix"));
    item.append(lineage);

    const buttons = el("div", null, { class: "cg-buttons" });
    buttons.append(el("a", "View", { class: "cw-button", href: modelUrl(r.id) }));
    const remix = el("button", "Remix", { type: "button", class: "cw-primary", "data-remix": String(r.id) });
    remix.addEventListener("click", () => doRemix(r, remix));
    buttons.append(remix);
    buttons.append(el("a", "Recipe TOML", { class: "cw-button", href: `/api/recipes/${encodeURIComponent(r.id)}.toml`, download: "" }));
    item.append(buttons);
    return item;
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
      const response = await fetch(`/api/console/models/${encodeURIComponent(r.id)}/remix`, {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
      });
      const answer = await response.json().catch(() => null);
      if (!response.ok) throw new Error((answer && typeof answer.detail === "string" && answer.detail) || `${response.status}`);
      location.assign(`/console/models/new?from=${encodeURIComponent(answer.id)}`);
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
    const shown = state.recipes.filter((r) => !track || r.track === track).sort(SORTS[$("[data-sort]").value] || SORTS.newest);
    $("[data-cards]").replaceChildren(...shown.map(card));
    $("[data-gallery-empty]").hidden = state.recipes.length > 0;
    $("[data-gallery-count]").textContent = state.recipes.length
      ? `${plural(state.recipes.length, "recipe")}${track ? `, ${shown.length} on ${track}` : ""}.` : "";
  }

  function fillTracks() {
    const tracks = [...new Set(state.recipes.map((r) => r.track).filter(Boolean))].sort();
    $("[data-track]").replaceChildren(el("option", "all tracks", { value: "" }), ...tracks.map((t) => el("option", t, { value: t })));
  }

  async function load() {
    try {
      const response = await fetch("/api/recipes", { credentials: "same-origin" });
      if (response.status === 401) {
        const node = $("[data-gallery-note]");
        node.replaceChildren("Your console session has ended: ", el("a", "sign in again", { href: "/console/sign-in" }), ".");
        return;
      }
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      state.recipes = await response.json();
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

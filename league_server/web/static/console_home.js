// My models: the racer's quota (GET /api/console/me) and models (GET /api/console/models), refreshed every
// few seconds while a model is queued or running, so a status changes without a reload.
(function () {
  "use strict";
  const root = document.querySelector("[data-console-home]");
  if (!root) return;
  const { api, el, when, seconds } = window.pitlaneConsole;
  const REFRESH_MS = 5000;
  const ACTIVE = new Set(["queued", "running"]);
  const rows = root.querySelector("[data-models-rows]");
  const empty = root.querySelector("[data-models-empty]");
  const error = root.querySelector("[data-home-error]");

  function showQuota(me) {
    const { quota, usage } = me;
    const jobs = root.querySelector("[data-quota-jobs]");
    const minutes = root.querySelector("[data-quota-minutes]");
    jobs.textContent = `${usage.running_jobs} of ${quota.concurrent_jobs}`;
    minutes.textContent = `${Number(usage.minutes_today).toFixed(1)} of ${quota.minutes_per_day} min`;
    const jobsBar = root.querySelector("[data-quota-jobs-bar]");
    jobsBar.max = Math.max(quota.concurrent_jobs, 1);
    jobsBar.value = Math.min(usage.running_jobs, jobsBar.max);
    const minutesBar = root.querySelector("[data-quota-minutes-bar]");
    minutesBar.max = Math.max(quota.minutes_per_day, 1);
    minutesBar.value = Math.min(usage.minutes_today, minutesBar.max);
    root.querySelector("[data-quota]").dataset.full =
      usage.running_jobs >= quota.concurrent_jobs || usage.minutes_today >= quota.minutes_per_day ? "yes" : "no";
  }

  function modelRow(model) {
    const page = `/console/models/${model.id}`;
    const edit = model.status === "draft"
      ? el("a", { href: `/console/models/new?from=${model.id}` }, "edit")
      : el("a", { href: `/console/models/new?from=${model.id}`, title: "a new model from this recipe" }, "train again");
    return el("tr", { dataset: { modelId: model.id, status: model.status } },
      el("td", { class: "name" }, el("a", { href: page }, model.name)),
      el("td", { class: "track" }, model.track || ""),
      el("td", {}, el("span", { class: `model-status status-${model.status}`, title: model.reason || "" }, model.status)),
      el("td", { class: "num" }, seconds(model.best_eval_lap_s) || "–"),
      el("td", { class: "created" }, when(model.created_at)),
      el("td", { class: "row-actions" }, edit));
  }

  function showModels(models) {
    rows.replaceChildren(...models.map(modelRow));
    empty.hidden = models.length > 0;
    root.querySelector("[data-models-table]").hidden = models.length === 0;
    return models.some((m) => ACTIVE.has(m.status));
  }

  async function refresh() {
    let active = false;
    try {
      const [me, models] = await Promise.all([api("GET", "/api/console/me"), api("GET", "/api/console/models")]);
      showQuota(me);
      active = showModels(models);
      error.hidden = true;
    } catch (exc) {
      error.textContent = `could not load your models: ${exc.message}`;
      error.hidden = false;
    }
    if (active) setTimeout(refresh, REFRESH_MS);
  }

  refresh();
})();

// The race page's submission form (virtual races): the files go to POST /api/races/{id}/submissions with the
// racer's token as a bearer header; the server's answer (queued, or every reason it refused) is shown as is.
// The token is never stored by the page.
(function () {
  "use strict";
  const root = document.querySelector("[data-submit]");
  if (!root) return;
  const form = root.querySelector("[data-submit-form]");
  const result = root.querySelector("[data-submit-result]");

  // the submission's progress (queued -> running -> finished or failed), from the racer's own list
  async function follow(id, token) {
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const response = await fetch("/api/submissions", { headers: { Authorization: `Bearer ${token}` } });
      if (!response.ok) return;
      const mine = (await response.json()).find((s) => s.id === id);
      if (!mine) return;
      if (mine.status === "finished") {
        const laps = mine.laps.filter((lap) => lap.completed).map((lap) => lap.lap_time_s);
        const best = laps.length ? `, best lap ${Math.min(...laps).toFixed(2)} s` : "";
        result.textContent = `submission ${id}: finished, ${laps.length} lap(s)${best}`;
        result.dataset.state = "finished";
        return;
      }
      if (mine.status === "failed") {
        result.textContent = `submission ${id}: failed — ${mine.reason}`;
        result.dataset.state = "refused";
        return;
      }
      result.textContent = `submission ${id}: ${mine.status}…`;
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = new FormData();
    body.append("model", form.elements.model.files[0]);
    body.append("card", form.elements.card.files[0]);
    result.textContent = "checking your model…";
    result.dataset.state = "busy";
    try {
      const response = await fetch(root.dataset.url, {
        method: "POST", body, headers: { Authorization: `Bearer ${form.elements.token.value.trim()}` },
      });
      const answer = await response.json();
      if (response.ok) {
        result.textContent = `submission ${answer.id}: ${answer.status} — it ranks here when its evaluation finishes`;
        result.dataset.state = "ok";
        follow(answer.id, form.elements.token.value.trim());
      } else {
        result.textContent = `refused (${response.status}): ${answer.detail}`;
        result.dataset.state = "refused";
      }
    } catch (error) {
      result.textContent = `could not reach the server: ${error}`;
      result.dataset.state = "refused";
    }
  });
})();

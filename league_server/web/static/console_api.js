// What every console page's script shares (window.pitlaneConsole): the JSON API over same-origin fetch (the
// session cookie goes along by itself; unsafe methods send the page's CSRF token as X-CSRF-Token), errors
// as ApiError with the server's detail and problems, and a DOM helper that only ever sets text (names and
// messages are user input: never innerHTML).
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrfToken = meta ? meta.content : "";

  class ApiError extends Error {
    constructor(status, detail, problems) {
      super(typeof detail === "string" ? detail : JSON.stringify(detail));
      this.status = status;
      this.problems = problems || [];
    }
  }

  // method, url, optional JSON body -> the parsed JSON answer (null for an empty one); ApiError otherwise
  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let answer = null;
    try { answer = text ? JSON.parse(text) : null; } catch (_) { answer = { detail: text }; }
    if (response.status === 401) {  // the session ended (expired or signed out elsewhere)
      window.location.assign("/console/sign-in?error=" + encodeURIComponent("your session ended: sign in again"));
    }
    if (!response.ok) {
      let detail = answer && answer.detail !== undefined ? answer.detail : `${response.status} ${response.statusText}`;
      let problems = answer && (answer.problems || answer.errors);
      if (detail && typeof detail === "object" && !Array.isArray(detail)) {  // {detail: {detail, problems}}
        problems = detail.problems || problems;
        detail = detail.detail;
      }
      throw new ApiError(response.status, problemText(detail), problems);
    }
    return answer;
  }

  // FastAPI's 422 detail is a list of {loc, msg}: one readable line
  function problemText(detail) {
    if (!Array.isArray(detail)) return detail;
    return detail.map((d) => (d.loc ? `${d.loc.filter((p) => p !== "body").join(".")}: ${d.msg}` : String(d))).join("; ");
  }

  // el("td", {class: "num", dataset: {id: 3}}, "text", child, ...) -> element (strings become text nodes)
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "dataset") Object.assign(node.dataset, value);
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  // ISO time -> "2024-05-01 14:03" in the viewer's time zone
  function when(iso) {
    if (!iso) return "";
    const t = new Date(iso);
    if (Number.isNaN(t.getTime())) return iso;
    const pad = (n) => String(n).padStart(2, "0");
    return `${t.getFullYear()}-${pad(t.getMonth() + 1)}-${pad(t.getDate())} ${pad(t.getHours())}:${pad(t.getMinutes())}`;
  }

  // seconds with 3 decimals (lap times), "" for none
  function seconds(value) {
    return value === null || value === undefined ? "" : Number(value).toFixed(3);
  }

  window.pitlaneConsole = { api, ApiError, el, when, seconds, csrfToken };
})();

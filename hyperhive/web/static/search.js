// The dashboard's search box: GET /api/search, results with highlighted snippets, each
// linking to the agent page at that event. Text is only ever set through textContent (a
// snippet is [text, highlighted] segments, never markup).
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);

  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }

  function snippet(segments) {
    const p = el("p", "search-snippet");
    for (const [text, on] of segments) p.append(on ? el("mark", null, text) : document.createTextNode(text));
    return p;
  }

  function hitRow(hit) {
    const li = el("li", "search-hit");
    li.dataset.kind = hit.kind;
    li.dataset.ref = hit.ref;
    const head = el("div", "search-head");
    head.append(el("span", `chip kind-${hit.kind}`, hit.kind), " ");
    head.append(el("time", "ts", (hit.ts || "").slice(0, 19).replace("T", " ")), " ");
    head.append(el("strong", "who", hit.agent), " ");
    if (hit.link) {
      const a = el("a", "search-link", hit.title || "open");
      a.href = hit.link;
      head.append(a);
    } else {
      head.append(el("span", "search-title", hit.title));
    }
    li.append(head, snippet(hit.snippet || []));
    return li;
  }

  async function run(ev) {
    ev.preventDefault();
    const params = new URLSearchParams();
    params.set("q", $("search-q").value);
    for (const name of ["kind", "agent", "since"]) {
      const v = $(`search-${name}`).value.trim();
      if (v) params.set(name, v);
    }
    const list = $("search-list");
    const error = $("search-error");
    let data = null;
    try {
      const resp = await fetch(`/api/search?${params}`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      data = await resp.json().catch(() => null);
      if (!resp.ok || !data || data.ok === false) {
        throw new Error((data && data.error) || `${resp.status} ${resp.statusText}`);
      }
    } catch (e) {
      error.textContent = `search failed: ${e.message}`;
      error.hidden = false;
      return;
    }
    error.hidden = !data.message;  // e.g. a query with no word in it
    if (data.message) error.textContent = data.message;
    list.replaceChildren(...data.hits.map(hitRow));
    $("search-empty").hidden = data.hits.length > 0 || Boolean(data.message);
    const count = document.querySelector('[data-count="search"]');
    if (count) count.textContent = String(data.hits.length);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = $("search-form");
    if (form) form.addEventListener("submit", run);
  });
})();

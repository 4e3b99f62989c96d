// The operator dashboard: renders /api/state, follows /dashboard/stream, submits every form
// asynchronously. No framework: keyed rows are created once and updated in place, so an open
// logs block, a half-typed answer or keyboard focus survive every refresh.
(() => {
  "use strict";

  const HEARTBEAT_MS = 5000;
  const PENDING_HEARTBEAT_MS = 2000;
  const SHIMMER_MS = 4000;
  const FLOW_MAX = 200;
  const LOG_LINES = 500;

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  // -- DOM helper: h("div.row.crow", {data: {name}}, child, ...) -----------------------------
  function h(spec, attrs, ...children) {
    const [tag, ...classes] = spec.split(".");
    const el = document.createElement(tag || "div");
    if (classes.length) el.className = classes.join(" ");
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === "data") Object.assign(el.dataset, v);
        else if (k === "text") el.textContent = v;
        else if (k === "html") el.innerHTML = v; // only for server-rendered, escaped HTML (diffs)
        else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
        else if (v === true) el.setAttribute(k, "");
        else el.setAttribute(k, String(v));
      }
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // -- formatting -----------------------------------------------------------------------------
  function fmtCountdown(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
    return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }
  // one formatter for every row: toLocaleTimeString with options builds a new one per call
  // (a profile of 100 agents spent 134 ms there)
  const TIME_FMT = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  function fmtTime(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return "";
    return TIME_FMT.format(d);
  }
  const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
  function oneLine(text, max = 400) {
    const line = String(text).replace(/\s+/g, " ").trim();
    return line.length <= max ? line : line.slice(0, max - 1) + "…";
  }

  // -- talking to the core --------------------------------------------------------------------
  const csrfToken = () => {
    const name = $('meta[name="csrf-cookie"]')?.content;
    if (name) {
      for (const part of document.cookie.split(";")) {
        const [k, ...v] = part.trim().split("=");
        if (k === name) return v.join("=");
      }
    }
    return $('meta[name="csrf-token"]')?.content || "";
  };

  class ApiError extends Error {
    constructor(message, code, status) {
      super(message);
      this.code = code;
      this.status = status;
    }
  }

  async function api(method, url, body) {
    const opts = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (method !== "GET") {
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-CSRF-Token"] = csrfToken();
      opts.body = JSON.stringify(body || {});
    }
    let resp;
    try {
      resp = await fetch(url, opts);
    } catch (e) {
      throw new ApiError(`the core is unreachable (${e.message})`, "unavailable", 0);
    }
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = null;
    }
    if (!resp.ok || !data || data.ok === false) {
      const msg = (data && data.error) || `${resp.status} ${resp.statusText}`;
      throw new ApiError(msg, (data && data.code) || "error", resp.status);
    }
    return data;
  }

  // -- toasts ---------------------------------------------------------------------------------
  function toast(message, kind = "ok") {
    const box = $("#toasts");
    const el = h(`div.toast${kind === "error" ? ".error" : ""}`, { role: kind === "error" ? "alert" : "status", text: message });
    box.append(el);
    while (box.children.length > 5) box.firstElementChild.remove();
    setTimeout(() => el.remove(), kind === "error" ? 9000 : 5000);
  }

  // -- state ----------------------------------------------------------------------------------
  let epoch = null;
  let lastSeq = 0;
  let clockSkew = 0; // server now - client now, seconds
  let current = null;
  let anyPending = false;

  function setConn(ok, text) {
    const el = $("#conn");
    el.classList.toggle("live", ok);
    el.classList.toggle("down", !ok);
    el.textContent = text || (ok ? "● live" : "○ reconnecting");
  }

  function setCount(section, n, show = true) {
    const el = $(`[data-count="${section}"]`);
    if (el) el.textContent = show && n ? `· ${n}` : "";
    const empty = $(`[data-empty="${section}"]`);
    if (empty) empty.hidden = n > 0;
  }

  // keyed reconciliation: rows keep their identity (and their inner state) across refreshes
  function reconcile(list, items, key, create, update) {
    const existing = new Map($$(":scope > [data-key]", list).map((el) => [el.dataset.key, el]));
    let prev = null;
    for (const item of items) {
      const k = String(key(item));
      let el = existing.get(k);
      const sig = JSON.stringify(item);
      if (!el) {
        el = create(item);
        el.dataset.key = k;
        el.dataset.sig = sig;
        if (current) el.classList.add("fresh");
      } else {
        existing.delete(k);
        if (el.dataset.sig !== sig) {
          // update may return a new element to take its place, or false to try again later
          const replaced = update(el, item);
          if (replaced === false) {
            // keep the old signature: the next refresh retries
          } else if (replaced) {
            el.replaceWith(replaced);
            el = replaced;
            el.dataset.key = k;
            el.dataset.sig = sig;
          } else {
            el.dataset.sig = sig;
          }
        }
      }
      const want = prev ? prev.nextElementSibling : list.firstElementChild;
      if (want !== el) list.insertBefore(el, want);
      prev = el;
    }
    for (const el of existing.values()) el.remove();
  }

  function render(state) {
    if (epoch && state.epoch && state.epoch !== epoch) {
      location.reload();
      return;
    }
    epoch = state.epoch;
    clockSkew = state.now - Date.now() / 1000;
    renderContainers(state);
    renderTombstones(state.tombstones);
    renderQuestions(state.questions);
    renderPermissions(state.permissions || []);
    renderInbox(state);
    renderApprovals(state.approvals);
    renderRecipients(state.containers);
    renderAttention(state.attention || []);
    current = state;
    anyPending = state.transients.length > 0 || state.containers.some((c) => c.pending);
  }

  // -- containers -----------------------------------------------------------------------------
  const ACTIONS = ["start", "stop", "restart", "rebuild", "kill"];

  function actionForm(name, action, label, extra = {}) {
    return h(
      "form",
      { "data-api": `/api/agents/${encodeURIComponent(name)}/${action}`, "data-kind": "empty", "data-confirm": extra.confirm },
      h(`button${extra.cls ? "." + extra.cls : ""}`, { type: "submit", title: extra.title, "data-action": action }, label),
    );
  }

  // -- the agent table: one compact line per agent, details (meta, actions, logs) on expand --
  const TONE_RANK = { bad: 0, warn: 1, ok: 2, off: 3 };
  const WORKING = new Set(["in_turn", "compacting"]);
  const FAILING = new Set(["failed", "crashed", "node_lost"]);
  const view = { sort: "default", dir: 1, filter: "", show: "all" };
  const openRows = new Set();

  function fmtTokens(n) {
    if (n === null || n === undefined) return "";
    if (n < 1000) return String(n);
    if (n < 1e6) return `${(n / 1000).toFixed(n < 1e4 ? 1 : 0)}k`;
    return `${(n / 1e6).toFixed(1)}M`;
  }
  function todayText(c) {
    const parts = [];
    if (c.tokens_today !== null && c.tokens_today !== undefined) parts.push(`${fmtTokens(c.tokens_today)} tok`);
    if (c.cost_today_usd !== null && c.cost_today_usd !== undefined) parts.push(`$${c.cost_today_usd.toFixed(2)}`);
    return parts.join(" · ");
  }
  function since(iso) {
    const t = Date.parse(iso);
    return Number.isNaN(t) ? null : Math.max(0, Date.now() / 1000 + clockSkew - t / 1000);
  }

  function containerHead(c) {
    const name = c.name;
    const open = openRows.has(name);
    const flags = [];
    if (c.needs_login) flags.push(h("span.badge.warn", { text: "needs login" }));
    if (c.needs_update) flags.push(h("span.badge.warn", { text: "needs update" }));
    if (c.budget_tripped) flags.push(h("span.badge.warn", { text: "budget tripped", data: { budget: "tripped" } }));
    const stateSince = c.state_since ? `since ${fmtTime(c.state_since)}` : "";
    const doing = [];
    if (c.state === "in_turn" && c.state_since) {
      doing.push(h("span.turn-for", { data: { since: c.state_since }, title: `in this turn since ${fmtTime(c.state_since)}`, text: fmtCountdown(since(c.state_since) || 0) }));
    }
    if (c.state_note) doing.push(h("span.state-note", { title: c.state_note, text: oneLine(c.state_note, 120) }));
    else if (c.status_text) doing.push(h("span.status-text", { title: c.status_text, text: oneLine(c.status_text, 120) }));
    const today = todayText(c);
    return h(
      "div.line.head",
      null,
      h(
        "span.cell.c-exp",
        null,
        h("button.expand", { type: "button", "aria-expanded": open ? "true" : "false", "aria-controls": `details-${name}`, "aria-label": `details for ${name}`, title: `details for ${name}` }, h("span", { "aria-hidden": "true", text: open ? "▾" : "▸" })),
      ),
      h("span.cell.c-name", null, h("span.name", { text: name }), roleChip(c.role)),
      h("span.cell.c-node", { title: c.node ? `runs on ${c.node}` : "this host", text: c.node || "" }),
      h(
        "span.cell.c-state",
        null,
        c.pending ? h("span.pill.pending", { role: "status", text: `◐ ${c.pending_label}` }) : null,
        h(`span.badge.state.${c.state_tone}`, {
          text: c.state_label,
          title: [c.state_note, stateSince].filter(Boolean).join(" · ") || c.state_label,
          data: { state: c.state },
        }),
        flags,
      ),
      h("span.cell.c-doing", null, doing),
      h("span.cell.c-last", null, c.last_activity ? h("time", { datetime: c.last_activity, title: c.last_activity, text: fmtTime(c.last_activity) }) : null),
      h("span.cell.c-unread", null, c.unread ? h("span.badge.info", { title: `${plural(c.unread, "unread message", "unread messages")}`, text: `${c.unread} unread` }) : null),
      h(
        "span.cell.c-today",
        { title: today ? "tokens and cost today" : "no usage reported today" },
        c.budget_used !== null && c.budget_used !== undefined ? budgetMeter(c) : null,
        today ? h("span.today", { text: today }) : null,
      ),
    );
  }

  function containerMeta(c) {
    const meta = [];
    if (c.model) meta.push(h("span", null, "model ", h("b", { text: c.model })));
    if (c.deployed_sha) meta.push(h("span", { title: "deployed config commit" }, "sha ", h("b", { text: c.deployed_sha })));
    if (c.runtime) meta.push(h("span", null, "rt ", h("b", { text: c.runtime })));
    if (c.node) meta.push(h("span", { title: "the node (host) that runs it" }, "node ", h("b", { text: c.node })));
    if (c.pending_reminders) meta.push(h("span", null, h("b", { text: c.pending_reminders }), c.pending_reminders === 1 ? " reminder" : " reminders"));
    if (c.status_text) meta.push(h("span", { title: c.status_text }, "status ", h("b", { text: oneLine(c.status_text, 200) })));
    const joined = [];
    meta.forEach((m, i) => {
      if (i) joined.push(h("span.sep", { text: " · " }));
      joined.push(m);
    });
    return h("div.line.meta-line", null, h("span.meta", null, joined));
  }

  function sortValue(c, key) {
    switch (key) {
      case "name": return c.name;
      case "node": return c.node || "";
      case "state": return `${TONE_RANK[c.state_tone] ?? 9}${c.state_label}`;
      case "doing": return (c.state === "in_turn" ? "0" : "1") + (c.state_note || c.status_text || "~");
      case "last": return c.last_activity ? -Date.parse(c.last_activity) : Infinity;
      case "unread": return -(c.unread || 0);
      case "today": return -(c.tokens_today || 0);
      default: return null;
    }
  }
  function sortedAgents(items) {
    if (view.sort === "default") return items; // the server's order: the manager, then by name
    const key = view.sort;
    return items
      .map((c, i) => [sortValue(c, key), i, c])
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]) * view.dir)
      .map((x) => x[2]);
  }
  function matches(c) {
    const show = view.show;
    if (show === "failing" && !FAILING.has(c.state)) return false;
    if (show === "attention" && !(FAILING.has(c.state) || c.state === "waiting_operator" || c.needs_login)) return false;
    if (show === "working" && !WORKING.has(c.state)) return false;
    if (show === "idle" && c.state !== "idle") return false;
    if (show === "stopped" && c.running) return false;
    if (!view.filter) return true;
    const hay = [c.name, c.state_label, c.state_note, c.status_text, c.model, c.node, c.role].filter(Boolean).join(" ").toLowerCase();
    return view.filter.split(/\s+/).every((w) => hay.includes(w));
  }
  function applyFilter(containers) {
    let shown = 0;
    const byName = new Map(containers.map((c) => [c.name, c]));
    for (const el of $$("#container-list > li")) {
      const c = byName.get(el.dataset.name);
      const ok = !!c && matches(c);
      el.hidden = !ok;
      if (ok) shown += 1;
    }
    const all = containers.length;
    $("#agent-shown").textContent = shown === all ? plural(all, "agent", "agents") : `${shown} of ${all} agents shown`;
    for (const b of $$(".agent-cols .sort")) {
      const on = b.dataset.sort === view.sort;
      b.classList.toggle("on", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.dataset.dir = on ? (view.dir > 0 ? "up" : "down") : "";
    }
  }
  function setView(change) {
    Object.assign(view, change);
    if (current) renderContainers(current);
  }
  function fillDetails(el, c) {
    el.querySelector(":scope > .details").replaceChildren(containerMeta(c), containerActions(c), logsBlock(c));
    el.dataset.actionsSig = actionsSig(c);
    el.dataset.built = "1";
  }
  function toggleRow(name) {
    if (openRows.has(name)) openRows.delete(name);
    else openRows.add(name);
    const el = $(`#container-list > li[data-name="${CSS.escape(name)}"]`);
    if (!el) return;
    const open = openRows.has(name);
    const c = current && current.containers.find((x) => x.name === name);
    if (open && !el.dataset.built && c) fillDetails(el, c);
    el.classList.toggle("open", open);
    el.querySelector(":scope > .details").hidden = !open;
    const b = el.querySelector(".expand");
    b.setAttribute("aria-expanded", open ? "true" : "false");
    b.firstElementChild.textContent = open ? "▾" : "▸";
  }
  function hashView() {
    // an attention link like #containers?state=failing picks the filter
    const m = /^#containers\?state=([a-z_]+)$/.exec(location.hash);
    if (!m) return;
    $("#agent-show").value = m[1];
    setView({ show: $("#agent-show").value || "all" });
    $("#containers").scrollIntoView();
  }

  // budgets: the highest share of any limit used (hive budgets); 80 % warns, 100 % trips
  function budgetMeter(c) {
    const pct = Math.round(c.budget_used * 100);
    return h(
      "span.budget",
      { title: `budget: ${pct}% of its tightest limit used` },
      h("meter", { min: "0", max: "1", low: "0.8", high: "0.99", optimum: "0", value: String(Math.min(c.budget_used, 1)), "aria-label": `budget ${pct}%` }),
      h("b", { text: ` ${pct}%` }),
    );
  }

  // the hive's look on the chip, the plain word for a screen reader
  function roleChip(role) {
    const word = role === "manager" ? "manager" : "agent";
    return h(`span.chip.role.role-${role}`, { title: word }, h("span", { "aria-hidden": "true", text: role === "manager" ? "m1nd" : "ag3nt" }), h("span.sr-only", { text: word }));
  }

  function containerActions(c) {
    const forms = ACTIONS.map((a) =>
      actionForm(c.name, a, a, a === "kill"
        ? { cls: "danger", title: "stop at once, no graceful shutdown", confirm: `Kill ${c.name}?\n\nIts processes are stopped at once, without a graceful shutdown: a turn in progress is lost.` }
        : {}),
    );
    forms.push(c.paused ? actionForm(c.name, "unpause", "unpause") : actionForm(c.name, "pause", "pause"));
    if (c.role !== "manager") {
      forms.push(
        actionForm(c.name, "destroy", "destroy", {
          cls: "danger",
          confirm: `Destroy ${c.name}?\n\nThe container goes away; its state, config and credentials are kept (revive it from kept state).`,
        }),
      );
      forms.push(
        actionForm(c.name, "purge", "purge", {
          cls: "danger",
          confirm: `Purge ${c.name}?\n\nThis destroys the agent AND wipes its state, notes, config history and credentials.\n\nThere is no undo.`,
        }),
      );
    }
    forms.push(
      h("a.page-link", { href: c.url, target: "_blank", rel: "noopener", title: `open ${c.name}'s page in a new tab` }, "agent page ↗"),
    );
    return h("div.line.actions", { role: "group", "aria-label": `${c.name} actions` }, forms);
  }

  function logsBlock(c) {
    const pre = h("pre.logs-out", { tabindex: "0", "aria-label": `${c.name} logs` });
    const source = h(
      "select",
      { "aria-label": "log source" },
      h("option", { value: "harness", text: "harness" }),
      h("option", { value: "sandbox", text: "sandbox" }),
    );
    const details = h("details.logs", { data: { agent: c.name } });
    const load = async () => {
      pre.textContent = "loading…";
      try {
        const data = await api("GET", `/api/logs/${encodeURIComponent(c.name)}?source=${source.value}&lines=${LOG_LINES}`);
        pre.textContent = data.lines.length ? data.lines.join("\n") : "(no output yet)";
        details.dataset.loaded = "1";
      } catch (e) {
        pre.textContent = `error: ${e.message}`;
      }
      pre.scrollTop = pre.scrollHeight;
    };
    const refresh = h("button.small", { type: "button", onclick: load, title: "fetch again" }, "↻ refresh");
    source.addEventListener("change", load);
    details.addEventListener("toggle", () => {
      if (details.open && !details.dataset.loaded) load();
    });
    details.append(
      h("summary", null, `↳ logs · ${c.name}`),
      h("div.logs-bar", null, h("span.meta", { text: "source" }), source, refresh),
      pre,
    );
    return details;
  }

  function containerClasses(el, c) {
    el.classList.toggle("pending", !!c.pending);
    el.classList.toggle("failed", c.failed);
    el.classList.toggle("stopped", !c.running);
    el.setAttribute("aria-busy", c.pending ? "true" : "false");
  }

  function renderContainers(state) {
    $("#stale-note").hidden = !state.any_stale;
    reconcile(
      $("#transient-list"),
      state.transients,
      (t) => `t:${t.name}`,
      (t) => h("li.row.trans", null, h("div.line", null, h("span.name", { text: t.name }), h("span.pill.pending", { role: "status", text: `◐ ${t.label}` }))),
      (el, t) => {
        el.querySelector(".pill").textContent = `◐ ${t.label}`;
      },
    );
    reconcile(
      $("#container-list"),
      sortedAgents(state.containers),
      (c) => c.name,
      (c) => {
        const open = openRows.has(c.name);
        // the details (meta, actions, logs) are built when first opened: most rows never are,
        // and building them all was most of a 100-agent first render
        const details = h("div.details", { id: `details-${c.name}`, hidden: !open });
        const el = h(`li.row.crow${open ? ".open" : ""}`, { data: { name: c.name } }, containerHead(c), details);
        if (open) fillDetails(el, c);
        containerClasses(el, c);
        return el;
      },
      (el, c) => {
        el.querySelector(":scope > .head").replaceWith(containerHead(c));
        if (el.dataset.built) {
          el.querySelector(":scope > .details > .meta-line").replaceWith(containerMeta(c));
          const sig = actionsSig(c);
          if (el.dataset.actionsSig !== sig && !el.querySelector(":scope > .details > .actions .busy")) {
            el.querySelector(":scope > .details > .actions").replaceWith(containerActions(c));
            el.dataset.actionsSig = sig;
          }
        }
        containerClasses(el, c);
      },
    );
    applyFilter(state.containers);
    setCount("containers", state.containers.length);
  }
  const actionsSig = (c) => `${c.paused}|${c.role}|${c.url}`;

  // the rows the server rendered into the page (web/dashboard/firstpaint.py, the same markup
  // as containerHead) from `state`: keep each element, note what it shows, put its times in
  // this browser's zone. A row without its agent in `state` is left to reconcile (removed).
  function adoptRows(state) {
    const byName = new Map(state.containers.map((c) => [c.name, c]));
    for (const el of $$("#container-list > li[data-ssr]")) {
      el.removeAttribute("data-ssr");
      const c = byName.get(el.dataset.name);
      if (!c) {
        el.remove();
        continue;
      }
      el.dataset.key = c.name;
      el.dataset.sig = JSON.stringify(c);
      const time = el.querySelector(".c-last time");
      if (time) time.textContent = fmtTime(time.getAttribute("datetime"));
      const turn = el.querySelector(".turn-for");
      if (turn) turn.title = `in this turn since ${fmtTime(c.state_since)}`;
      if (c.state_since) {
        const stateSince = `since ${fmtTime(c.state_since)}`;
        el.querySelector(".badge.state").title = [c.state_note, stateSince].filter(Boolean).join(" · ") || c.state_label;
      }
    }
  }

  // -- the attention bar (banner + tab title) -------------------------------------------------
  const BASE_TITLE = document.title;
  function renderAttention(items) {
    const bar = $("#attention");
    const live = items.filter((i) => i.count > 0);
    reconcile(
      bar,
      live,
      (i) => `a:${i.kind}`,
      // "open questions 1", not "1 open questions": the label is the source's plain words
      (i) => h(`a.att.att-${i.kind}`, { href: i.href, data: { kind: i.kind }, title: `${i.label}: ${i.count}` }, h("span.att-label", { text: i.label }), " ", h("b.att-count", { text: i.count })),
      (el, i) => {
        el.querySelector(".att-count").textContent = i.count;
        el.title = `${i.label}: ${i.count}`;
        el.setAttribute("href", i.href);
      },
    );
    const total = live.reduce((n, i) => n + i.count, 0);
    $("#attention-calm").hidden = total > 0;
    bar.classList.toggle("hot", total > 0);
    document.title = total > 0 ? `(${total}) ${BASE_TITLE}` : BASE_TITLE;
  }

  // -- kept state -----------------------------------------------------------------------------
  function tombstoneRow(t) {
    return h(
      "li.row.trow",
      null,
      h(
        "div.line",
        null,
        h("span.name", { text: t.name }),
        h("span.meta", null, h("b", { text: t.size }), " · modified ", h("b", { text: t.age })),
        h(`span.creds${t.credentials_kept ? "" : ".none"}`, { text: t.credentials_kept ? "✓ credentials kept" : "no credentials" }),
        h(
          "div.actions",
          null,
          h(
            "form",
            { "data-api": `/api/tombstones/${encodeURIComponent(t.name)}/revive`, "data-kind": "empty" },
            h("button.primary", { type: "submit", title: "queue a spawn approval that reuses this state" }, "revive"),
          ),
          h(
            "form",
            {
              "data-api": `/api/tombstones/${encodeURIComponent(t.name)}/purge`,
              "data-kind": "empty",
              "data-confirm": `Purge the kept state of ${t.name}?\n\nIts notes, config history and credentials are wiped.\n\nThere is no undo.`,
            },
            h("button.danger", { type: "submit" }, "purge"),
          ),
        ),
      ),
    );
  }
  function renderTombstones(items) {
    reconcile($("#tombstone-list"), items, (t) => t.name, tombstoneRow, (el, t) => (el.contains(document.activeElement) ? false : tombstoneRow(t)));
    setCount("kept", items.length);
  }

  // -- questions ------------------------------------------------------------------------------
  function questionRow(q) {
    const opts = q.options.map((o, i) =>
      h("label", null, h("input", { type: q.input_type, name: "opt", value: o, id: `q${q.id}-o${i}` }), h("span", { text: o })),
    );
    const chip = q.deadline_ts
      ? h(
          "span.chip.countdown",
          { data: { deadline: q.deadline_ts }, title: `expires at ${q.deadline_at}` },
          h("span.hourglass", { text: "⏳" }),
          " ",
          h("span.left", { text: q.countdown.replace(/^⏳ /, "") }),
        )
      : null;
    return h(
      "li.row.qrow",
      { data: { id: q.id } },
      h(
        "div.line",
        null,
        h("span.asker", { text: q.asker }),
        h("span.meta", { text: `asks · ${q.age}` }),
        q.multi ? h("span.chip.kind", { text: "pick any" }) : null,
        chip,
        h("span.qid", { text: `#${q.id}` }),
      ),
      h("p.q-text", { text: q.question }),
      h(
        "form.qform",
        { "data-api": `/api/questions/${q.id}/answer`, "data-kind": "answer", autocomplete: "off" },
        opts.length ? h("fieldset", null, h("legend.sr-only", { text: q.multi ? "choose any" : "choose one" }), opts) : null,
        h(
          "div.answer-line",
          null,
          h("input", { type: "text", name: "text", placeholder: "or type your own…", "aria-label": `free-text answer to question ${q.id}`, maxlength: "4000" }),
          h("button.primary", { type: "submit" }, "answer"),
        ),
      ),
      h(
        "form.qcancel",
        {
          "data-api": `/api/questions/${q.id}/cancel`,
          "data-kind": "empty",
          "data-confirm": `Cancel question #${q.id}?\n\n${q.asker} will receive the answer "[cancelled]".`,
        },
        h("button.ghost.small", { type: "submit" }, "✕ cancel question"),
      ),
    );
  }
  function renderQuestions(items) {
    // a question never changes while pending (only its countdown, which ticks on its own)
    reconcile($("#question-list"), items, (q) => q.id, questionRow, () => {});
    $("#questions").classList.toggle("has-items", items.length > 0);
    setCount("questions", items.length);
    tickCountdowns();
  }
  function tickCountdowns() {
    for (const el of $$(".turn-for[data-since]")) el.textContent = fmtCountdown(since(el.dataset.since) || 0);
    const now = Date.now() / 1000 + clockSkew;
    for (const chip of $$(".chip.countdown[data-deadline]")) {
      const left = Number(chip.dataset.deadline) - now;
      chip.querySelector(".left").textContent = fmtCountdown(left);
      chip.classList.toggle("urgent", left < 60);
    }
  }

  // -- inbox ----------------------------------------------------------------------------------
  function inboxRow(m) {
    return h(
      `li.row.irow${m.unread ? ".unread" : ""}${m.kind !== "message" ? "." + m.kind : ""}`,
      null,
      h("time", { datetime: m.sent_at, title: m.sent_at, text: fmtTime(m.sent_at) }),
      h("span.from", { text: m.sender }),
      h("span.body", { title: m.body.length > 400 ? m.body : null }, m.kind === "message" ? m.body : m.preview),
      m.sender !== "system"
        ? h("button.ghost", { type: "button", "data-reply-to": m.sender, title: `reply to ${m.sender}` }, "↩ reply")
        : h("span"),
    );
  }
  function renderInbox(state) {
    reconcile($("#inbox-list"), state.inbox, (m) => m.id, inboxRow, (el, m) => {
      el.classList.toggle("unread", m.unread);
    });
    setCount("inbox", state.inbox.length, false);
    const c = $('[data-count="inbox"]');
    c.textContent = state.inbox_unread ? `· ${state.inbox_unread} new` : "";
  }
  function renderRecipients(containers) {
    const sel = $("#reply-to");
    const want = ["*", ...containers.map((c) => c.name)];
    const have = Array.from(sel.options).map((o) => o.value);
    if (want.join("\n") === have.join("\n")) return;
    const keep = sel.value;
    sel.replaceChildren(...want.map((n) => h("option", { value: n, text: n === "*" ? "* (everyone)" : n })));
    const manager = containers.find((c) => c.role === "manager");
    sel.value = want.includes(keep) ? keep : manager ? manager.name : "*";
  }

  // -- tool permissions -----------------------------------------------------------------------
  function permissionRow(p) {
    const api = (d) => `/api/permissions/${p.id}/${d}`;
    return h(
      "li.row.prow",
      { data: { id: p.id } },
      h(
        "div.line",
        null,
        h("span.asker", { text: p.agent }),
        h("span.meta", { text: `asks to use ${p.tool} · ${p.age}` }),
        p.rule ? h("span.chip.kind", { title: "the ask_operator_for pattern it matched", text: p.rule }) : null,
        h(
          "span.chip.countdown",
          { data: { deadline: p.deadline_ts }, title: `denied "[expired]" at ${p.deadline_at}` },
          h("span.hourglass", { text: "⏳" }),
          " ",
          h("span.left", { text: p.countdown.replace(/^⏳ /, "") }),
        ),
        h("span.qid", { text: `#${p.id}` }),
      ),
      h("p.q-text.p-summary", null, h("code", { text: p.summary })),
      p.reason ? h("p.meta.p-reason", { text: `why: ${p.reason}` }) : null,
      p.fields.length
        ? h(
            "dl.p-input",
            null,
            p.fields.flatMap((f) => [h("dt", { text: f.key }), h("dd", null, f.multiline ? h("pre", { text: f.text }) : h("code", { text: f.text }))]),
          )
        : null,
      h(
        "form.decide.pform",
        { "data-api": api("allow"), "data-kind": "note", autocomplete: "off" },
        h("input", { type: "text", name: "note", placeholder: "note the model sees if denied (optional)", "aria-label": `note for permission ${p.id}`, maxlength: "2000" }),
        h("button.primary", { type: "submit", "data-api": api("allow") }, "allow once"),
        h("button", { type: "submit", "data-api": api("always"), title: `allow, and keep allowing ${p.agent} this same use without asking` }, "allow always"),
        h("button.danger", { type: "submit", "data-api": api("deny") }, "deny"),
      ),
    );
  }
  function renderPermissions(items) {
    // a pending request never changes (only its countdown, which ticks on its own)
    reconcile($("#permission-list"), items, (p) => p.id, permissionRow, () => {});
    $("#permissions").classList.toggle("has-items", items.length > 0);
    setCount("permissions", items.length);
    tickCountdowns();
  }

  // -- approvals ------------------------------------------------------------------------------
  function approvalRow(a) {
    return h(
      "li.row.arow",
      { data: { id: a.id } },
      h(
        "div.line",
        null,
        h("span.chip.kind", { title: a.kind.replace(/_/g, " ") }, h("span", { "aria-hidden": "true", text: a.kind_label }), h("span.sr-only", { text: a.kind.replace(/_/g, " ") })),
        h("span.name", { text: a.agent }),
        h("span.meta", null, "by ", h("b", { text: a.requested_by || "?" }), ` · ${a.age}`),
        a.sha ? h("span.meta", null, "commit ", h("b", { text: a.sha })) : null,
        h("span.qid", { text: `#${a.id}` }),
      ),
      a.description ? h("p.a-desc", { text: a.description }) : null,
      a.diff_html ? h("details.diff", { open: true }, h("summary", null, "diff"), h("div.diff-body", { html: a.diff_html })) : null,
      h(
        "form.decide",
        { "data-api": `/api/approvals/${a.id}/approve`, "data-kind": "note", autocomplete: "off" },
        h("input", { type: "text", name: "note", placeholder: "note (optional)", "aria-label": `note for approval ${a.id}`, maxlength: "4000" }),
        h("button.primary", { type: "submit", "data-api": `/api/approvals/${a.id}/approve` }, "approve"),
        h("button.danger", { type: "submit", "data-api": `/api/approvals/${a.id}/deny` }, "deny"),
      ),
    );
  }
  function renderApprovals(items) {
    reconcile($("#approval-list"), items, (a) => a.id, approvalRow, (el, a) => {
      // the diff can change when the applied config moves underneath a pending request
      const body = el.querySelector(".diff-body");
      if (body && a.diff_html) body.innerHTML = a.diff_html;
    });
    setCount("approvals", items.length);
  }

  // -- forms ----------------------------------------------------------------------------------
  function formBody(form) {
    const kind = form.dataset.kind;
    const fd = new FormData(form);
    if (kind === "answer") return { options: fd.getAll("opt"), text: (fd.get("text") || "").trim() || null };
    if (kind === "note") return { note: fd.get("note") || "" };
    if (kind === "spawn") return { name: (fd.get("name") || "").trim(), description: fd.get("description") || "" };
    if (kind === "reply") return { to: fd.get("to"), body: fd.get("body") || "" };
    return {};
  }

  async function onSubmit(ev) {
    const form = ev.target.closest("form[data-api]");
    if (!form) return;
    ev.preventDefault();
    const row = form.closest(".crow");
    if (row && row.classList.contains("pending")) return;
    const button = ev.submitter || form.querySelector("button[type=submit]");
    if (button && button.classList.contains("busy")) return;
    const confirmText = form.dataset.confirm;
    if (confirmText && !window.confirm(confirmText)) return;
    const url = (button && button.dataset.api) || form.dataset.api;
    const body = formBody(form);
    if (button) {
      button.classList.add("busy");
      button.disabled = true;
      button.setAttribute("aria-busy", "true");
    }
    try {
      const data = await api("POST", url, body);
      toast(data.message || "done");
      if (form.dataset.kind === "reply") $("#reply-body").value = "";
      if (form.dataset.kind === "spawn") form.reset();
      refreshSoon(0);
    } catch (e) {
      toast(e.message, "error");
    } finally {
      if (button) {
        button.classList.remove("busy");
        button.disabled = false;
        button.removeAttribute("aria-busy");
      }
    }
  }

  function onClick(ev) {
    const exp = ev.target.closest(".expand");
    if (exp) {
      toggleRow(exp.closest("li[data-name]").dataset.name);
      return;
    }
    const sort = ev.target.closest(".agent-cols .sort");
    if (sort) {
      const key = sort.dataset.sort;
      if (view.sort === key && view.dir < 0) setView({ sort: "default", dir: 1 });
      else setView({ sort: key, dir: view.sort === key ? -1 : 1 });
      return;
    }
    const to = ev.target.closest("[data-reply-to]");
    if (to) {
      const sel = $("#reply-to");
      if (!Array.from(sel.options).some((o) => o.value === to.dataset.replyTo)) return;
      sel.value = to.dataset.replyTo;
      $("#reply-body").focus();
    }
  }

  // -- refresh: event-driven plus a heartbeat -------------------------------------------------
  let heartbeat = null;
  let soon = null;
  let inflight = false;
  let again = false;
  let behind = false; // a refresh was skipped while the tab was hidden

  async function refresh() {
    if (document.visibilityState === "hidden") {
      // a tab in the background fetches and renders nothing (ten open tabs cost one); it
      // catches up the moment it is shown (the visibilitychange listener in main)
      behind = true;
      return;
    }
    if (inflight) {
      again = true;
      return;
    }
    inflight = true;
    try {
      render(await api("GET", "/api/state"));
    } catch (e) {
      setConn(false);
    } finally {
      inflight = false;
      clearTimeout(heartbeat);
      heartbeat = setTimeout(refresh, anyPending ? PENDING_HEARTBEAT_MS : HEARTBEAT_MS);
      if (again) {
        again = false;
        refreshSoon(0);
      }
    }
  }
  function refreshSoon(ms) {
    if (soon !== null) return;
    soon = setTimeout(() => {
      soon = null;
      refresh();
    }, ms);
  }

  // -- message flow and the event stream ------------------------------------------------------
  function eventBody(preview) {
    const m = /^\{"event":"([^"]+)",?([\s\S]*)$/.exec(preview);
    if (!m) return null;
    const rest = m[2]
      .replace(/\}$/, "")
      .replace(/"([A-Za-z_]+)":/g, "$1=")
      .replace(/,(?=[A-Za-z_]+=)/g, "  ");
    return [h("span.evt", { text: m[1] }), " ", oneLine(rest)];
  }

  function flowRow(ev, animate) {
    const d = ev.data || {};
    const kind = d.kind || "message";
    const body = (kind === "event" && eventBody(d.preview || "")) || oneLine(d.preview || "");
    return h(
      `li.frow${kind !== "message" ? "." + kind : ""}${animate ? "" : ".no-anim"}`,
      { data: { seq: ev.seq, id: d.id } },
      h("time", { datetime: d.sent_at || ev.ts, text: fmtTime(d.sent_at || ev.ts) }),
      h(
        "span.who",
        null,
        h("span.from", { text: d.sender }),
        h("span.arrow", { text: " → " }),
        h("span.to", { text: d.to }),
        // relayed from another node of the hive (docs/multihost.md): say which
        d.relayed && d.node ? h("span.fnode", { text: ` @${d.node}`, title: `sent on node ${d.node}` }) : null,
      ),
      h("span.body", { title: d.preview }, body),
    );
  }
  // In a burst (ten messages at once) only the first row rises; the others appear in place.
  // Every rising row is a composited animation for 420 ms, and in a browser without a GPU
  // (software compositing) ten overlapping ones in each open tab cost more CPU than the whole
  // page update: they made the actions of ten tabs at once wait (docs/benchmarks.md).
  // (Told by the row's animation events: asking `getAnimations()` would force a style update.)
  let risingRow = null;
  function addFlow(ev, animate) {
    const list = $("#flow-list");
    const rise = animate && !(risingRow && risingRow.isConnected);
    const row = flowRow(ev, rise);
    if (rise) {
      risingRow = row;
      const done = (e) => {
        if (e.target === row && risingRow === row) risingRow = null;
      };
      row.addEventListener("animationend", done);
      row.addEventListener("animationcancel", done);
    }
    list.prepend(row);
    while (list.children.length > FLOW_MAX) list.lastElementChild.remove();
    $('[data-empty="flow"]').hidden = true;
  }

  let shimmerTimer = null;
  function shimmer() {
    const banner = $("#banner");
    banner.classList.add("active");
    clearTimeout(shimmerTimer);
    shimmerTimer = setTimeout(() => banner.classList.remove("active"), SHIMMER_MS);
  }

  function onHiveEvent(ev) {
    if (ev.seq <= lastSeq) return; // replayed: already shown
    lastSeq = ev.seq;
    if (ev.kind === "message_sent") {
      addFlow(ev, true);
      shimmer();
      refreshSoon(400);
    } else if (ev.kind === "message_delivered") {
      refreshSoon(400);
    } else if (ev.kind === "budget_warning" || ev.kind === "budget_tripped") {
      const d = ev.data || {};
      const what = d.agent ? `${d.agent}: ` : "";
      if (ev.kind === "budget_warning") toast(`${what}${Math.round((d.fraction || 0) * 100)}% of ${d.key} used`);
      else toast(`${what}breaker tripped (${d.reason})`, "error");
      refreshSoon(60);
    } else {
      refreshSoon(60);
    }
  }

  async function loadHistory() {
    const hist = await api("GET", `/dashboard/history?since=0&kind=message_sent&limit=${FLOW_MAX}`);
    if (epoch && hist.epoch !== epoch) {
      location.reload();
      return false;
    }
    epoch = hist.epoch;
    const list = $("#flow-list");
    const rows = hist.events.filter((ev) => ev.kind === "message_sent").slice(-FLOW_MAX).reverse();
    list.replaceChildren(...rows.map((ev) => flowRow(ev, false)));
    $('[data-empty="flow"]').hidden = list.children.length > 0;
    lastSeq = hist.seq;
    return true;
  }

  // one stream per browser, shared by every dashboard tab (sharedstream.js): six tabs each
  // holding their own would take all six HTTP/1.1 connections Chromium allows per host
  let stream = null;
  function onFrame(type, data) {
    if (type === "hive") {
      onHiveEvent(JSON.parse(data));
    } else if (type === "hello") {
      const d = JSON.parse(data);
      if (epoch && d.epoch !== epoch) {
        location.reload(); // the daemon restarted: seqs start over
        return;
      }
      setConn(true);
      refreshSoon(0); // catch up with whatever happened while disconnected
    } else if (type === "resync") {
      stream.hold();
      resyncLater();
    }
  }
  function openStream() {
    stream = window.HHStream.create({
      key: "dashboard",
      url: () => `/dashboard/stream?since=${lastSeq}`,
      types: ["hello", "hive", "resync"],
      onFrame,
      onUp: () => setConn(true),
      onDown: (closed) => {
        setConn(false);
        if (closed) setTimeout(() => stream.start(), 2000); // an HTTP error: the browser gave up
      },
    });
  }
  async function resyncLater() {
    try {
      if (await loadHistory()) stream.start();
    } catch (err) {
      setTimeout(resyncLater, 2000);
    }
  }

  // -- start ----------------------------------------------------------------------------------
  async function main() {
    document.addEventListener("submit", onSubmit);
    document.addEventListener("click", onClick);
    $("#agent-filter").addEventListener("input", (e) => setView({ filter: e.target.value.trim().toLowerCase() }));
    $("#agent-show").addEventListener("change", (e) => setView({ show: e.target.value }));
    window.addEventListener("hashchange", hashView);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && behind) {
        behind = false;
        refreshSoon(0);
      }
    });
    const initial = JSON.parse($("#hh-initial").textContent);
    adoptRows(initial);
    render(initial);
    // the table came with the page (its `hh-table` mark is inline after it); from here on the
    // page is live (scripts/bench_dashboard.py measures both)
    performance.mark("hh-ready");
    hashView();
    setInterval(tickCountdowns, 1000);
    heartbeat = setTimeout(refresh, anyPending ? PENDING_HEARTBEAT_MS : HEARTBEAT_MS);
    openStream(); // frames that arrive while the history loads wait for start()
    try {
      await loadHistory();
    } catch (e) {
      lastSeq = initial.seq;
    }
    stream.start();
  }

  window.hyperhive = { fmtCountdown, refresh };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
  else main();
})();

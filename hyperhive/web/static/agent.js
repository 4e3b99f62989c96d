// hyperhive agent page: a live terminal into one agent.
//
// Boot order (no gap, no duplicate): GET api/state → GET events/history (rendered without
// animation, replaying turn_start/turn_end so the banner is right mid-turn) → EventSource on
// events/stream?after=<last id>. Events with an id we already rendered are dropped, so a
// reconnect can never duplicate a row. Every URL is relative (the page works under
// /agent/<name>/ and on the agent's own port). All data goes in through textContent.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const live = $("live");
  const NAME = document.body.dataset.name || "agent";
  const MAX_ROWS = 3000;        // rows kept in the panel (oldest dropped first)
  const COLLAPSE_AT = 120;      // tool results longer than this collapse into <details>
  const MAX_RESULT = 20000;     // characters of a tool result shown before cutting

  const S = {
    lastId: 0,
    turnActive: false,
    compacting: false,
    turnStartedAt: null,
    tools: new Map(),           // tool_use id -> short tool name (for result rows)
    es: null,
    retry: 0,
    reconnectTimer: null,
    refreshTimer: null,
    sent: [],                   // prompt history (↑/↓)
    sentPos: 0,
  };

  // ---------------------------------------------------------------- small helpers

  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }

  function span(cls, text) { return el("span", cls, text); }

  // one formatter for every row (toLocaleTimeString builds a new one per call)
  const TIME_FMT = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  function fmtTime(ts) {
    if (!ts) return "";
    const d = new Date(ts);
    if (isNaN(d)) return String(ts).slice(11, 19);
    return TIME_FMT.format(d);
  }

  function fmtDate(ts) {
    const d = new Date(ts);
    if (isNaN(d)) return String(ts || "");
    const today = new Date();
    const same = d.toDateString() === today.toDateString();
    return same ? fmtTime(ts) : `${d.toISOString().slice(5, 10)} ${fmtTime(ts)}`;
  }

  function fmtNum(n) {
    n = Number(n || 0);
    if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (n >= 1e4) return (n / 1e3).toFixed(0) + "k";
    if (n >= 1e3) return (n / 1e3).toFixed(1) + "k";
    return String(n);
  }

  function fmtCost(c) {
    if (c === null || c === undefined) return "–";
    c = Number(c);
    return "$" + (c >= 1 ? c.toFixed(2) : c.toFixed(4));
  }

  function fmtMs(ms) {
    ms = Number(ms || 0);
    if (ms < 1000) return `${Math.round(ms)}ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)}s`;
    const m = Math.floor(s / 60);
    return `${m}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
  }

  function oneLine(text, max) {
    const s = String(text ?? "").replace(/\s+/g, " ").trim();
    return s.length > max ? s.slice(0, max - 1) + "…" : s;
  }

  function shortTool(name) {
    name = String(name || "?");
    if (name.startsWith("mcp__hyperhive__")) return name.slice("mcp__hyperhive__".length);
    const m = /^mcp__(.+?)__(.+)$/.exec(name);
    return m ? `${m[1]}:${m[2]}` : name;
  }

  // A message as a person reads it: system events ({"event": "kick", "note": ...}) become
  // "kick · note" instead of raw JSON; anything else is shown as sent.
  function messageText(body, kind) {
    body = String(body ?? "");
    if (kind !== "event") return body;
    let ev;
    try { ev = JSON.parse(body); } catch (_) { return body; }
    if (!ev || typeof ev !== "object" || Array.isArray(ev)) return body;
    const { event, note, ...rest } = ev;
    const parts = Object.entries(rest).map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`);
    if (note) parts.unshift(String(note));
    return `⚙ ${event || "event"}${parts.length ? " · " + parts.join(" · ") : ""}`;
  }

  // Claude Code wraps some text in pseudo-tags (`<tool_use_error>…</tool_use_error>`,
  // `<local-command-stdout>…`): show what they wrap, not the tags
  const CLI_TAGS = /<\/?(?:tool_use_error|local-command-stdout|local-command-stderr|command-name|command-message|command-args|bash-stdout|bash-stderr|bash-input)>/g;
  function untag(text) {
    return String(text ?? "").replace(CLI_TAGS, "");
  }

  function compactJson(v, max) {
    let s;
    try { s = JSON.stringify(v); } catch (_) { s = String(v); }
    return oneLine(s, max);
  }

  // ---------------------------------------------------------------- the panel

  function nearBottom() {
    return live.scrollHeight - live.scrollTop - live.clientHeight < 48;
  }

  function scrollToBottom() {
    live.scrollTop = live.scrollHeight;
    $("jump").hidden = true;
  }

  function append(row, animate) {
    if (!row) return;
    const stick = nearBottom();
    row.classList.add(animate ? "fresh" : "no-anim");
    const empty = live.querySelector(".placeholder");
    if (empty) empty.remove();
    live.appendChild(row);
    while (live.childElementCount > MAX_ROWS) live.firstElementChild.remove();
    if (stick) scrollToBottom();
    else if (animate) $("jump").hidden = false;
  }

  function row(kind, ...children) {
    const r = el("div", `row k-${kind}`);
    for (const c of children) {
      if (c === null || c === undefined) continue;
      r.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    }
    return r;
  }

  function local(text, cls) {
    append(row("local " + (cls || ""), span("glyph", "»"), span("body", text)), true);
  }

  function collapsible(cls, glyph, text, limit) {
    // short text inline; long text as a <details> whose summary is its first line
    text = String(text ?? "");
    if (text.length <= limit) {
      return row(cls, span("glyph", glyph), span("body", text === "" ? "(no output)" : text));
    }
    const shown = text.length > MAX_RESULT
      ? text.slice(0, MAX_RESULT) + `\n… (${text.length - MAX_RESULT} more characters)`
      : text;
    const lines = text.split("\n").length;
    const d = el("details", "fold");
    const sum = el("summary");
    sum.append(span("glyph", glyph), span("body", oneLine(text.split("\n")[0], 100)),
      span("dim size", ` · ${lines} line${lines === 1 ? "" : "s"}, ${fmtNum(text.length)} chars`));
    d.append(sum, el("pre", "full", shown));
    return row(cls, d);
  }

  // How each tool call reads in the panel: `Bash $ cmd`, `Read /path`, `send → to: body`, ...
  function toolSummary(name, input) {
    input = input || {};
    const path = input.file_path || input.notebook_path || input.path || "";
    switch (name) {
      case "Bash":
        return ["$ " + oneLine(input.command, 400), input.description ? oneLine(input.description, 80) : ""];
      case "Read": {
        const range = input.offset || input.limit
          ? ` [${input.offset || 1}${input.limit ? "+" + input.limit : ""}]` : "";
        return [path + range, ""];
      }
      case "Edit": case "MultiEdit": case "Write": case "NotebookEdit":
        return [path, input.edits ? `${input.edits.length} edits` : ""];
      case "Glob": return [String(input.pattern || ""), input.path || ""];
      case "Grep": return [`"${oneLine(input.pattern, 120)}"`, input.path || input.glob || ""];
      case "WebFetch": return [String(input.url || ""), ""];
      case "WebSearch": return [String(input.query || ""), ""];
      case "Task": case "Agent": return [oneLine(input.description || input.prompt, 160), input.subagent_type || ""];
      case "TodoWrite": return [`${(input.todos || []).length} todos`, ""];
      case "send": return [`→ ${input.to}: ${oneLine(input.body, 300)}`, ""];
      case "recv": return [input.wait_seconds ? `wait ${input.wait_seconds}s` : "", ""];
      case "ask_operator": {
        const opts = Array.isArray(input.options) && input.options.length
          ? ` [${input.options.join(" | ")}]` : "";
        return [oneLine(input.question, 300) + opts, input.multi ? "multi" : ""];
      }
      case "remind": {
        const when = input.delay_seconds !== undefined ? `in ${input.delay_seconds}s`
          : input.at_unix_timestamp ? `at ${new Date(input.at_unix_timestamp * 1000).toLocaleString()}` : "";
        return [`${when}: ${oneLine(input.message || input.file_path, 240)}`, ""];
      }
      case "set_status": return [`“${oneLine(input.text, 200)}”`, ""];
      default: {
        const keys = Object.keys(input);
        return [keys.length ? compactJson(input, 200) : "", ""];
      }
    }
  }

  function renderToolUse(ev) {
    const name = shortTool(ev.name);
    S.tools.set(ev.id, name);
    const [main, extra] = toolSummary(name, ev.input);
    const mcp = String(ev.name || "").startsWith("mcp__hyperhive__");
    return row("tool_use" + (mcp ? " hive-tool" : ""),
      span("glyph", "◆"), span("tool", name), main ? span("arg", " " + main) : null,
      extra ? span("dim", "  # " + extra) : null);
  }

  function renderTurnStart(ev) {
    const from = ev.from || "?";
    const head = row("turn_start", span("ts", fmtTime(ev.ts)), span("glyph", "▶"),
      span("who", from), span("dim", ev.payload_kind === "event" ? " · event" : " woke me"));
    if (ev.unread) head.appendChild(span("unread-chip", `· ${ev.unread} unread`));
    const wrap = el("div", "turn-block");
    wrap.appendChild(head);
    const body = messageText(ev.body, ev.payload_kind);
    if (body) {
      const cls = "turn_body" + (ev.payload_kind === "event" ? " event" : "");
      wrap.appendChild(body.length > 600 ? collapsible(cls, "“", body, 0) : row(cls, span("body", body)));
    }
    return wrap;
  }

  function renderTurnEnd(ev) {
    const took = S.turnStartedAt && ev.ts ? fmtMs(new Date(ev.ts) - new Date(S.turnStartedAt)) : "";
    const kind = ev.payload_kind || (ev.ok ? "ok" : "failed");
    const words = {
      ok: ["■", "turn done"],
      cancelled: ["⊘", "turn cancelled"],
      failed: ["✖", "turn failed"],
      prompt_too_long: ["⇣", "prompt too long: compacting, then retrying"],
      rate_limited: ["‖", "rate limited: retrying later"],
    }[kind] || ["■", `turn ended (${kind})`];
    return row("turn_end kind-" + kind, span("ts", fmtTime(ev.ts)), span("glyph", words[0]),
      span("body", words[1]), took ? span("dim", ` · ${took}`) : null,
      ev.note ? span("note", ` · ${oneLine(ev.note, 400)}`) : null);
  }

  // One row (or null: not shown) per bus event.
  function render(ev) {
    switch (ev.kind) {
      case "turn_start": return renderTurnStart(ev);
      case "turn_end": return renderTurnEnd(ev);
      case "text":
        return row("text" + (ev.error ? " err" : ""), span("glyph", "●"), span("body", untag(ev.text)));
      case "thinking":
        return ev.thinking
          ? row("thinking", span("glyph", "✻"), span("body", ev.thinking))
          : row("thinking empty", span("glyph", "✻"), span("body", "thinking…"));
      case "tool_use": return renderToolUse(ev);
      case "tool_result": {
        const r = collapsible("tool_result" + (ev.is_error ? " err" : ""), ev.is_error ? "✖" : "↳",
          untag(typeof ev.content === "string" ? ev.content : compactJson(ev.content, MAX_RESULT)), COLLAPSE_AT);
        const tool = S.tools.get(ev.tool_use_id);
        if (tool) r.dataset.tool = tool;
        return r;
      }
      case "user_text":
        return ev.text ? collapsible("user_text", "⌁", untag(ev.text), COLLAPSE_AT) : null;
      case "note": return row("note", span("glyph", "·"), span("body", ev.text));
      case "harness_start":
        return row("harness_start", span("ts", fmtTime(ev.ts)),
          span("body", `── harness up · ${ev.name || NAME} · model ${ev.model || "?"} ──`));
      case "compact_start":
        return row("compact", span("glyph", "⇣"), span("body", `compacting · ${ev.reason || ""}`));
      case "claude_start":  // the CLI process: warm (kept between turns) or one per turn
        return row("note", span("glyph", "·"), span("body", ev.warm ? "claude started (kept warm)" : "claude started"));
      case "claude_exit":
        return ev.why === "crashed"
          ? row("note err", span("glyph", "✖"), span("body", `claude exited on its own · code ${ev.code}`))
          : null;
      case "compact_end":
        return row("compact" + (ev.ok ? "" : " err"), span("glyph", ev.ok ? "⇡" : "✖"),
          span("body", ev.ok ? "compacted" : `compaction failed · ${ev.note || ""}`));
      case "compact_boundary":
        return row("compact", span("body",
          `── context compacted (${ev.trigger}) · ${fmtNum(ev.pre_tokens)} → ${fmtNum(ev.post_tokens)} tokens ──`));
      case "status":
        return ev.status && ev.status !== "requesting"
          ? row("status", span("glyph", "…"), span("body", ev.status)) : null;
      case "api_retry":
        return row("api_retry", span("glyph", "⟳"), span("body",
          `API retry ${ev.attempt}/${ev.max_retries} in ${fmtMs(ev.retry_delay_ms)}` +
          (ev.error_status ? ` · HTTP ${ev.error_status}` : "") + (ev.error ? ` · ${ev.error}` : "")));
      case "permission_denied":
        return row("permission_denied err", span("glyph", "✖"),
          span("body", `${shortTool(ev.tool_name)} denied · ${ev.message || ""}`));
      case "unknown":  // system/* lines the parser does not know are CLI bookkeeping
        if (ev.raw && ev.raw.type === "system") return null;
        return collapsible("unknown", "?", ev.text || compactJson(ev.raw, 100000), 0);
      // not rows: the header shows these, or they are bookkeeping
      case "state": case "session_init": case "result": case "rate_limit":
      case "control_request": case "control_response":
        return null;
      default:
        return row("other", span("glyph", "·"), span("dim", ev.kind + " "),
          span("body", compactJson(Object.fromEntries(
            Object.entries(ev).filter(([k]) => !["id", "ts", "kind"].includes(k))), 300)));
    }
  }

  // The bookkeeping every event does besides its row (history replay and live alike).
  function track(ev) {
    switch (ev.kind) {
      case "turn_start":
        S.turnActive = true; S.turnStartedAt = ev.ts;
        setUnread(ev.unread || 0);
        break;
      case "turn_end": S.turnActive = false; break;
      case "compact_start": S.compacting = true; break;
      case "compact_end": S.compacting = false; break;
      case "harness_start": S.turnActive = false; S.compacting = false; break; // a crash mid-turn
      case "state": setState(ev.state); break;
    }
  }

  function oldestPartial(part) {
    return live.querySelector(`.k-partial[data-part="${part}"]`);
  }

  function livePartial(ev, animate) {
    const block = String(ev.block || "");
    let r = Array.from(live.querySelectorAll(".k-partial")).find((x) => x.dataset.block === block);
    const stick = nearBottom();
    if (!r) {
      const thinking = ev.part === "thinking";
      r = row(`partial ${thinking ? "thinking" : "text"}`, span("glyph", thinking ? "✻" : "●"), span("body", ""), span("cursor", "▍"));
      r.dataset.block = block;
      r.dataset.part = thinking ? "thinking" : "text";
      r.setAttribute("aria-busy", "true");
      append(r, animate);
    }
    r.querySelector(".body").textContent = untag(ev.text || "");
    if (stick) scrollToBottom();
  }

  function consume(ev, animate) {
    if (typeof ev.id === "number") {
      if (ev.id <= S.lastId) return;  // already shown (replay overlap or reconnect)
      S.lastId = ev.id;
    }
    if (ev.kind === "partial") {  // live text: one row per streaming block, updated in place
      livePartial(ev, animate);
      return;
    }
    // the duration on turn_end needs the start time, so render before tracking turn_end
    const r = render(ev);
    if (r && typeof ev.id === "number") r.dataset.id = ev.id;
    track(ev);
    // the final text / thinking row takes the place of its live row (folded in)
    const folded = (ev.kind === "text" || ev.kind === "thinking") && r ? oldestPartial(ev.kind) : null;
    if (folded) {
      r.classList.add(animate ? "fresh" : "no-anim", "folded");  // .folded: no second fade-in
      folded.replaceWith(r);
    } else {
      append(r, animate);
    }
    if (["turn_end", "harness_start", "compact_end"].includes(ev.kind)) {
      for (const p of live.querySelectorAll(".k-partial")) p.remove();
    }
    setBanner();
    if (animate && ["turn_start", "turn_end", "compact_end"].includes(ev.kind)) refreshSoon();
  }

  // ---------------------------------------------------------------- header, inbox, stats

  function setBanner() {
    $("banner").classList.toggle("active", S.turnActive || S.compacting);
  }

  function setState(state) {
    const b = $("state");
    b.textContent = state === "waiting_operator" ? "waiting for the operator" : state;
    b.className = `state-badge state-${state}`;
    document.body.dataset.state = state;
  }

  // what the core was told (report_state): a failed last turn shows its note until one succeeds
  function setReported(rep) {
    const note = $("state-note");
    const failed = !!rep && rep.state === "failed";
    note.hidden = !failed;
    note.textContent = failed ? `· last turn failed: ${rep.note || ""}` : "";
    note.title = failed ? rep.note || "" : "";
  }

  function setUnread(n) {
    const u = $("unread");
    n = Number(n || 0);
    u.hidden = n <= 0;
    u.textContent = `· ${n} unread`;
  }

  function renderLogin(login) {
    const l = $("login");
    l.replaceChildren();
    if (!login) return;
    l.className = "login " + (login.logged_in ? "ok" : "needs");
    l.append(span("glyph", login.logged_in ? "●" : "○"),
      span("", login.logged_in ? ` logged in · ${login.how}` : ` needs login · ${login.how}`));
  }

  function renderTotals(t) {
    const n = $("totals");
    if (!t || !t.turns) { n.textContent = "no turns yet"; $("stats-totals").textContent = ""; return; }
    n.textContent = `Σ ${fmtNum(t.input_tokens)} in · ${fmtNum(t.output_tokens)} out` +
      (t.cache_read_tokens ? ` · ${fmtNum(t.cache_read_tokens)} cached` : "") +
      ` · ${fmtCost(t.cost_usd)}`;
    $("stats-totals").textContent = `· ${t.turns} total, ${t.ok || 0} ok · ` +
      `${fmtNum(t.input_tokens)}/${fmtNum(t.output_tokens)} tokens · ${fmtCost(t.cost_usd)} · ` +
      `${t.tool_calls} tool calls · ${fmtMs(t.duration_ms)}`;
  }

  function renderInbox(rows) {
    const box = $("inbox");
    rows = rows || [];
    box.hidden = rows.length === 0;
    $("inbox-count").textContent = `· ${rows.length}`;
    const grid = $("inbox-rows");
    grid.replaceChildren();
    for (const m of rows) {
      const r = el("div", "inbox-row" + (m.delivered_at ? "" : " undelivered"));
      r.append(span("ts", fmtDate(m.sent_at)), span("from", m.from || m.sender || "?"),
        span("body", messageText(m.body, m.kind)));
      r.title = m.delivered_at ? `delivered ${m.delivered_at}` : "not delivered yet";
      grid.appendChild(r);
    }
  }

  function renderStats(recent) {
    const body = $("stats-rows");
    body.replaceChildren();
    if (!recent || !recent.length) {
      const tr = el("tr", "empty");
      const td = el("td", "", "no turns yet"); td.colSpan = 7;
      tr.appendChild(td); body.appendChild(tr);
      return;
    }
    for (const t of recent) {
      const tr = el("tr", `result-${t.result_kind}`);
      const tools = Object.entries(t.tool_breakdown || {})
        .map(([k, v]) => `${shortTool(k)}×${v}`).join(" ");
      for (const [text, cls] of [
        [fmtDate(t.started_at), "ts"], [t.wake_from, ""], [t.result_kind, "kind"],
        [fmtMs(t.duration_ms), "num"], [`${fmtNum(t.input_tokens)}/${fmtNum(t.output_tokens)}`, "num"],
        [fmtCost(t.cost_usd), "num"], [tools || "–", "tools"],
      ]) tr.appendChild(el("td", cls, text));
      if (t.note) tr.title = t.note;
      body.appendChild(tr);
    }
  }

  function applyState(st) {
    $("agent-name").textContent = st.name;
    $("model").textContent = st.model;
    const role = $("role");
    const word = st.role === "manager" ? "manager" : "agent";
    role.replaceChildren(el("span", "", st.role === "manager" ? "m1nd" : "ag3nt"), el("span", "sr-only", word));
    role.firstChild.setAttribute("aria-hidden", "true");
    role.title = word;
    role.className = `chip role role-${st.role}`;
    setState(st.state);
    setReported(st.reported);
    setUnread(st.unread);
    renderLogin(st.login);
    renderTotals(st.stats && st.stats.totals);
    renderStats(st.stats && st.stats.recent);
    renderInbox(st.inbox);
    document.title = `${st.name} · ${st.state} · hyperhive`;
  }

  // Behind the core (dashboard proxy, agent port) a state-changing request must carry the
  // session's CSRF token, which the core hands out in the cookie hh_csrf_<port>.
  function csrfToken() {
    const jar = document.cookie.split("; ").map((c) => c.split("="));
    const port = location.port || (location.protocol === "https:" ? "443" : "80");
    const exact = jar.find(([k]) => k === `hh_csrf_${port}`);
    const any = jar.find(([k]) => k.startsWith("hh_csrf_"));
    const hit = exact || any;
    return hit ? decodeURIComponent(hit.slice(1).join("=")) : null;
  }

  async function api(path, opts) {
    opts = opts || {};
    if (opts.method && opts.method !== "GET") {
      const token = csrfToken();
      if (token) opts.headers = { ...(opts.headers || {}), "X-CSRF-Token": token };
    }
    const res = await fetch(path, opts);
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok || !body || body.ok === false) {
      throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
    }
    return body;
  }

  async function refreshState() {
    try { applyState(await api("api/state")); } catch (e) { /* the stream shows liveness */ }
  }

  function refreshSoon() {
    clearTimeout(S.refreshTimer);
    S.refreshTimer = setTimeout(refreshState, 150);
  }

  // ---------------------------------------------------------------- history + stream

  function setConn(text, cls) {
    const c = $("conn");
    c.textContent = text;
    c.className = "conn " + (cls || "");
  }

  async function loadHistory() {
    const hist = await api("events/history");
    for (const ev of hist.events) consume(ev, false);
    if (hist.state) setState(hist.state);
    // the ring may have lost the turn's start; the harness's own state settles it
    if (hist.state === "thinking" || hist.state === "waiting_operator") S.turnActive = true;
    if (hist.state === "compacting") S.compacting = true;
    if (["waiting", "idle", "offline"].includes(hist.state)) { S.turnActive = false; S.compacting = false; }
    setBanner();
    if (!hist.events.length && !live.childElementCount) {
      live.appendChild(el("div", "placeholder", "no events yet · waiting for the first turn"));
    }
    S.lastId = Math.max(S.lastId, hist.last_id || 0);
    scrollToBottom();
    showTarget();
  }

  // `#event-N` (a search hit on the dashboard): scroll to that event and mark it; an event
  // older than the page's history (the newest 500) gets a note instead.
  function showTarget() {
    const m = /^#event-(\d+)$/.exec(location.hash);
    if (!m) return;
    const target = live.querySelector(`[data-id="${m[1]}"]`);
    if (target) {
      target.classList.add("target");
      target.scrollIntoView({ block: "center" });
      $("jump").hidden = false;
    } else {
      live.prepend(el("div", "placeholder target-missing",
        `event #${m[1]} is older than this page's history (its newest events)`));
    }
  }
  window.addEventListener("hashchange", showTarget);

  // One stream per browser for this page, shared by its tabs (sharedstream.js). Frames that
  // arrive while the history loads wait in the buffer until start().
  const stream = window.HHStream.create({
    key: `agent:${location.pathname}`,
    url: () => `events/stream?after=${S.lastId}`,
    types: ["message", "reset"],
    onFrame(type, data) {
      if (type === "reset") { restart(); return; }
      let ev;
      try { ev = JSON.parse(data); } catch (_) { return; }
      consume(ev, true);
    },
    onUp() {
      S.retry = 0;
      setConn("● live", "up");
      refreshState();
    },
    onDown(closed) {
      if (!closed) { setConn("○ reconnecting…", "down"); return; }
      // an HTTP error (the harness is down behind the core): EventSource gives up; we don't
      setConn("○ agent page unreachable · retrying", "down");
      retryLater();
    },
  });

  function openStream() { stream.start(); }

  function retryLater() {
    clearTimeout(S.reconnectTimer);
    const delay = Math.min(1000 * 2 ** S.retry, 15000);
    S.retry += 1;
    S.reconnectTimer = setTimeout(boot, delay);
  }

  async function restart() {
    stream.hold();
    live.replaceChildren();
    S.lastId = 0; S.turnActive = false; S.compacting = false; S.tools.clear();
    await boot();
  }

  async function boot() {
    stream.hold();
    try {
      applyState(await api("api/state"));
      await loadHistory();
      openStream();
    } catch (e) {
      setConn("○ agent page unreachable · retrying", "down");
      retryLater();
    }
  }

  // ---------------------------------------------------------------- the prompt row

  const COMMANDS = {
    "/help": ["list these commands", help],
    "/cancel": ["interrupt the running turn", cancel],
    "/compact": ["compact the conversation (now if idle, else after this turn)", compact],
    "/clear": ["clear this panel (nothing is deleted; reload to see it again)", clearPanel],
  };

  function help() {
    local("commands:");
    for (const [cmd, [what]] of Object.entries(COMMANDS)) local(`${cmd.padEnd(9)} ${what}`, "help");
    local(`anything else is sent to ${NAME} as a message`, "help");
  }

  // The operator's own rows go in *before* the request: its answer comes after the turn's
  // rows it caused (the stream is faster than the reply), and the echo belongs above them.
  function pending(text, cls) {
    const body = span("body", text);
    append(row("local " + (cls || ""), span("glyph", "»"), body), true);
    return body;
  }

  async function cancel() {
    const line = pending("⊘ cancelling…");
    try {
      const r = await api("api/cancel", { method: "POST" });
      line.textContent = r.cancelled ? "⊘ cancel sent: interrupting the turn" : `nothing to cancel (${r.state})`;
    } catch (e) {
      line.textContent = "⊘ cancel failed";
      throw e;
    }
  }

  async function compact() {
    await api("api/compact", { method: "POST" });
    local("⇣ compaction queued");
  }

  function clearPanel() { live.replaceChildren(); }

  async function sendMessage(text) {
    const echo = `✉ operator → ${NAME}: ${oneLine(text, 200)}`;
    const line = pending(`${echo}  (sending…)`, "sent");
    let r;
    try {
      r = await api("send", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ body: text }),
      });
    } catch (e) {
      line.textContent = `${echo}  (not sent)`;
      throw e;
    }
    const ids = (r.ids || []).map((i) => `#${i}`).join(", ");
    line.textContent = `✉ ${r.sender || "operator"} → ${NAME}: ${oneLine(text, 200)}  ${ids ? "(" + ids + ")" : ""}`;
    refreshSoon();
  }

  async function submit(ev) {
    ev.preventDefault();
    const input = $("prompt-input");
    const text = input.value.trim();
    if (!text) return;
    S.sent.push(text); S.sentPos = S.sent.length;
    input.value = "";
    input.disabled = true;
    try {
      if (text.startsWith("/")) {
        const cmd = text.split(/\s+/)[0].toLowerCase();
        const entry = COMMANDS[cmd];
        if (entry) await entry[1]();
        else local(`unknown command ${cmd} · /help lists the commands`, "err");
      } else {
        await sendMessage(text);
      }
    } catch (e) {
      local(`✖ ${e.message}`, "err");
    } finally {
      input.disabled = false;
      input.focus();
    }
  }

  function historyKeys(ev) {
    const input = $("prompt-input");
    if (ev.key === "ArrowUp" && S.sentPos > 0) {
      S.sentPos -= 1; input.value = S.sent[S.sentPos]; ev.preventDefault();
    } else if (ev.key === "ArrowDown" && S.sentPos < S.sent.length) {
      S.sentPos += 1; input.value = S.sent[S.sentPos] || ""; ev.preventDefault();
    }
  }

  // ---------------------------------------------------------------- wiring

  // the inbox stays as the operator left it (open unless they closed it)
  const inbox = $("inbox");
  inbox.open = localStorage.getItem("hyperhive.inbox.closed") !== "1";
  inbox.addEventListener("toggle", () => {
    localStorage.setItem("hyperhive.inbox.closed", inbox.open ? "0" : "1");
  });
  $("prompt").addEventListener("submit", submit);
  $("prompt-input").addEventListener("keydown", historyKeys);
  $("jump").addEventListener("click", scrollToBottom);
  live.addEventListener("scroll", () => { if (nearBottom()) $("jump").hidden = true; });
  boot();
})();

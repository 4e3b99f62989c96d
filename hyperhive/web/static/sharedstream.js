// One server-sent event stream per browser, shared by all of its tabs.
//
// Why: over HTTP/1.1 Chromium allows six connections per host. Every tab holding its own
// EventSource uses one of them for good, so the seventh tab never loads and the others'
// requests queue behind the streams. Here one tab (the leader, chosen with the Web Locks API)
// holds the EventSource and relays every frame on a BroadcastChannel; the other tabs only
// listen. When the leader closes, the lock passes to the next tab, which opens the stream from
// where *it* is (`url()`); pages drop frames they already have (by seq / id), so a hand-over
// loses nothing and duplicates nothing.
//
// Without Web Locks (a page served over plain http to a non-loopback address is not a secure
// context) each tab falls back to its own EventSource: the old behaviour.
//
// Use:
//   const s = HHStream.create({key, url, types, onFrame, onUp, onDown});
//   ... load history ...   s.start();   // frames that came meanwhile are delivered now
//   s.hold();   // buffer again (before reloading history); s.start() resumes / reopens
// onFrame(type, data) gets the frame's event type and its raw data string, in every tab.
// onUp() / onDown(closed) tell every tab whether the stream is live; `closed` means the
// browser gave up (an HTTP error): the leader reopens it on its next start().
(() => {
  "use strict";

  function create(opts) {
    const { key, url, types, onFrame, onUp, onDown } = opts;
    const shared = typeof BroadcastChannel !== "undefined" && !!(navigator.locks && navigator.locks.request);
    const channel = shared ? new BroadcastChannel(`hh-stream:${key}`) : null;
    let started = false;
    let buffer = [];
    let leader = !shared; // without sharing, every tab leads its own stream
    let es = null;
    let up = false;

    function deliver(type, data) {
      if (started) onFrame(type, data);
      else buffer.push([type, data]);
    }

    function setUp(value, closed) {
      up = value;
      if (value) onUp();
      else onDown(!!closed);
      if (channel && leader) channel.postMessage({ t: "state", up: value, closed: !!closed });
    }

    function openSource() {
      if (es) es.close();
      const source = new EventSource(url());
      es = source;
      source.onopen = () => setUp(true);
      source.onerror = () => setUp(false, source.readyState === EventSource.CLOSED);
      for (const type of types) {
        source.addEventListener(type, (e) => {
          if (channel) channel.postMessage({ t: "frame", type, data: e.data });
          deliver(type, e.data);
        });
      }
    }

    if (channel) {
      channel.onmessage = (m) => {
        const msg = m.data || {};
        if (msg.t === "frame" && !leader) deliver(msg.type, msg.data);
        else if (msg.t === "state" && !leader) msg.up ? onUp() : onDown(msg.closed);
        else if (msg.t === "ask" && leader && es) channel.postMessage({ t: "state", up, closed: false });
      };
    }

    function lead() {
      navigator.locks.request(`hh-stream:${key}`, () => {
        leader = true;
        if (started) openSource();
        return new Promise(() => {}); // held for the life of the tab
      });
    }

    let requested = false;
    return {
      get leader() { return leader; },
      start() {
        started = true;
        const queued = buffer;
        buffer = [];
        for (const [type, data] of queued) onFrame(type, data);
        if (!shared) {
          openSource();
          return;
        }
        if (leader) openSource();
        else channel.postMessage({ t: "ask" });
        if (!requested) {
          requested = true;
          lead();
        }
      },
      hold() {
        started = false;
      },
      close() {
        if (es) es.close();
        es = null;
        if (channel) channel.close();
      },
    };
  }

  window.HHStream = { create };
})();

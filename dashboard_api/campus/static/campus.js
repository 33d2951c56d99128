"use strict";
(function () {
  const API = "/api/campus/v1";
  const FALLBACK_POLL_MS = 60000; // the live stream does the work; this only covers its gaps
  const STREAM_EVENTS = ["alert", "status", "kpi", "online", "cmd-result", "building", "reset"];
  let selected = null;
  let stream = null;
  const $ = (id) => document.getElementById(id);

  function token() {
    let t = sessionStorage.getItem("campus-token");
    if (!t) {
      t = window.prompt("Campus view token") || "";
      sessionStorage.setItem("campus-token", t);
    }
    return t;
  }
  async function api(path, opts) {
    const o = Object.assign({}, opts || {});
    o.headers = Object.assign({ Authorization: "Bearer " + token() }, o.headers || {});
    const res = await fetch(API + path, o);
    if (res.status === 401) { sessionStorage.removeItem("campus-token"); throw new Error("token refused"); }
    if (!res.ok) {
      let detail = res.statusText;
      try { detail = (await res.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    return res.status === 204 ? null : res.json();
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function renderPicker(list) {
    const nav = $("picker");
    nav.replaceChildren();
    const all = el("button", selected === null ? "active" : "", "all buildings");
    all.onclick = () => { selected = null; refreshSoon(); };
    nav.append(all);
    for (const b of list) {
      const label = b.id + " (" + b.open_alerts + ")";
      const btn = el("button", (selected === b.id ? "active " : "") + (b.online ? "" : "offline"), label);
      btn.title = b.online ? "online" : "gateway offline";
      btn.onclick = () => { selected = b.id; refreshSoon(); };
      nav.append(btn);
    }
  }
  function renderKpis(data) {
    const k = selected === null ? data.campus : data.buildings.find((b) => b.id === selected) || {};
    const box = $("kpis");
    box.replaceChildren();
    const items = [
      ["open alerts", k.open_alerts], ["critical", k.critical_open],
      ["devices online", (k.devices_online ?? "–") + " / " + (k.devices_total ?? "–")],
    ];
    if (selected === null) items.push(["buildings online", k.buildings_online + " / " + k.buildings]);
    for (const [name, value] of items) {
      const d = el("div");
      d.append(el("b", "", value ?? "–"), el("span", "", name));
      box.append(d);
    }
  }
  async function act(a, action) {
    let note = "";
    if (action === "resolve") {
      note = window.prompt("Why is it resolved?") || "";
      if (!note.trim()) return;
    }
    const path = "/alerts/" + encodeURIComponent(a.building) + "/" + encodeURIComponent(a.id) + "/" + action;
    try {
      await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ note }) });
      $("status").textContent = action + " sent to " + a.building;
    } catch (e) { $("status").textContent = e.message; }
  }
  function renderAlerts(alerts) {
    const body = $("alerts");
    body.replaceChildren();
    for (const a of alerts) {
      const tr = el("tr");
      const opened = new Date(a.opened_ms).toLocaleString();
      for (const [v, cls] of [[a.building], [a.rule], [a.subject], [a.severity, "sev-" + a.severity], [a.state], [opened], [a.message]]) {
        tr.append(el("td", cls || "", v));
      }
      const td = el("td");
      if (a.state === "open") {
        const b = el("button", "", "acknowledge");
        b.onclick = () => act(a, "acknowledge");
        td.append(b);
      }
      if (a.state !== "resolved") {
        const r = el("button", "", "resolve");
        r.onclick = () => act(a, "resolve");
        td.append(r);
      }
      tr.append(td);
      body.append(tr);
    }
  }
  async function refresh() {
    try {
      const data = await api("/buildings");
      const q = selected === null ? "" : "?building=" + encodeURIComponent(selected);
      const alerts = await api("/alerts" + q);
      renderPicker(data.buildings);
      renderKpis(data);
      renderAlerts(alerts.alerts.filter((a) => a.state !== "resolved"));
    } catch (e) { $("status").textContent = e.message; }
  }
  // Events come in bursts (a snapshot, a reconnect's backlog): one reload at a time, and one
  // more after it if anything changed meanwhile.
  let loading = null;
  let stale = false;
  function refreshSoon() {
    if (loading) { stale = true; return; }
    loading = refresh().finally(() => {
      loading = null;
      if (stale) { stale = false; refreshSoon(); }
    });
  }
  function showLive(up) {
    const live = $("live");
    live.className = up ? "live" : "live down";
    live.textContent = up ? "live" : "reconnecting";
  }
  async function connect() {
    if (stream) stream.close();
    stream = null;
    showLive(false);
    try {
      await api("/stream/ticket", { method: "POST" });
    } catch (e) {
      $("status").textContent = e.message;
      setTimeout(connect, 5000);
      return;
    }
    const es = new EventSource(API + "/stream");
    stream = es;
    es.addEventListener("open", () => {
      showLive(true);
      refreshSoon(); // what changed before this stream began (a resumed one replays it anyway)
    });
    es.addEventListener("error", () => {
      showLive(false);
      // Closed for good (ticket expired, view restarted): get a new ticket and a new stream.
      if (es.readyState === EventSource.CLOSED && stream === es) setTimeout(connect, 2000);
    });
    for (const kind of STREAM_EVENTS) es.addEventListener(kind, refreshSoon);
  }
  refreshSoon();
  connect();
  setInterval(refreshSoon, FALLBACK_POLL_MS);
})();

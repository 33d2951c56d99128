"use strict";
(function () {
  const API = "/api/v1";
  const MIN_PASSWORD = 12; // dashboard_api/auth.py MIN_PASSWORD
  const SEV_ORDER = { critical: 0, warning: 1, info: 2 };
  const state = {
    me: null, alerts: new Map(), devices: new Map(), kpis: null, charts: null, skew: 0, es: null,
    users: null,
  };
  const $ = (id) => document.getElementById(id);

  async function api(path, opts) {
    const res = await fetch(API + path, Object.assign({ credentials: "same-origin" }, opts || {}));
    if (res.status === 401) {
      window.location.replace("/login");
      throw new Error("not logged in");
    }
    if (!res.ok) {
      let detail = res.statusText;
      try { detail = (await res.json()).detail || detail; } catch (e) { /* not JSON */ }
      const err = new Error(detailText(detail));
      err.status = res.status;
      err.retryAfter = res.headers.get("Retry-After");
      throw err;
    }
    return res.status === 204 ? null : res.json();
  }
  // FastAPI's 422 detail is a list of {loc, msg}; others are a string.
  function detailText(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => (d.loc ? d.loc.filter((x) => x !== "body").join(".") + ": " : "") + d.msg).join("; ");
    }
    return JSON.stringify(detail);
  }
  const post = (path, body) =>
    api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  let toastTimer = null;
  function toast(msg, ok) {
    const t = $("toast");
    t.textContent = msg;
    t.classList.toggle("ok", !!ok);
    t.classList.add("show");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => t.classList.remove("show"), 4000);
  }
  const now = () => Date.now() + state.skew;
  function dur(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + I18N.t("seconds");
    if (s < 3600) return Math.floor(s / 60) + I18N.t("minutes") + String(s % 60).padStart(2, "0") + I18N.t("seconds");
    return Math.floor(s / 3600) + I18N.t("hours") + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + I18N.t("minutes");
  }
  function subjectLabel(s) {
    if (s === "resident") return I18N.t("resident");
    return s.startsWith("p:") ? I18N.t("resident") + " " + s.slice(2, 8) + "…" : s;
  }
  const tz = () => (state.kpis && state.kpis.timezone) || undefined;
  const canHandle = () => state.me && state.me.role !== "viewer";

  /* ---- alert queue ---- */
  function dueOf(a) {
    if (a.state === "open" && a.ack_deadline_ms) return ["due_ack", a.ack_deadline_ms];
    if (a.state !== "resolved" && a.resolve_deadline_ms) return ["due_resolve", a.resolve_deadline_ms];
    return null;
  }
  function renderQueue() {
    const list = [...state.alerts.values()].filter((a) => a.state !== "resolved");
    list.sort((x, y) =>
      (x.state === "open" ? 0 : 1) - (y.state === "open" ? 0 : 1) ||
      SEV_ORDER[x.severity] - SEV_ORDER[y.severity] || y.opened_ms - x.opened_ms);
    const q = $("queue");
    q.replaceChildren(...list.map(alertItem));
    $("queue-empty").hidden = list.length > 0;
    $("queue-count").textContent = "(" + list.length + ")";
  }
  function alertItem(a) {
    const li = el("li", "alert " + a.severity + " " + a.state);
    li.dataset.id = a.id;
    li.append(el("div", "bar"));
    const body = el("div", "body");
    const head = el("div", "head");
    head.append(el("span", "sev", I18N.t(a.severity)), el("span", "rule", I18N.rule(a.rule)),
      el("span", "subject", a.resident_name || subjectLabel(a.subject)), el("span", "state", I18N.t(a.state)));
    if (a.floor !== null && a.floor !== undefined) head.append(el("span", "floor", I18N.t("floor_n", { n: a.floor })));
    body.append(head);
    if (a.message && a.message !== a.rule) body.append(el("div", "msg", a.message));
    const meta = el("div", "meta");
    const age = el("span", "age");
    age.dataset.since = a.opened_ms;
    meta.append(age);
    const due = dueOf(a);
    if (due) {
      const d = el("span", "due");
      d.dataset.label = due[0];
      d.dataset.at = due[1];
      meta.append(d);
    }
    if (a.assignee) meta.append(el("span", "assignee", "→ " + a.assignee));
    body.append(meta);
    li.append(body);
    const actions = el("div", "actions");
    if (a.snapshot_url) {
      const b = el("button", "snap", I18N.t("snapshot"));
      b.addEventListener("click", () => showSnapshot(a));
      actions.append(b);
    }
    if (canHandle()) {
      if (a.state === "open") {
        const b = el("button", "ack primary", I18N.t("ack"));
        b.addEventListener("click", () => act(a.id, "acknowledge", {}));
        actions.append(b);
      }
      const r = el("button", "resolve", I18N.t("resolve"));
      r.addEventListener("click", () => askResolve(a));
      actions.append(r);
    }
    li.append(actions);
    tickItem(li);
    return li;
  }
  function tickItem(li) {
    const age = li.querySelector(".age");
    if (age) age.textContent = I18N.t("age") + " " + dur(now() - Number(age.dataset.since));
    const d = li.querySelector(".due");
    if (d) {
      const left = Number(d.dataset.at) - now();
      d.textContent = left > 0 ? I18N.t(d.dataset.label) + " " + dur(left) : I18N.t("overdue") + " " + dur(-left);
      d.classList.toggle("late", left <= 0);
    }
  }
  async function act(id, action, body) {
    try {
      const a = await post("/alerts/" + encodeURIComponent(id) + "/" + action, body);
      upsertAlert(a);
    } catch (e) {
      toast(I18N.t("action_failed") + ": " + e.message);
    }
  }
  let resolving = null;
  function askResolve(a) {
    resolving = a.id;
    $("resolve-title").textContent = I18N.rule(a.rule) + " · " + (a.resident_name || subjectLabel(a.subject));
    $("resolve-note").value = "";
    $("resolve-dialog").showModal();
    $("resolve-note").focus();
  }
  function showSnapshot(a) {
    $("snapshot-img").src = a.snapshot_url;
    $("snapshot-img").alt = I18N.rule(a.rule);
    $("snapshot-dialog").showModal();
  }
  function upsertAlert(a) {
    state.alerts.set(a.id, a);
    renderQueue();
  }

  /* ---- KPI tiles ---- */
  function tile(label, value, unit, cls) {
    const t = el("div", "tile" + (cls ? " " + cls : ""));
    t.append(el("div", "label", I18N.t(label)));
    const v = el("div", "value", value);
    if (unit) v.append(el("small", null, unit));
    t.append(v);
    return t;
  }
  const pct = (x) => (x === null || x === undefined ? null : (x * 100).toFixed(1));
  function renderKpis() {
    const k = state.kpis;
    if (!k) return;
    // Residents' figures are "pending" until the rule engine provides them; others may be "no data".
    const p = (label, v, unit, cls) =>
      v === null || v === undefined
        ? tile(label, label.startsWith("k_res") || ["k_in_share", "k_return_rate", "k_late"].includes(label) ? I18N.t("pending") : "—", null, "pending")
        : tile(label, String(v), unit, cls);
    const alertsToday = Object.values(k.alerts_today_by_rule).reduce((s, n) => s + n, 0);
    let on = 0, total = 0;
    for (const c of Object.values(k.devices_online)) { on += c.online; total += c.total; }
    const tiles = [
      p("k_residents_in", k.residents_in, k.residents_total !== null ? "/" + k.residents_total : null),
      p("k_in_share", pct(k.residents_in_share), "%"),
      p("k_return_rate", pct(k.return_rate), "%"),
      p("k_late", k.late_returns_today),
      p("k_alerts_today", alertsToday),
      p("k_open", k.open_alerts),
      p("k_overdue", k.overdue_alerts, null, k.overdue_alerts > 0 ? "bad" : ""),
      p("k_median_ack", k.median_ack_s === null ? null : dur(k.median_ack_s * 1000)),
      p("k_in_time", pct(k.resolved_within_deadline_share), "%"),
      p("k_devices_online", on, "/" + total, on < total ? "bad" : ""),
      p("k_terminals", k.terminals_available, "/" + k.terminals_total),
      p("k_txns", k.terminal_txns_today),
      p("k_power_now", k.power_now_w === null ? null : (k.power_now_w / 1000).toFixed(1), "kW"),
      p("k_energy", k.energy_today_kwh === null ? null : k.energy_today_kwh.toFixed(1), "kWh"),
    ];
    tiles[4].title = Object.entries(k.alerts_today_by_rule).map(([r, n]) => I18N.rule(r) + ": " + n).join("\n");
    $("kpis").replaceChildren(...tiles);
  }

  /* ---- devices by floor ---- */
  function renderDevices() {
    const floors = new Map();
    for (const d of state.devices.values()) {
      const f = d.floor === null || d.floor === undefined ? "-" : d.floor;
      if (!floors.has(f)) floors.set(f, []);
      floors.get(f).push(d);
    }
    const keys = [...floors.keys()].sort((a, b) => (a === "-" ? 1e9 : a) - (b === "-" ? 1e9 : b));
    const grid = el("div", "floors");
    for (const f of keys) {
      grid.append(el("div", "fl", f === "-" ? I18N.t("building") : I18N.t("floor_n", { n: f })));
      const dots = el("div", "dots");
      for (const d of floors.get(f).sort((a, b) => a.id.localeCompare(b.id))) {
        const st = d.status ? (d.status.online ? "on" : "off") : "";
        const dot = el("span", "dot " + st, d.room || I18N.t("short_" + d.kind) + " " + d.id.split("-").slice(1).join("-"));
        dot.title = I18N.t("kind_" + d.kind) + " " + d.id + " · " +
          (d.status ? I18N.t(d.status.online ? "online" : "offline_dev") + (d.status.mode ? " · " + d.status.mode : "") : I18N.t("unknown"));
        dot.dataset.device = d.id;
        dots.append(dot);
      }
      grid.append(dots);
    }
    $("devices").replaceChildren(grid);
  }

  /* ---- charts ---- */
  function renderCharts() {
    const c = state.charts;
    if (!c) return;
    const timeZone = tz();
    Charts.draw($("chart-passages"), c.hours_ms, c.passages, { kind: "bar", color: "#4fc3f7", timeZone });
    Charts.draw($("chart-power"), c.hours_ms, c.power_w.map((w) => (w === null ? null : w / 1000)), { kind: "line", color: "#f5a623", timeZone });
    Charts.draw($("chart-alerts"), c.hours_ms, c.alerts, { kind: "bar", color: "#ef4444", timeZone });
  }

  /* ---- account upkeep: one's own password; users (admins) ---- */
  const isAdmin = () => state.me && state.me.role === "admin";
  // The message for a failed request: ours for the known statuses, then the server's own words.
  function failure(e, byStatus) {
    const key = byStatus[e.status];
    const ours = key ? I18N.t(key, { s: e.retryAfter || "?", n: MIN_PASSWORD }) : I18N.t("action_failed");
    return e.message && e.message !== "not logged in" ? ours + " — " + e.message : ours;
  }

  function openPassword() {
    for (const id of ["pw-current", "pw-new", "pw-repeat"]) $(id).value = "";
    $("pw-user").value = state.me.name;
    $("pw-error").textContent = "";
    $("pw-hint").textContent = I18N.t("pw_hint", { n: MIN_PASSWORD });
    $("password-dialog").showModal();
    $("pw-current").focus();
  }
  function passwordProblem(current, fresh, repeat) {
    if (!current) return ["pw_need_current", "pw-current"];
    if ([...fresh].length < MIN_PASSWORD) return ["pw_short", "pw-new"]; // code points, as the server counts
    if (fresh !== repeat) return ["pw_mismatch", "pw-repeat"];
    if (fresh === current) return ["pw_same", "pw-new"];
    return null;
  }
  async function submitPassword(ev) {
    ev.preventDefault();
    const current = $("pw-current").value, fresh = $("pw-new").value, repeat = $("pw-repeat").value;
    const problem = passwordProblem(current, fresh, repeat);
    if (problem) {
      $("pw-error").textContent = I18N.t(problem[0], { n: MIN_PASSWORD });
      $(problem[1]).focus();
      return;
    }
    $("pw-error").textContent = "";
    $("pw-submit").disabled = true;
    try {
      await post("/auth/me/password", { current_password: current, new_password: fresh });
      $("password-dialog").close();
      toast(I18N.t("pw_changed"), true);
    } catch (e) {
      $("pw-error").textContent = failure(e, { 403: "pw_wrong", 422: "pw_rejected", 429: "pw_limited" });
      if (e.status === 403) $("pw-current").select();
    } finally {
      $("pw-submit").disabled = false;
    }
  }

  async function toggleUsers(show) {
    $("users-panel").hidden = !show;
    $("users-button").setAttribute("aria-expanded", String(show));
    if (!show) return;
    $("users-error").textContent = "";
    try {
      state.users = await api("/users");
      renderUsers();
      $("users-panel").scrollIntoView({ block: "nearest" });
    } catch (e) {
      $("users-error").textContent = failure(e, {});
    }
  }
  function renderUsers() {
    if (!state.users) return;
    $("users-body").replaceChildren(...state.users.map(userRow));
  }
  function userRow(u) {
    const tr = el("tr", u.disabled ? "user disabled" : "user");
    tr.dataset.user = u.name;
    const name = el("td", "name", u.name);
    const self = u.name === state.me.name;
    if (self) name.append(el("span", "tag", I18N.t("me_tag")));
    const status = el("td", "status", I18N.t(u.disabled ? "disabled" : "enabled"));
    const actions = el("td", "actions");
    const toggle = el("button", u.disabled ? "enable" : "disable", I18N.t(u.disabled ? "enable" : "disable"));
    toggle.addEventListener("click", () => setEnabled(u, u.disabled));
    actions.append(toggle);
    // One's own password is changed with the current one (the API refuses a reset).
    if (!self) {
      const reset = el("button", "reset", I18N.t("reset_password"));
      reset.addEventListener("click", () => resetPassword(u));
      actions.append(reset);
    }
    tr.append(name, el("td", "role", I18N.t("role_" + u.role)), status, actions);
    return tr;
  }
  function confirmed(text) {
    return new Promise((resolve) => {
      const d = $("confirm-dialog");
      $("confirm-text").textContent = text;
      d.returnValue = "";
      d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
      d.showModal();
      $("confirm-cancel").focus();
    });
  }
  async function setEnabled(u, enable) {
    $("users-error").textContent = "";
    if (!enable) {
      const self = u.name === state.me.name;
      if (!(await confirmed(I18N.t(self ? "confirm_disable_self" : "confirm_disable", { name: u.name })))) return;
    }
    try {
      const row = await post("/users/" + encodeURIComponent(u.name) + "/" + (enable ? "enable" : "disable"));
      if (row.disabled && row.name === state.me.name) { window.location.replace("/login"); return; }
      state.users = state.users.map((x) => (x.name === row.name ? row : x));
      renderUsers();
      toast(I18N.t(enable ? "user_enabled" : "user_disabled", { name: row.name }), true);
    } catch (e) {
      $("users-error").textContent = failure(e, { 409: "last_admin", 404: "no_user" });
    }
  }
  async function resetPassword(u) {
    $("users-error").textContent = "";
    if (!(await confirmed(I18N.t("confirm_reset", { name: u.name })))) return;
    try {
      const r = await post("/users/" + encodeURIComponent(u.name) + "/password", {});
      $("reset-title").textContent = I18N.t("reset_title", { name: r.name });
      $("reset-password").textContent = r.password;
      $("reset-dialog").showModal();
    } catch (e) {
      $("users-error").textContent = failure(e, { 404: "no_user" });
    }
  }
  function setupAccounts() {
    $("password-button").hidden = state.me.via !== "session";
    $("users-button").hidden = !isAdmin();
    $("password-button").addEventListener("click", openPassword);
    $("pw-cancel").addEventListener("click", () => $("password-dialog").close());
    $("password-form").addEventListener("submit", submitPassword);
    // No password lingers in the page once the dialogs are closed.
    $("password-dialog").addEventListener("close", () => {
      for (const id of ["pw-current", "pw-new", "pw-repeat"]) $(id).value = "";
    });
    $("reset-dialog").addEventListener("close", () => { $("reset-password").textContent = ""; });
    if (!isAdmin()) return;
    $("users-button").addEventListener("click", () => toggleUsers($("users-panel").hidden));
    $("users-close").addEventListener("click", () => toggleUsers(false));
  }

  /* ---- loading and the live stream ---- */
  async function loadAll() {
    const [alerts, kpis, devices, charts] = await Promise.all([
      api("/alerts?state=open&state=acknowledged&limit=500"),
      api("/kpis"), api("/devices"), api("/charts/day"),
    ]);
    state.skew = alerts.now_ms - Date.now();
    state.alerts = new Map(alerts.alerts.map((a) => [a.id, a]));
    state.devices = new Map(devices.map((d) => [d.id, d]));
    state.kpis = kpis;
    state.charts = charts;
    renderAll();
  }
  function renderAll() {
    I18N.apply();
    renderQueue(); renderKpis(); renderDevices(); renderCharts(); renderUsers();
    const r = state.me ? I18N.t("role_" + state.me.role) : "";
    const name = state.kpis && state.kpis.building_name;
    $("building").textContent = name ? " · " + name : "";
    $("who").textContent = state.me ? state.me.name + " · " + r : "";
  }
  function connect() {
    if (state.es) state.es.close();
    const es = new EventSource(API + "/stream");
    state.es = es;
    es.addEventListener("open", () => { $("live").className = "live"; $("live").dataset.i18n = "live"; I18N.apply($("live").parentNode); });
    es.addEventListener("error", async () => {
      $("live").className = "live down";
      $("live").dataset.i18n = "offline";
      I18N.apply($("live").parentNode);
      try { await api("/auth/me"); } catch (e) { es.close(); }
    });
    es.addEventListener("alert", (ev) => upsertAlert(JSON.parse(ev.data)));
    es.addEventListener("status", (ev) => {
      const s = JSON.parse(ev.data);
      const d = state.devices.get(s.device);
      if (d) { d.status = s; renderDevices(); }
    });
    es.addEventListener("kpi", (ev) => { state.kpis = JSON.parse(ev.data); renderKpis(); });
    es.addEventListener("reset", () => { loadAll().catch((e) => toast(e.message)); });
  }
  function tick() {
    const d = new Date(now());
    $("clock").textContent = d.toLocaleString(I18N.lang === "zh" ? "zh-CN" : "en-GB", { hour12: false, timeZone: tz() });
    for (const li of document.querySelectorAll("#queue .alert")) tickItem(li);
  }

  async function main() {
    I18N.apply();
    state.me = await api("/auth/me");
    setupAccounts();
    connect();
    await loadAll();
    setInterval(tick, 1000);
    tick();
    setInterval(() => api("/charts/day").then((c) => { state.charts = c; renderCharts(); }).catch(() => {}), 300000);
    window.addEventListener("resize", renderCharts);
    $("lang").addEventListener("click", () => { I18N.toggle(); renderAll(); tick(); });
    $("logout").addEventListener("click", async () => {
      try { await post("/auth/logout"); } finally { window.location.replace("/login"); }
    });
    $("resolve-cancel").addEventListener("click", () => $("resolve-dialog").close());
    $("resolve-form").addEventListener("submit", (ev) => {
      const note = $("resolve-note").value.trim();
      if (!note) { ev.preventDefault(); return; }
      if (resolving) act(resolving, "resolve", { note });
      resolving = null;
    });
    document.body.dataset.ready = "1";
  }
  main().catch((e) => toast(e.message));
})();

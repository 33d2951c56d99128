"use strict";
/* Small hand-drawn canvas charts: bars or a line over 24 hourly values. */
const Charts = (function () {
  function setup(canvas) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    canvas.width = Math.max(1, Math.round(w * ratio));
    canvas.height = Math.max(1, Math.round(h * ratio));
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx, w, h };
  }
  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  function draw(canvas, hoursMs, values, opts) {
    const { ctx, w, h } = setup(canvas);
    const pad = { l: 38, r: 6, t: 8, b: 18 };
    const pw = w - pad.l - pad.r, ph = h - pad.t - pad.b;
    const vals = values.map((v) => (v === null || v === undefined ? null : v));
    const top = Math.max(0, ...vals.filter((v) => v !== null));
    // Counts get whole ticks while small; anything else a 1-2-2.5-5 scale.
    const max = opts.kind === "bar" && top <= 40 ? Math.max(4, Math.ceil(top / 4) * 4) : niceMax(top);
    ctx.font = "11px sans-serif";
    ctx.strokeStyle = "#22324d";
    ctx.fillStyle = "#8da2c0";
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = pad.t + ph - (ph * i) / 4;
      ctx.beginPath(); ctx.moveTo(pad.l, y); ctx.lineTo(w - pad.r, y); ctx.stroke();
      const label = (max * i) / 4;
      ctx.fillText(label >= 100 ? Math.round(label) : +label.toFixed(2), 2, y + 4);
    }
    const n = vals.length || 1, step = pw / n;
    for (let i = 0; i < n; i += 6) {
      const hh = new Date(hoursMs[i]).toLocaleString("en-GB", { hour: "2-digit", hour12: false, timeZone: opts.timeZone });
      ctx.fillText(hh.padStart(2, "0") + ":00", pad.l + i * step, h - 4);
    }
    ctx.fillStyle = opts.color; ctx.strokeStyle = opts.color;
    if (opts.kind === "line") {
      ctx.lineWidth = 2; ctx.beginPath();
      let started = false;
      vals.forEach((v, i) => {
        if (v === null) { started = false; return; }
        const x = pad.l + i * step + step / 2, y = pad.t + ph - (ph * v) / max;
        if (!started) { ctx.moveTo(x, y); started = true; } else ctx.lineTo(x, y);
      });
      ctx.stroke();
    } else {
      vals.forEach((v, i) => {
        if (!v) return;
        const bh = (ph * v) / max;
        ctx.fillRect(pad.l + i * step + 1, pad.t + ph - bh, Math.max(1, step - 2), bh);
      });
    }
  }
  return { draw };
})();

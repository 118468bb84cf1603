// resque-compat dashboard charts (uPlot). No inline script (CSP: script-src 'self').
//
// figure[data-chart=live]: jobs per second from the live poll (app.js fires "resque:polled"
// after each refresh and "resque:poll" when the poll is switched); a bounded ring of points.
// figure[data-chart=throughput|queue|queues|classes]: history from /api/history, where null
// means no sample (drawn as a gap). Each figure keeps its uPlot as figure.uplot and what it
// drew as figure.history (tests read them back); window.resqueCharts lists them by id.
(function () {
  "use strict";

  var HEIGHT = 200;
  var LIVE_POINTS = 300;  // 10 minutes at the default 2 s poll: the live arrays never grow past this
  var REFRESH_MS = 60000;  // history is re-read at most once a minute while the poll runs
  var COLORS = ["#2457a6", "#b8322a", "#23804a", "#9a6a00", "#7b3fa0", "#0f7c83", "#c2581b", "#5b6372", "#a8326e"];
  var PROCESSED = "#23804a", FAILED = "#b8322a", QUEUED = "#2457a6";
  var charts = {};
  window.resqueCharts = charts;
  // The pages' one time format (ISO 8601, UTC unless the dashboard runs with --local) on the time axis too.
  var UTC = document.body.getAttribute("data-times") !== "local";

  function two(n) { return (n < 10 ? "0" : "") + n; }

  function parts(ts) {
    var d = new Date(ts * 1000);
    return UTC
      ? [d.getUTCFullYear(), two(d.getUTCMonth() + 1), two(d.getUTCDate()), two(d.getUTCHours()), two(d.getUTCMinutes()), two(d.getUTCSeconds())]
      : [d.getFullYear(), two(d.getMonth() + 1), two(d.getDate()), two(d.getHours()), two(d.getMinutes()), two(d.getSeconds())];
  }

  function isoTime(ts) {
    if (ts == null) { return "--"; }
    var p = parts(ts);
    return p[0] + "-" + p[1] + "-" + p[2] + "T" + p[3] + ":" + p[4] + ":" + p[5] + (UTC ? "Z" : "");
  }

  function tickLabels(u, splits) {
    var span = splits.length > 1 ? splits[splits.length - 1] - splits[0] : 0;
    return splits.map(function (ts) {
      var p = parts(ts);
      if (span > 2 * 86400) { return p[1] + "-" + p[2]; }
      return p[3] + ":" + p[4] + (span < 120 ? ":" + p[5] : "");
    });
  }

  function plotWidth(fig) {
    var plot = fig.querySelector(".chart-plot");
    return Math.max(200, Math.floor(plot.getBoundingClientRect().width));
  }

  function axis(scale, side, label) {
    return {
      scale: scale, side: side, label: label, labelSize: 18, size: 48,
      stroke: "#404859", font: "11px sans-serif", labelFont: "11px sans-serif",
      grid: { show: side === 3, stroke: "#e3e6ec", width: 1 },
      ticks: { stroke: "#c9cedb", width: 1 }
    };
  }

  function draw(fig, series, data, axes) {
    var old = fig.uplot;
    var shape = series.map(function (s) { return s.label; }).concat(axes.map(function (a) { return a.label; })).join("\n");
    if (old && fig.shape === shape) {  // the usual refresh: new points, same lines and axes
      old.setData(data);
      return old;
    }
    if (old) { old.destroy(); }
    fig.shape = shape;
    var plot = fig.querySelector(".chart-plot");
    var opts = {
      width: plotWidth(fig),
      height: HEIGHT,
      series: [{ value: function (u, ts) { return isoTime(ts); } }].concat(series),
      axes: [{ stroke: "#404859", font: "11px sans-serif", grid: { stroke: "#e3e6ec", width: 1 }, ticks: { stroke: "#c9cedb", width: 1 }, values: tickLabels }].concat(axes),
      scales: { x: { time: true } },
      cursor: { drag: { x: false, y: false } },
      legend: { live: true }
    };
    var u = new uPlot(opts, data, plot);
    fig.uplot = u;
    charts[fig.id] = u;
    return u;
  }

  function line(label, color, scale, extra) {
    var s = { label: label, stroke: color, width: 1.5, scale: scale || "y", spanGaps: false };
    if (extra) { for (var k in extra) { s[k] = extra[k]; } }
    return s;
  }

  function note(fig, text) { fig.querySelector(".chart-note").textContent = text; }

  // -- history ------------------------------------------------------------------------
  function render(fig, h) {
    fig.history = h;
    var kind = fig.getAttribute("data-chart");
    var x = h.t, series = [], data = [x], axes = [];
    var per = { hour: "per minute", day: "per 10 min", week: "per hour" }[h.range] || "";
    if (kind === "throughput") {
      series = [line("processed/min", PROCESSED, "rate"), line("failed/min", FAILED, "rate"),
                line("queued", QUEUED, "queued", { dash: [5, 4] })];
      data = [x, h.processed, h.failed, h.queued];
      axes = [axis("rate", 3, "jobs / min"), axis("queued", 1, "queued")];
    } else if (kind === "queue") {
      var name = fig.getAttribute("data-queue");
      series = [line("depth of " + name, QUEUED, "depth", { fill: "rgba(36,87,166,.08)" })];
      data = [x, h.queues[name] || x.map(function () { return null; })];
      axes = [axis("depth", 3, "jobs waiting")];
    } else if (kind === "queues") {
      var names = Object.keys(h.queues).sort(function (a, b) { return peak(h.queues[b]) - peak(h.queues[a]); }).slice(0, COLORS.length);
      names.forEach(function (n, i) { series.push(line(n, COLORS[i], "depth")); data.push(h.queues[n]); });
      axes = [axis("depth", 3, "jobs waiting")];
    } else if (kind === "classes") {
      Object.keys(h.classes).forEach(function (n, i) {
        series.push(line(n + " (" + h.class_totals[n] + ")", COLORS[i % COLORS.length], "count"));
        data.push(h.classes[n]);
      });
      axes = [axis("count", 3, "failures " + per)];
    }
    if (!h.samples) {
      note(fig, "No history yet: a resque-compat worker, scheduler or dashboard records it once a minute.");
    } else if (kind === "classes" && series.length === 0) {
      note(fig, "No failures counted in this range.");
    } else {
      note(fig, h.samples + " samples; gaps are minutes no sampler recorded.");
    }
    draw(fig, series, data, axes);
  }

  function peak(values) {
    var m = 0;
    for (var i = 0; i < values.length; i++) { if (values[i] > m) { m = values[i]; } }
    return m;
  }

  function load(fig, range) {
    fig.setAttribute("data-range", range);
    var url = fig.getAttribute("data-url") + "?range=" + encodeURIComponent(range);
    var queue = fig.getAttribute("data-queue");
    if (queue !== null) { url += "&queue=" + encodeURIComponent(queue); }
    fig.loadedAt = Date.now();
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (h) { render(fig, h); fig.setAttribute("data-loaded", range); })
      .catch(function () { note(fig, "The history could not be read; the page's other data is unaffected."); });
  }

  function setupHistory(fig) {
    fig.querySelectorAll(".chart-ranges button").forEach(function (button) {
      button.addEventListener("click", function () {
        fig.querySelectorAll(".chart-ranges button").forEach(function (b) { b.classList.toggle("active", b === button); });
        load(fig, button.getAttribute("data-range"));
      });
    });
    document.addEventListener("resque:polled", function () {
      if (Date.now() - (fig.loadedAt || 0) >= REFRESH_MS) { load(fig, fig.getAttribute("data-range")); }
    });
    load(fig, fig.getAttribute("data-range") || "hour");
  }

  // -- live ---------------------------------------------------------------------------
  function setupLive(fig) {
    var box = document.getElementById("live-poll");
    var seconds = box ? (parseInt(box.getAttribute("data-seconds"), 10) || 2) : 2;
    var t = [], p = [], f = [], q = [];
    var last = null;
    var state = fig.querySelector(".chart-state");
    var u = draw(fig, [line("processed/s", PROCESSED, "rate"), line("failed/s", FAILED, "rate"),
                       line("queued", QUEUED, "queued", { dash: [5, 4] })],
                 [t, p, f, q], [axis("rate", 3, "jobs / s"), axis("queued", 1, "queued")]);
    fig.history = { t: t, processed: p, failed: f, queued: q };

    function reading() {
      var el = document.getElementById("live-numbers");
      if (!el) { return null; }
      return { t: Date.now() / 1000, p: Number(el.getAttribute("data-processed")),
               f: Number(el.getAttribute("data-failed")), q: Number(el.getAttribute("data-queued")) };
    }
    function rate(now, before, dt) { return now >= before ? Math.round((now - before) / dt * 100) / 100 : null; }
    function push(time, rp, rf, rq) {
      t.push(time); p.push(rp); f.push(rf); q.push(rq);
      while (t.length > LIVE_POINTS) { t.shift(); p.shift(); f.shift(); q.shift(); }
      u.setData([t, p, f, q]);
    }
    function paused(off) {
      state.textContent = off ? "paused: switch on Live poll" : "";
      state.classList.toggle("paused", off);
    }

    var on = !!(box && box.checked);
    document.addEventListener("resque:polled", function () {
      var now = reading();
      if (!now || !on) { return; }  // a refresh still in flight when the poll was switched off
      var dt = last ? now.t - last.t : 0;
      if (last && dt <= seconds * 3 + 1) {
        push(now.t, rate(now.p, last.p, dt), rate(now.f, last.f, dt), now.q);
      } else if (t.length) {
        push(now.t, null, null, now.q);  // after a pause or a slow poll: a gap, not an average
      }
      last = now;
    });
    document.addEventListener("resque:poll", function (event) {
      on = !!(event.detail && event.detail.on);
      paused(!on);
      if (!on) { last = null; }
    });
    paused(!on);  // the first poll's reading is the baseline: the page's own numbers may be seconds old
  }

  function resizeAll() {
    Object.keys(charts).forEach(function (id) {
      var fig = document.getElementById(id);
      if (fig && fig.uplot) { fig.uplot.setSize({ width: plotWidth(fig), height: HEIGHT }); }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("figure.chart").forEach(function (fig) {
      if (fig.getAttribute("data-chart") === "live") { setupLive(fig); } else { setupHistory(fig); }
    });
    var pending = null;
    window.addEventListener("resize", function () {
      if (pending) { clearTimeout(pending); }
      pending = setTimeout(resizeAll, 100);
    });
  });
})();

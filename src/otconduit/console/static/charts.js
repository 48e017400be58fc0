// Charts of the Production and alert pages, drawn with the vendored Chart.js
// (/static/vendor/chart.umd.min.js). The data comes from a JSON block the page renders
// (<script type="application/json" id="chart-data">); every <canvas data-chart="KIND"
// data-key="KEY"> is drawn from data[KEY]. Times are epoch milliseconds, shown in the
// plant's time zone (the body's data-tz), as every table of the console shows them.
(function () {
  "use strict";
  const tz = document.body.dataset.tz || "UTC";
  const clock = new Intl.DateTimeFormat("en-GB", {
    timeZone: tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const stamp = new Intl.DateTimeFormat("sv-SE", {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  const palette = ["#1570ef", "#c4320a", "#12b76a", "#7a5af8", "#f79009", "#0e9384", "#dd2590",
    "#667085", "#b54708", "#6172f3"];
  const stateColours = {};
  function stateColour(name) {
    const key = String(name).toUpperCase();
    if (/FAULT|ABORT|TRIP|ALARM/.test(key)) return "#d92d20";
    if (/RUN|EXECUTE|PRODUC/.test(key)) return "#12b76a";
    if (/PLANNED|BREAK|IDLE|HELD|SUSPEND/.test(key)) return "#fdb022";
    if (/STOP|MICRO/.test(key)) return "#f97066";
    if (!(key in stateColours)) stateColours[key] = palette[Object.keys(stateColours).length % palette.length];
    return stateColours[key];
  }
  function fixed(v, d) { return typeof v === "number" ? v.toFixed(d) : String(v); }
  const timeAxis = (from, to) => ({
    type: "linear", min: from, max: to,
    ticks: { maxTicksLimit: 7, callback: (v) => clock.format(new Date(v)) },
  });

  // A tag's trend: its samples as a stepped line; writes (and machine events) as marks.
  function trend(canvas, spec) {
    const d = spec.decimals ?? 2;
    const name = (v) => {
      if (spec.kind === "flag") return v >= 0.5 ? "on" : "off";
      return (spec.states && spec.states[String(v)]) ? `${spec.states[String(v)]} (${v})` : fixed(v, d);
    };
    const valueAt = (t) => {
      let y = null;
      for (const [x, v] of spec.points) { if (x > t) break; y = v; }
      return y ?? (spec.points.length ? spec.points[0][1] : 0);
    };
    // A flag or a state has whole values only: one tick per value, named.
    const whole = spec.kind === "flag" || Object.keys(spec.states || {}).length > 0;
    const yAxis = { ticks: { precision: whole ? 0 : d, callback: (v) => name(v) } };
    if (whole) Object.assign(yAxis.ticks, { stepSize: 1 });
    if (spec.kind === "flag") Object.assign(yAxis, { min: -0.2, max: 1.2,
      afterBuildTicks: (axis) => { axis.ticks = [{ value: 0 }, { value: 1 }]; } });
    const datasets = [{
      label: `${spec.name}${spec.unit ? " [" + spec.unit + "]" : ""}`,
      data: spec.points.map(([x, y]) => ({ x, y })),
      borderColor: "#1570ef", backgroundColor: "#1570ef", pointRadius: 0, borderWidth: 2,
      stepped: "before",
    }];
    if ((spec.writes || []).length) {
      datasets.push({
        label: "write on the wire", type: "scatter", pointStyle: "triangle", pointRadius: 7,
        borderColor: "#d92d20", backgroundColor: "#d92d20",
        data: spec.writes.map((w) => ({ x: w.t, y: valueAt(w.t), label: w.label })),
      });
    }
    if ((spec.events || []).length) {
      datasets.push({
        label: "machine event", type: "scatter", pointStyle: "rectRot", pointRadius: 6,
        borderColor: "#6941c6", backgroundColor: "#6941c6",
        data: spec.events.map((e) => ({ x: e.t, y: valueAt(e.t), label: e.label })),
      });
    }
    return new Chart(canvas, {
      type: "line", data: { datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: true,
        scales: { x: timeAxis(spec.from_ms, spec.to_ms), y: yAxis },
        plugins: {
          legend: { position: "bottom" },
          tooltip: { callbacks: {
            title: (items) => items.length ? stamp.format(new Date(items[0].parsed.x)) : "",
            label: (item) => item.raw.label || `${item.dataset.label}: ${name(item.parsed.y)}`,
          } },
        },
      },
    });
  }

  // Several tags of one machine, each on its own scale (normalised would hide units).
  function lines(canvas, spec) {
    const datasets = spec.series.map((s, i) => ({
      label: `${s.name}${s.unit ? " [" + s.unit + "]" : ""}`,
      data: s.points.map(([x, y]) => ({ x, y })), yAxisID: `y${i}`,
      borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length],
      pointRadius: 0, borderWidth: 1.5, decimals: s.decimals,
    }));
    const scales = { x: timeAxis(spec.from_ms, spec.to_ms) };
    spec.series.forEach((s, i) => {
      scales[`y${i}`] = { position: i % 2 ? "right" : "left", display: i < 2,
        ticks: { color: palette[i % palette.length] } };
    });
    return new Chart(canvas, {
      type: "line", data: { datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, scales,
        interaction: { mode: "nearest", intersect: false },
        plugins: { legend: { position: "bottom" }, tooltip: { callbacks: {
          title: (items) => items.length ? stamp.format(new Date(items[0].parsed.x)) : "",
          label: (item) => `${item.dataset.label}: ${fixed(item.parsed.y, item.dataset.decimals ?? 2)}`,
        } } },
      },
    });
  }

  // A state timeline: one floating bar per segment, coloured and named by state.
  const names = {
    id: "stateNames",
    afterDatasetsDraw(chart) {
      const { ctx } = chart;
      ctx.save();
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillStyle = "#101828";
      ctx.textBaseline = "middle";
      chart.data.datasets.forEach((ds, i) => {
        chart.getDatasetMeta(i).data.forEach((bar, j) => {
          const text = ds.data[j].name;
          const w = Math.abs(bar.width ?? 0);
          if (text && w > ctx.measureText(text).width + 6) {
            ctx.fillText(text, Math.min(bar.x, bar.base) + 3, bar.y);
          }
        });
      });
      ctx.restore();
    },
  };
  function states(canvas, spec) {
    const seen = new Map();
    for (const s of spec.segments) {
      if (!seen.has(s.name)) seen.set(s.name, []);
      seen.get(s.name).push({ x: [s.from, Math.max(s.to, s.from + 1)], y: spec.label, name: s.name });
    }
    const datasets = [...seen.entries()].map(([name, data]) => ({
      label: name, data, backgroundColor: stateColour(name), borderSkipped: false,
      barPercentage: 0.9, categoryPercentage: 1.0,
    }));
    return new Chart(canvas, {
      type: "bar", data: { labels: [spec.label], datasets },
      options: {
        indexAxis: "y", animation: false, responsive: true, maintainAspectRatio: false,
        scales: { x: timeAxis(spec.from_ms, spec.to_ms), y: { stacked: true, display: false } },
        plugins: { legend: { position: "bottom" }, tooltip: { callbacks: {
          title: (items) => items.length ? items[0].raw.name : "",
          label: (item) => `${stamp.format(new Date(item.raw.x[0]))} – ${clock.format(new Date(item.raw.x[1]))}`,
        } } },
      },
      plugins: [names],
    });
  }

  // Grouped bars: OEE and its factors (%), or energy (kWh) per line and shift.
  function bars(canvas, spec) {
    const datasets = spec.series.map((s, i) => ({
      label: s.name, data: s.values, backgroundColor: palette[i % palette.length],
    }));
    return new Chart(canvas, {
      type: "bar", data: { labels: spec.labels, datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, max: spec.max ?? undefined,
          title: { display: !!spec.unit, text: spec.unit || "" } } },
        plugins: { legend: { position: "bottom" }, tooltip: { callbacks: {
          label: (item) => `${item.dataset.label}: ${fixed(item.parsed.y, spec.decimals ?? 1)} ${spec.unit || ""}`,
        } } },
      },
    });
  }

  const kinds = { trend, lines, states, bars };
  const block = document.getElementById("chart-data");
  if (!block || typeof Chart === "undefined") return;
  const data = JSON.parse(block.textContent);
  window.conduitCharts = [];
  for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
    const spec = data[canvas.dataset.key];
    const draw = kinds[canvas.dataset.chart];
    if (!spec || !draw) continue;
    const chart = draw(canvas, spec);
    window.conduitCharts.push(chart);
    canvas.dataset.points = String(chart.data.datasets.reduce((n, ds) => n + ds.data.length, 0));
    canvas.dataset.ready = "true";
  }
})();

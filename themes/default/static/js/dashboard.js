// Charts of the analytics pages, drawn with Chart.js from the figures the page embeds.
(function () {
  "use strict";

  const source = document.getElementById("analytics-data");
  if (!source || !window.Chart) return;
  const figures = JSON.parse(source.textContent);
  const style = getComputedStyle(document.documentElement);
  const color = (name, fallback) => style.getPropertyValue(name).trim() || fallback;
  const accent = color("--cs-accent", "#2f5bd3");
  const muted = color("--cs-muted", "#6b7280");
  const charts = {};
  // Every axis says what it counts: a chart read without its legend still makes sense.
  const axisTitle = (text) => ({ display: true, text, color: muted });

  const timeseriesCanvas = document.getElementById("chart-timeseries");
  if (timeseriesCanvas && figures.timeseries) {
    charts.timeseries = new window.Chart(timeseriesCanvas, {
      type: "line",
      data: {
        labels: figures.timeseries.map((d) => d.day),
        datasets: [
          { label: "Views", data: figures.timeseries.map((d) => d.views), borderColor: accent, yAxisID: "count" },
          {
            label: "Active users",
            data: figures.timeseries.map((d) => d.activeUsers),
            borderColor: muted,
            yAxisID: "count",
          },
          {
            label: "Watch time (minutes)",
            data: figures.timeseries.map((d) => Math.round((d.watchTime / 60) * 10) / 10),
            borderColor: "#c2410c",
            yAxisID: "minutes",
          },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { title: axisTitle("Day") },
          count: {
            type: "linear",
            position: "left",
            beginAtZero: true,
            ticks: { precision: 0 },
            title: axisTitle("Views and active users"),
          },
          minutes: {
            type: "linear",
            position: "right",
            beginAtZero: true,
            grid: { drawOnChartArea: false },
            title: axisTitle("Watch time (minutes)"),
          },
        },
      },
    });
  }

  const retentionCanvas = document.getElementById("chart-retention");
  if (retentionCanvas && figures.retention) {
    charts.retention = new window.Chart(retentionCanvas, {
      type: "line",
      data: {
        labels: figures.retention.map((p) => `${p.percent} %`),
        datasets: [
          {
            label: "Still watching",
            data: figures.retention.map((p) => Math.round(p.share * 1000) / 10),
            borderColor: accent,
            backgroundColor: "rgba(47, 91, 211, 0.12)",
            fill: true,
            stepped: true,
          },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { title: axisTitle("Point of the video") },
          y: { min: 0, max: 100, ticks: { callback: (v) => `${v} %` }, title: axisTitle("Still watching") },
        },
      },
    });
  }

  window.clipsyncCharts = charts;
})();

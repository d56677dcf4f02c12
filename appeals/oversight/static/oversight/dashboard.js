// Draws the dashboard's charts from the JSON data block the page carries (json_script): no
// inline script, so the Content-Security-Policy needs no exception. Each chart's numbers are
// also in the table beside it; without JavaScript the tables are the dashboard.
(function () {
  "use strict";
  var COLOURS = ["#0b6e4f", "#b54708", "#2e90fa", "#b42318", "#7a5af8", "#667085"];

  function draw() {
    var block = document.getElementById("dashboard-charts");
    if (!block || typeof window.Chart === "undefined") { return; }
    var charts = JSON.parse(block.textContent);
    charts.forEach(function (spec) {
      var canvas = document.querySelector('canvas[data-chart="' + spec.id + '"]');
      if (!canvas || !spec.labels.length) { return; }
      var datasets = spec.datasets.map(function (ds, i) {
        var colour = COLOURS[i % COLOURS.length];
        return { label: ds.label, data: ds.data, borderColor: colour, backgroundColor: colour,
                 borderWidth: spec.type === "line" ? 2 : 0, pointRadius: spec.type === "line" ? 1 : 0 };
      });
      new window.Chart(canvas, {
        type: spec.type,
        data: { labels: spec.labels, datasets: datasets },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          indexAxis: spec.horizontal ? "y" : "x",
          plugins: { legend: { display: datasets.length > 1, position: "bottom" } },
          scales: { x: { beginAtZero: true }, y: { beginAtZero: true } }
        }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
}());

// Completion by unit; clicking a bar drills down to that unit.
(function () {
  var el = document.getElementById("chart");
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  if (!el || !window.echarts) return;
  var chart = echarts.init(el);
  chart.setOption({
    tooltip: { trigger: "axis", valueFormatter: function (v) { return v + "%"; } },
    legend: { data: ["周期达标率", "本年达标率"] },
    grid: { left: 40, right: 10, bottom: 60 },
    xAxis: { type: "category", data: data.names, axisLabel: { rotate: data.names.length > 6 ? 30 : 0 } },
    yAxis: { type: "value", max: 100, axisLabel: { formatter: "{value}%" } },
    series: [
      { name: "周期达标率", type: "bar", data: data.rates, itemStyle: { color: "#0b6e4f" } },
      { name: "本年达标率", type: "bar", data: data.year_rates, itemStyle: { color: "#e0a458" } }
    ]
  });
  chart.on("click", function (p) { window.location.href = "/dashboard/org/" + data.ids[p.dataIndex] + "/"; });
  window.addEventListener("resize", function () { chart.resize(); });
})();

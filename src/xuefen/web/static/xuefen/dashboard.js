// Completion by unit: one horizontal stacked bar per unit (达标 / 进行中 /
// 未达标 / 未评估 teachers); clicking a bar or a unit's name drills down.
(function () {
  var el = document.getElementById("chart");
  var src = document.getElementById("chart-data");
  if (!el || !src || !window.echarts) return;
  var data = JSON.parse(src.textContent);
  var colors = { passed: "#0b6e4f", in_progress: "#4a90c2", failed: "#c62828", unevaluated: "#c5ccd6" };
  el.style.height = Math.max(160, 70 + 42 * data.names.length) + "px";
  var chart = echarts.init(el, null, { renderer: "svg" });
  var series = data.series.map(function (s) {
    return {
      name: s.name, type: "bar", stack: "teachers", data: s.data, barMaxWidth: 28,
      itemStyle: { color: colors[s.key] }, emphasis: { focus: "series" }, cursor: "pointer",
      label: { show: true, position: "inside", color: s.key === "unevaluated" ? "#333" : "#fff",
               formatter: function (p) { return p.value ? p.value : ""; } }
    };
  });
  chart.setOption({
    animation: false,
    tooltip: {
      trigger: "axis", axisPointer: { type: "shadow" },
      formatter: function (items) {
        var i = items[0].dataIndex, lines = ["<b>" + data.names[i] + "</b>"];
        // No it.marker: it is a <span style=…>, which the CSP (no inline styles) would blank.
        items.forEach(function (it) { lines.push(it.seriesName + ": " + it.value); });
        if (data.year_rates[i] !== null) lines.push(data.year_label + ": " + data.year_rates[i] + "%");
        return lines.join("<br>");
      }
    },
    legend: { top: 0 },
    grid: { left: 8, right: 16, top: 32, bottom: 8, containLabel: true },
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", data: data.names, inverse: true, triggerEvent: true,
             axisLabel: { color: "#0b6e4f" } },
    series: series
  });
  function go(i) { if (i >= 0 && data.urls[i]) window.location.href = data.urls[i]; }
  chart.on("click", function (p) {
    if (p.componentType === "yAxis") { go(data.names.indexOf(p.value)); } else { go(p.dataIndex); }
  });
  window.addEventListener("resize", function () { chart.resize(); });
  el.dataset.ready = "1";
})();

// This year's pass rate by unit (issue 16 item 6), with the policy's floor
// (潍坊 第十九条 98%) drawn where a unit's policy sets one.
(function () {
  var el = document.getElementById("rate-chart");
  var src = document.getElementById("chart-data");
  if (!el || !src || !window.echarts) return;
  var data = JSON.parse(src.textContent);
  el.style.height = Math.max(160, 70 + 32 * data.names.length) + "px";
  var chart = echarts.init(el, null, { renderer: "svg" });
  var bars = data.year_rates.map(function (v, i) {
    var floor = data.floors[i];
    return { value: v, itemStyle: { color: floor !== null && v !== null && v < floor ? "#c62828" : "#0b6e4f" } };
  });
  var floors = data.floors.map(function (f) { return f; });
  var series = [{ name: data.rate_label, type: "bar", data: bars, barMaxWidth: 22,
                  label: { show: true, position: "right", formatter: function (p) { return p.value === null ? "" : p.value + "%"; } } }];
  if (floors.some(function (f) { return f !== null; })) {
    series.push({ name: data.floor_label, type: "scatter", data: floors, symbol: "rect", symbolSize: [3, 22],
                  itemStyle: { color: "#333" } });
  }
  chart.setOption({
    animation: false,
    tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
    legend: { top: 0 },
    grid: { left: 8, right: 48, top: 32, bottom: 8, containLabel: true },
    xAxis: { type: "value", min: 0, max: 100 },
    yAxis: { type: "category", data: data.names, inverse: true },
    series: series
  });
  window.addEventListener("resize", function () { chart.resize(); });
  el.dataset.ready = "1";
})();

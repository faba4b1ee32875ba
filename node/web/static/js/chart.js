// Inline SVG line charts: a few series of (x, y) points on shared axes, no library.

const NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

function span(values) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  return [lo, hi];
}

// series: [{name, points: [[x, y], ...]}]; options: {width, height, step, xLabel(x), yLabel(y), title}
export function lineChart(series, options = {}) {
  const width = options.width || 560;
  const height = options.height || 180;
  const pad = { left: 64, right: 12, top: 12, bottom: 28 };
  const xLabel = options.xLabel || ((x) => String(x));
  const yLabel = options.yLabel || ((y) => Number(y).toLocaleString("en"));
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", width, height });
  if (options.title) svg.append(el("title", {}, options.title));
  const all = series.flatMap((s) => s.points);
  if (!all.length) {
    svg.append(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "chart-empty" }, "no data yet"));
    return svg;
  }
  const [x0, x1] = span(all.map((p) => p[0]));
  const [y0, y1] = span([...all.map((p) => p[1]), ...(options.zero ? [0] : [])]);
  const sx = (x) => pad.left + ((x - x0) / (x1 - x0)) * (width - pad.left - pad.right);
  const sy = (y) => height - pad.bottom - ((y - y0) / (y1 - y0)) * (height - pad.top - pad.bottom);
  const axes = el("g", { class: "chart-axes" });
  axes.append(el("line", { x1: pad.left, y1: height - pad.bottom, x2: width - pad.right, y2: height - pad.bottom }));
  axes.append(el("line", { x1: pad.left, y1: pad.top, x2: pad.left, y2: height - pad.bottom }));
  for (const y of [y0, (y0 + y1) / 2, y1]) {
    axes.append(el("text", { x: pad.left - 6, y: sy(y) + 4, "text-anchor": "end" }, yLabel(y)));
  }
  axes.append(el("text", { x: pad.left, y: height - 8, "text-anchor": "start" }, xLabel(x0)));
  axes.append(el("text", { x: width - pad.right, y: height - 8, "text-anchor": "end" }, xLabel(x1)));
  svg.append(axes);
  series.forEach((s, i) => {
    const pts = [];
    s.points.forEach(([x, y], j) => {
      if (options.step && j > 0) pts.push(`${sx(x)},${sy(s.points[j - 1][1])}`);
      pts.push(`${sx(x)},${sy(y)}`);
    });
    const g = el("g", { class: `series series-${i % 6}` });
    g.append(el("polyline", { points: pts.join(" "), fill: "none" }));
    for (const [x, y] of s.points.slice(-60)) g.append(el("circle", { cx: sx(x), cy: sy(y), r: 2.5 }));
    if (series.length > 1 || s.name) {
      g.append(el("text", { x: pad.left + 8 + i * 120, y: pad.top + 10, class: "legend" }, s.name || ""));
    }
    svg.append(g);
  });
  return svg;
}

export function timeLabel(ms) {
  return new Date(ms).toISOString().slice(11, 19);
}

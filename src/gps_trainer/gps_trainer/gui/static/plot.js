// A small line plot on a canvas: axes with their range, one polyline per series (null values
// leave gaps), an optional log scale or equal scales on both axes (for paths in space), and a
// legend. No libraries: the pages work offline.
"use strict";

function linePlot(canvas, series,
                  { xLabel = "", yLabel = "", logY = false, equal = false, legend = true } = {}) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, left = 58, right = 10, top = 10, bottom = 34;
  ctx.clearRect(0, 0, W, H);
  const ys = [], xs = [];
  for (const s of series) {
    for (const [x, y] of s.points) {
      if (y === null || (logY && y <= 0)) continue;
      xs.push(x);
      ys.push(logY ? Math.log10(y) : y);
    }
  }
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#5c6773";
  if (ys.length === 0) {
    ctx.fillText("no data yet", W / 2 - 25, H / 2);
    return;
  }
  let [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  if (equal) {                                 // metres per pixel the same on both axes
    const scale = Math.max((x1 - x0) / (W - left - right), (y1 - y0) / (H - top - bottom));
    const [cx, cy] = [(x0 + x1) / 2, (y0 + y1) / 2];
    [x0, x1] = [cx - scale * (W - left - right) / 2, cx + scale * (W - left - right) / 2];
    [y0, y1] = [cy - scale * (H - top - bottom) / 2, cy + scale * (H - top - bottom) / 2];
  }
  const px = (x) => left + (x - x0) / (x1 - x0) * (W - left - right);
  const py = (y) => top + (1 - (y - y0) / (y1 - y0)) * (H - top - bottom);
  ctx.strokeStyle = "#9aa5b1";
  ctx.strokeRect(left, top, W - left - right, H - top - bottom);
  const label = (v) => logY ? fmt(10 ** v) : fmt(v);
  ctx.textAlign = "right";
  ctx.fillText(label(y1), left - 4, top + 9);
  ctx.fillText(label(y0), left - 4, H - bottom);
  ctx.textAlign = "center";
  ctx.fillText(fmt(x0), left, H - bottom + 13);
  ctx.fillText(fmt(x1), W - right - 8, H - bottom + 13);
  ctx.fillText(xLabel, (left + W - right) / 2, H - 6);
  ctx.save();
  ctx.translate(12, (top + H - bottom) / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.fillText(yLabel + (logY ? " (log)" : ""), 0, 0);
  ctx.restore();
  for (const s of series) {
    ctx.strokeStyle = ctx.fillStyle = s.colour;
    ctx.lineWidth = 1.6;
    ctx.beginPath();
    let pen = false;
    for (const [x, y] of s.points) {
      if (y === null || (logY && y <= 0)) { pen = false; continue; }
      const [cx, cy] = [px(x), py(logY ? Math.log10(y) : y)];
      if (pen) ctx.lineTo(cx, cy); else ctx.moveTo(cx, cy);
      pen = true;
      if (s.points.length < 30) ctx.fillRect(cx - 2, cy - 2, 4, 4);
    }
    ctx.stroke();
  }
  if (legend) {
    ctx.textAlign = "left";
    const width = Math.max(...series.map((s) => ctx.measureText(s.label).width));
    ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
    ctx.fillRect(left + 2, top + 2, width + 8, 12 * series.length + 4);
    series.forEach((s, i) => {
      ctx.fillStyle = s.colour;
      ctx.fillText(s.label, left + 6, top + 12 + 12 * i);
    });
  }
}

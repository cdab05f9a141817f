// Training dashboard: redraws when the node has received a new TrainingProgress or sample.
// Per iteration and condition every metric the trainer publishes (cost, eta, epsilon, nu,
// success of the trajectories and of the policy, ...), the KL per time step of the latest
// iteration, and the latest sample's end-effector path.
"use strict";

const POLL_MS = 1000;
const EE_POINT_NAMES = ["hook tip", "shoulder near end", "shoulder far end"];
let seen = { progress: -1, samples: -1 };

async function poll() {
  try {
    const state = await getJson("/api/state");
    document.getElementById("link").textContent =
      `live · ${state.progress_count} iterations · ${state.samples} samples received`;
    if (state.progress_count !== seen.progress || state.samples !== seen.samples) {
      seen = { progress: state.progress_count, samples: state.samples };
      render(await getJson("/api/progress"));
    }
  } catch (err) {
    document.getElementById("link").textContent = "GUI node not reachable";
  }
  setTimeout(poll, POLL_MS);
}

function render(progress) {
  const records = progress.records;
  if (records.length > 0) {
    const latest = records[records.length - 1];
    document.getElementById("summary").textContent =
      `iteration ${latest.iteration} · phase ${latest.phase} · ` +
      `${latest.conditions.length} conditions · ${progress.count} iterations received`;
    renderLatestTable(latest);
    renderMetricCharts(records);
    renderKlPerStep(latest);
  }
  if (progress.sample) renderSample(progress.sample);
}

function renderLatestTable(latest) {
  const head = el("tr");
  head.appendChild(el("th", "condition"));
  for (const name of latest.metric_names) head.appendChild(el("th", name));
  document.querySelector("#latest thead").replaceChildren(head);
  const rows = latest.conditions.map((c) => {
    const row = el("tr");
    row.appendChild(el("td", `${c.condition}: ${c.name}`));
    c.values.forEach((v, j) => {
      const isSuccess = latest.metric_names[j].includes("success") && (v === 0 || v === 1);
      row.appendChild(isSuccess ? el("td", v ? "yes" : "no", v ? "yes" : "no") : el("td", fmt(v)));
    });
    return row;
  });
  document.querySelector("#latest tbody").replaceChildren(...rows);
}

// One chart per metric: value against iteration, one line per condition.
function renderMetricCharts(records) {
  const names = [...new Set(records.flatMap((r) => r.metric_names))];
  const conditions = new Map();
  for (const r of records) for (const c of r.conditions) conditions.set(c.condition, c.name);
  const container = document.getElementById("metric-charts");
  container.replaceChildren(...names.map((metric) => {
    const section = el("section");
    section.appendChild(el("h2", `${metric} per iteration`));
    const canvas = el("canvas");
    canvas.width = 420;
    canvas.height = 200;
    canvas.dataset.metric = metric;
    section.appendChild(canvas);
    const series = [...conditions.entries()].map(([index, name], k) => ({
      label: name, colour: conditionColour(k, conditions.size),
      points: records.flatMap((r) => {
        const j = r.metric_names.indexOf(metric);
        const row = r.conditions.find((c) => c.condition === index);
        return j < 0 || !row ? [] : [[r.iteration, row.values[j]]];
      }),
    }));
    const legend = metric === names[0];                     // one legend is enough
    linePlot(canvas, series, { xLabel: "iteration", yLabel: metric, legend });
    return section;
  }));
}

function renderKlPerStep(latest) {
  const series = latest.conditions.map((c, k) => ({
    label: c.name, colour: conditionColour(k, latest.conditions.length),
    points: c.kl_per_step.map((v, t) => [t, v]),
  }));
  linePlot(document.getElementById("kl-per-step"), series,
           { xLabel: `time step (iteration ${latest.iteration})`, yLabel: "KL", logY: true });
}

function renderSample(sample) {
  const aborted = sample.aborted ? `, aborted: ${sample.abort_reason}` : "";
  document.getElementById("sample-title").textContent =
    `latest sample: condition ${sample.condition}, iteration ${sample.iteration}, ` +
    `trial ${sample.trial_id}, ${sample.t} steps${aborted}`;
  const count = sample.points[0].length;
  const view = (a, b) => [...Array(count).keys()].map((p) => ({
    label: EE_POINT_NAMES[p] || `point ${p}`, colour: conditionColour(p, count),
    points: sample.points.map((step) => [step[p][a], step[p][b]]),
  }));
  linePlot(document.getElementById("ee-top"), view(0, 1),
           { xLabel: "x (m), top view", yLabel: "y (m)", equal: true });
  linePlot(document.getElementById("ee-side"), view(0, 2),
           { xLabel: "x (m), side view", yLabel: "z (m)", equal: true, legend: false });
}

poll();

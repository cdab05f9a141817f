// Teleop page: polls /api/state, draws the camera with the feature points, and sends the
// page's actions to the node. All checking happens in the node; entries go out as typed.
"use strict";

const AXES = ["x", "y", "z", "yaw"];
const UNITS = { x: "m", y: "m", z: "m", yaw: "rad" };
const POLL_MS = 250;
const camera = document.getElementById("camera");
const frame = new Image();
let featurePoints = null;

async function init() {
  const config = await getJson("/api/config");
  buildTargetTable(config);
  const names = document.getElementById("condition-names");
  for (const c of config.conditions) names.appendChild(new Option(c.name, c.name));
  document.getElementById("condition").value = config.conditions[0].name;
  const sets = document.getElementById("save-set");
  for (const s of config.sets) sets.appendChild(new Option(s, s));
  const grasps = document.getElementById("save-grasp");
  for (let g = 0; g < config.grasps; g++) grasps.appendChild(new Option(g, g));
  document.getElementById("conditions-file").textContent =
    `into ${config.conditions_file}; reset and trials use set "${config.condition_set}"`;
  bindActions();
  frame.onload = draw;
  document.body.dataset.ready = "true";       // controls filled in and live
  poll();
}

function buildTargetTable(config) {
  const body = document.querySelector("#target tbody");
  const { low, high, yaw_max } = config.limits;
  AXES.forEach((axis, i) => {
    const row = el("tr");
    row.appendChild(el("td", `${axis} (${UNITS[axis]})`));
    const current = el("td", "–");
    current.id = `current-${axis}`;
    row.appendChild(current);
    const steps = el("td");
    for (const sign of [-1, 1]) {
      const delta = sign * config.steps[axis];
      const button = el("button", (sign > 0 ? "+" : "−") + config.steps[axis]);
      button.id = `step-${axis}-${sign > 0 ? "plus" : "minus"}`;
      button.onclick = async () => showMessage(await postJson("/api/target",
                                                             { step: { [axis]: delta } }));
      steps.appendChild(button);
    }
    row.appendChild(steps);
    const entry = el("td");
    const input = el("input");
    input.type = "text";
    input.id = `enter-${axis}`;
    entry.appendChild(input);
    row.appendChild(entry);
    const range = axis === "yaw" ? [-yaw_max, yaw_max] : [low[i], high[i]];
    row.appendChild(el("td", `${range[0].toFixed(3)} … ${range[1].toFixed(3)}`, "muted"));
    body.appendChild(row);
  });
}

function bindActions() {
  const value = (id) => document.getElementById(id).value;
  document.getElementById("send-target").onclick = async () => {
    const set = {};
    for (const axis of AXES) {
      if (value(`enter-${axis}`).trim() !== "") set[axis] = value(`enter-${axis}`);
    }
    if (Object.keys(set).length === 0) {
      showMessage({ ok: false, message: "enter a value for at least one axis first" });
      return;
    }
    showMessage(await postJson("/api/target", { set }));
  };
  document.getElementById("reset").onclick = async () =>
    showMessage(await postJson("/api/reset", { condition: value("condition") }));
  document.getElementById("run-trial").onclick = async () =>
    showMessage(await postJson("/api/trial", { condition: value("condition"),
                                               policy_version: value("policy-version") }));
  document.getElementById("save").onclick = async () =>
    showMessage(await postJson("/api/save", { name: value("save-name"),
                                              set_name: value("save-set"),
                                              grasp: value("save-grasp") }));
}

async function poll() {
  try {
    render(await getJson("/api/state"));
  } catch (err) {
    document.getElementById("link").textContent = "GUI node not reachable";
  }
  setTimeout(poll, POLL_MS);
}

function render(state) {
  document.getElementById("link").textContent = `live · ${state.frames} camera frames`;
  for (const axis of AXES) {
    document.getElementById(`current-${axis}`).textContent = state.target[axis].toFixed(4);
  }
  document.getElementById("target-source").textContent = state.target.name
    ? `(last sent on /left_arm_target: "${state.target.name}")`
    : "(nominal pose: no target sent yet)";
  renderJoints(state.joints);
  featurePoints = state.feature_points;
  document.getElementById("feature-info").textContent = featurePoints
    ? `${featurePoints.length} feature points`
    : "no feature points (no CNN policy running)";
  if (state.frames > 0 && Number(camera.dataset.requested || -1) !== state.frames) {
    camera.dataset.requested = state.frames;
    frame.src = `/api/camera.png?frame=${state.frames}`;
  } else {
    draw();
  }
  const trial = document.getElementById("trial-status");
  trial.textContent = state.trial.message;
  trial.className = { succeeded: "yes", failed: "no", refused: "no" }[state.trial.state] || "muted";
  const logs = document.getElementById("logs");
  logs.replaceChildren(...state.logs.map((l) => el("li", `${l.node}: ${l.text}`, l.level)));
  if (state.logs.length === 0) logs.replaceChildren(el("li", "none so far"));
}

function renderJoints(joints) {
  const body = document.querySelector("#joints tbody");
  if (!joints) return;
  const rows = joints.names.map((name, i) => {
    const row = el("tr");
    row.appendChild(el("td", name));
    for (const field of ["position", "velocity", "effort"]) {
      row.appendChild(el("td", joints[field].length ? fmt(joints[field][i]) : "–"));
    }
    return row;
  });
  body.replaceChildren(...rows);
}

// The frame scaled up without smoothing, then each feature point (normalised coordinates in
// [-1, 1], x right, y down) as a coloured dot.
function draw() {
  if (!frame.complete || frame.naturalWidth === 0) return;
  const ctx = camera.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(frame, 0, 0, camera.width, camera.height);
  const points = featurePoints || [];
  points.forEach(([x, y], i) => {
    ctx.beginPath();
    ctx.arc((x + 1) / 2 * camera.width, (y + 1) / 2 * camera.height, 5, 0, 2 * Math.PI);
    ctx.fillStyle = conditionColour(i, points.length);
    ctx.fill();
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
  });
  camera.dataset.points = points.length;
  document.getElementById("frame-info").textContent =
    `frame ${camera.dataset.requested} (${frame.naturalWidth}x${frame.naturalHeight})`;
}

init();

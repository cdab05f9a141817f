// Helpers shared by both pages: JSON requests, number formatting, the message line.
"use strict";

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  return response.json();
}

// POST `body` as JSON; answers {ok, message} whatever the status (400 refusals included).
async function postJson(url, body) {
  try {
    const response = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    return await response.json();
  } catch (err) {
    return { ok: false, message: `the GUI node did not answer: ${err}` };
  }
}

// 4 significant digits; exponent form for very large or small magnitudes; "-" for none.
function fmt(value) {
  if (value === null || value === undefined) return "–";
  const mag = Math.abs(value);
  if (mag !== 0 && (mag >= 1e5 || mag < 1e-3)) return value.toExponential(3);
  return Number(value.toPrecision(4)).toString();
}

function showMessage(reply) {
  const line = document.getElementById("message");
  line.textContent = reply.message;
  line.className = "message " + (reply.ok ? "ok" : "error");
}

function conditionColour(index, count) {
  return `hsl(${Math.round(360 * index / Math.max(count, 1))}, 70%, 42%)`;
}

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

// The wasmgrid dashboard: reads the broker's /api with the token the person
// signs in with, and redraws every two seconds. No framework, no build step;
// every value from the API goes into the page as text, never as HTML.
"use strict";

const REFRESH_MS = 2000;
const TASK_PAGE = 100;
const MICRO_PER_CREDIT = 1e6;
const TOKEN_KEY = "wasmgrid-token";

const WORKLOAD_STATES = ["unspecified", "running", "done", "failed", "cancelled"];
const TASK_STATES = ["unspecified", "queued", "leased", "done", "failed", "cancelled"];

const view = { workloadId: null, taskFrom: 0, timer: null, agentNames: new Map() };

const $ = (id) => document.getElementById(id);

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path) {
  const response = await fetch(path, {
    headers: { Authorization: "Bearer " + token() },
    cache: "no-store",
  });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) {
    throw new ApiError(response.status, body.error || response.statusText);
  }
  return body;
}

// ---- formatting -----------------------------------------------------------

function credits(micro) {
  return (Number(micro) / MICRO_PER_CREDIT).toLocaleString(undefined, {
    maximumFractionDigits: 6,
  });
}

function count(n) {
  return Number(n).toLocaleString();
}

function when(unixMs) {
  return unixMs ? new Date(Number(unixMs)).toLocaleString() : "";
}

function duration(ms) {
  ms = Number(ms);
  if (ms < 1000) return ms + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(2) + " s";
  return (ms / 60000).toFixed(1) + " min";
}

function percent(done, total) {
  return total ? Math.floor((100 * done) / total) : 0;
}

// ---- DOM helpers ----------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function cell(value, cls) {
  return el("td", cls ? { class: cls } : {}, value);
}

function fillBody(table, rows) {
  table.tBodies[0].replaceChildren(...rows);
}

function progressBar(done, failed, total) {
  const pct = percent(done + failed, total);
  const fill = el("div", { class: "fill" + (pct === 100 ? " complete" : "") });
  fill.style.width = pct + "%";
  return el("div", { class: "progress" }, el("div", { class: "bar" }, fill),
    el("span", { class: "pct" }, pct + "%"));
}

// ---- sections -------------------------------------------------------------

async function drawWorkloads() {
  const workloads = await api("/api/workloads");
  $("no-workloads").hidden = workloads.length > 0;
  fillBody($("workloads"), workloads.map((w) => {
    const state = WORKLOAD_STATES[w.state] || "unspecified";
    const row = el("tr", { class: "selectable", "data-workload": w.workload_id },
      cell(el("span", {}, el("strong", {}, w.name || "(unnamed)"), " ",
        el("span", { class: "muted" }, w.workload_id))),
      cell(w.issuer),
      cell(state, "state-" + state),
      cell(progressBar(w.done, w.failed, w.total)),
      cell(count(w.done) + " / " + count(w.total), "num"),
      cell(count(w.failed), "num"),
      cell(w.replicas + " (quorum " + w.quorum + ")"),
      cell(credits(w.bill ? w.bill.paid_micro : 0), "num"),
      cell(when(w.created_unix_ms)));
    if (w.workload_id === view.workloadId) row.classList.add("selected");
    row.addEventListener("click", () => selectWorkload(w.workload_id));
    return row;
  }));
  if (!view.workloadId && workloads.length > 0) {
    view.workloadId = workloads[0].workload_id;
  }
}

function selectWorkload(id) {
  view.workloadId = id;
  view.taskFrom = 0;
  refresh();
}

function fact(list, name, value) {
  list.append(el("dt", {}, name), el("dd", {}, value));
}

async function drawWorkload() {
  const section = $("workload");
  if (!view.workloadId) {
    section.hidden = true;
    return;
  }
  const id = encodeURIComponent(view.workloadId);
  const [detail, page] = await Promise.all([
    api("/api/workloads/" + id),
    api("/api/workloads/" + id + "/tasks?from=" + view.taskFrom + "&limit=" + TASK_PAGE),
  ]);
  const w = detail.status;
  const state = WORKLOAD_STATES[w.state] || "unspecified";
  section.hidden = false;
  $("workload-name").textContent = (w.name || "") + " (" + w.workload_id + ")";

  const facts = $("workload-facts");
  facts.replaceChildren();
  fact(facts, "State", el("span", { class: "state-" + state, id: "workload-state" }, state));
  fact(facts, "Progress", progressBar(w.done, w.failed, w.total));
  fact(facts, "Tasks", count(w.total) + " in all: " + count(w.done) + " done, " +
    count(w.running) + " running, " + count(w.queued) + " queued, " + count(w.failed) + " failed");
  fact(facts, "Verification", w.replicas + " replicas, quorum " + w.quorum +
    (w.adaptive_replication ? ", adaptive" : ""));
  fact(facts, "Rate", w.credits_per_fuel + " credits per fuel");
  if (w.bill) {
    fact(facts, "Bill", "escrowed " + credits(w.bill.escrowed_micro) + ", paid " +
      credits(w.bill.paid_micro) + ", fee " + credits(w.bill.fee_micro) + ", refunded " +
      credits(w.bill.refunded_micro));
  }
  fact(facts, "Created", when(w.created_unix_ms));
  if (w.finished_unix_ms) {
    fact(facts, "Finished", when(w.finished_unix_ms) + " (" +
      duration(w.finished_unix_ms - w.created_unix_ms) + ")");
  }
  if (w.error) fact(facts, "Error", el("span", { class: "error" }, w.error));

  const end = detail.end_result;
  $("end-result").hidden = !end;
  if (end) {
    const what = end.reduced ? "reduced, " : "first task's output (no reducer), ";
    $("end-result-text").textContent = end.text !== null && end.text !== undefined
      ? end.text
      : "(" + what + end.size + " bytes, not text) " + end.hex_prefix;
  }

  fillBody($("tasks"), page.tasks.map((t) => {
    const agents = [...new Set(t.history.map((run) => view.agentNames.get(run.agent_id) || run.agent_id))];
    const wall = t.history.reduce((sum, run) => sum + Number(run.wall_time_ms), 0);
    const state = TASK_STATES[t.state] || "unspecified";
    return el("tr", {},
      cell(t.index, "num"),
      cell(state, "state-" + state),
      cell(t.attempts, "num"),
      cell(agents.join(", ")),
      cell(duration(wall), "num"),
      cell(count(t.fuel_consumed), "num"),
      cell(credits(t.paid_micro), "num"));
  }));
  const last = Math.min(page.from + page.tasks.length, page.total);
  $("tasks-range").textContent = page.total
    ? "tasks " + (page.from + 1) + "–" + last + " of " + count(page.total)
    : "no tasks";
  $("tasks-prev").disabled = page.from === 0;
  $("tasks-next").disabled = last >= page.total;
}

async function drawAgents() {
  const agents = await api("/api/agents");
  view.agentNames = new Map(agents.map((a) => [a.agent_id, a.name]));
  fillBody($("agents"), agents.map((a) => el("tr", { "data-agent": a.agent_id },
    cell(el("span", {}, el("strong", {}, a.name), " ", el("span", { class: "muted" }, a.agent_id))),
    cell(a.version),
    cell(a.os + "/" + a.arch + ", " + a.cores + " cores"),
    cell(a.slots, "num"),
    cell(count(a.tasks_ok), "num"),
    cell(count(a.tasks_failed), "num"),
    cell((100 * a.reputation).toFixed(1) + " %" + (a.trusted ? " (trusted)" : ""), "num"),
    cell(count(Math.round(a.fuel_per_second)), "num"),
    cell(credits(a.earned_micro), "num"),
    cell(when(a.last_seen_unix_ms)))));
}

async function drawLedger() {
  const ledger = await api("/api/ledger");
  const table = $("ledger");
  if (ledger.view === "issuer") {
    $("ledger-summary").textContent = "Balance " + credits(ledger.balance.balance_micro) +
      " credits, of which " + credits(ledger.balance.escrowed_micro) +
      " held in escrow by running workloads.";
    table.tHead.replaceChildren(el("tr", {}, el("th", {}, "#"), el("th", {}, "When"),
      el("th", {}, "Kind"), el("th", {}, "From"), el("th", {}, "To"),
      el("th", { class: "num" }, "Credits"), el("th", {}, "Workload / task")));
    fillBody(table, ledger.entries.map((e) => el("tr", {},
      cell(e.seq, "num"), cell(when(e.at_unix_ms)), cell(e.kind), cell(e.from_account),
      cell(e.to_account), cell(credits(e.amount_micro), "num"),
      cell(e.workload_id + (e.has_task ? " #" + e.task_index : "")))));
  } else {
    const a = ledger.accounts;
    $("ledger-summary").textContent = "Granted " + credits(a.granted_micro) +
      " credits in all; held in accounts " + credits(a.held_micro) + ".";
    table.tHead.replaceChildren(el("tr", {}, el("th", {}, "Account"), el("th", {}, "Kind"),
      el("th", { class: "num" }, "Balance (credits)")));
    fillBody(table, a.accounts.map((account) => el("tr", {},
      cell(account.id), cell(account.kind), cell(credits(account.balance_micro), "num"))));
  }
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

async function drawThroughput() {
  const t = await api("/api/throughput?minutes=30");
  const width = 600;
  const height = 120;
  const slots = Math.max(1, Math.ceil((t.now_unix_ms - t.since_unix_ms) / t.bucket_ms));
  const peak = Math.max(1, ...t.buckets.map(([, n]) => n));
  const chart = svg("svg", { viewBox: "0 0 " + width + " " + height,
    preserveAspectRatio: "none", role: "img",
    "aria-label": "tasks finished per " + t.bucket_ms / 1000 + " s" });
  const barWidth = width / slots;
  let total = 0;
  for (const [start, n] of t.buckets) {
    total += n;
    const slot = Math.floor((start - t.since_unix_ms) / t.bucket_ms);
    const barHeight = (height * n) / peak;
    const bar = svg("rect", { x: slot * barWidth + 1, y: height - barHeight,
      width: Math.max(1, barWidth - 2), height: barHeight });
    bar.append(svg("title", {}));
    bar.firstChild.textContent = n + " tasks at " + when(start);
    chart.append(bar);
  }
  const caption = el("p", { class: "muted", id: "throughput-caption" }, total +
    " tasks finished in the window; peak " + (total ? peak : 0) + " per " + t.bucket_ms / 1000 + " s");
  $("throughput").replaceChildren(chart, caption);
}

// ---- life cycle -----------------------------------------------------------

async function refresh() {
  clearTimeout(view.timer);
  try {
    await drawWorkloads();
    // Agents first: the task table names the agents that ran each task.
    await drawAgents();
    await Promise.all([drawWorkload(), drawLedger(), drawThroughput()]);
    $("board-error").textContent = "";
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut("The broker refused this token: " + error.message);
      return;
    }
    $("board-error").textContent = "Cannot read the broker: " + error.message;
  }
  view.timer = setTimeout(refresh, REFRESH_MS);
}

async function start() {
  if (!token()) {
    showSignIn("");
    return;
  }
  try {
    const me = await api("/api/me");
    $("who").textContent = me.role === "admin" ? "admin: every issuer" : "issuer " + me.issuer;
  } catch (error) {
    signOut(error.status === 401 ? "The broker refused this token: " + error.message
      : "Cannot reach the broker: " + error.message);
    return;
  }
  $("sign-in").hidden = true;
  $("board").hidden = false;
  $("sign-out").hidden = false;
  refresh();
}

function showSignIn(message) {
  $("board").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("who").textContent = "";
  $("sign-in-error").textContent = message;
}

function signOut(message) {
  clearTimeout(view.timer);
  sessionStorage.removeItem(TOKEN_KEY);
  view.workloadId = null;
  showSignIn(message || "");
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    start();
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("tasks-prev").addEventListener("click", () => {
    view.taskFrom = Math.max(0, view.taskFrom - TASK_PAGE);
    refresh();
  });
  $("tasks-next").addEventListener("click", () => {
    view.taskFrom += TASK_PAGE;
    refresh();
  });
  start();
});

// PSTT dashboard: reads the /pstt JSON endpoints (same origin, Airflow session cookie) and draws them.
// body[data-state] becomes "ready" once everything is rendered, or "error" with the reason in #problem;
// body[data-ready] is "true" from the first complete load on (what tests and embedders wait for).
// #runs[data-dag-id] names the job the tries table was last loaded for ("" = all jobs).
// Times are shown in Airflow's [core] default_timezone, which the summary endpoint names.
"use strict";

const API = "api/kafka/";
const RECENT_TRIES = 25;
const charts = {};
let timezone = "UTC";

async function getJson(path, options) {
  const response = await fetch(API + path, { credentials: "same-origin", ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(`${path}: HTTP ${response.status} ${body.detail ? JSON.stringify(body.detail) : ""}`);
  }
  return body;
}

function formatNumber(value) {
  return typeof value === "number" ? value.toLocaleString("en-US", { maximumFractionDigits: 2 }) : String(value);
}

function formatter(options) {
  try {
    return new Intl.DateTimeFormat("sv-SE", { timeZone: timezone, hourCycle: "h23", ...options });
  } catch (error) {
    return new Intl.DateTimeFormat("sv-SE", { timeZone: "UTC", hourCycle: "h23", ...options });
  }
}

// "2026-01-20 10:30:00" in Airflow's timezone.
function localTime(iso) {
  const parts = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" };
  return formatter(parts).format(new Date(iso));
}

function localHour(iso) {
  return formatter({ hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
}

function setTimezone(name) {
  timezone = name || "UTC";
  for (const element of document.querySelectorAll(".tz-name")) {
    element.textContent = timezone;
  }
  document.getElementById("timezone-note").textContent = `times in ${timezone} (Airflow's default timezone)`;
  document.body.dataset.timezone = timezone;
}

function renderSummary(summary) {
  for (const element of document.querySelectorAll("#summary [data-field]")) {
    const field = element.dataset.field;
    if (field === "runs") {
      element.textContent = `${summary.runs} (${summary.failed_runs})`;
    } else if (field === "job_runs") {
      element.textContent = `${summary.job_runs} (${summary.failed_job_runs})`;
    } else {
      element.textContent = formatNumber(summary[field]) + (element.dataset.unit || "");
    }
  }
  document.getElementById("today-since").textContent = `since ${localTime(summary.since)} ${timezone}`;
}

function renderHealth(health) {
  const overall = document.getElementById("overall");
  overall.textContent = health.status;
  overall.className = `badge ${health.status}`;
  const list = document.getElementById("connections");
  const select = document.querySelector("#test-form select");
  list.replaceChildren();
  select.replaceChildren();
  if (!health.connections.length) {
    list.textContent = "No Kafka connection is configured in Airflow.";
  }
  for (const connection of health.connections) {
    const item = document.createElement("li");
    item.dataset.connId = connection.conn_id;
    item.dataset.reachable = String(connection.reachable);
    const dot = document.createElement("span");
    dot.className = `dot ${connection.reachable ? "up" : "down"}`;
    item.append(dot, connection.conn_id + " ");
    const detail = document.createElement("span");
    if (connection.reachable) {
      detail.textContent = `connected, ${connection.brokers} broker(s), ${formatNumber(connection.latency_ms)} ms`;
    } else {
      detail.className = "error";
      detail.textContent = `unreachable: ${connection.error}`;
    }
    item.append(detail);
    list.append(item);
    select.append(new Option(connection.conn_id, connection.conn_id));
  }
}

function drawChart(id, config) {
  if (charts[id]) {
    charts[id].destroy();
  }
  charts[id] = new Chart(document.getElementById(id), config);
}

function renderHourly(hours) {
  const labels = hours.map((hour) => localHour(hour.hour));
  const common = { animation: false, responsive: true, maintainAspectRatio: false };
  drawChart("messages-chart", {
    type: "bar",
    data: {
      labels,
      datasets: [
        { label: "sent", data: hours.map((hour) => hour.messages_sent), backgroundColor: "#2f9e44", stack: "m" },
        { label: "failed", data: hours.map((hour) => hour.messages_failed), backgroundColor: "#e03131", stack: "m" },
      ],
    },
    options: { ...common, scales: { y: { beginAtZero: true, stacked: true }, x: { stacked: true } } },
  });
  const latency = (key) => hours.map((hour) => (hour.total_messages ? hour[key] : null));
  drawChart("latency-chart", {
    type: "line",
    data: {
      labels,
      datasets: [
        { label: "p50", data: latency("p50_latency_ms"), borderColor: "#1c7ed6", backgroundColor: "#1c7ed6", spanGaps: true, pointRadius: 5 },
        { label: "p99", data: latency("p99_latency_ms"), borderColor: "#f08c00", backgroundColor: "#f08c00", spanGaps: true, pointRadius: 5, pointStyle: "rectRot" },
      ],
    },
    options: { ...common, scales: { y: { beginAtZero: true, title: { display: true, text: "ms" } } } },
  });
}

// Airflow 3 UI pages, relative to this page (/pstt/ sits beside the UI's routes, also under a base path).
function uiUrl(path) {
  return new URL(`../${path}`, document.baseURI).href;
}

function runUrl(run) {
  return uiUrl(`dags/${encodeURIComponent(run.dag_id)}/runs/${encodeURIComponent(run.run_id)}`);
}

function logUrl(run) {
  const mapped = run.map_index >= 0 ? `/mapped/${run.map_index}` : "";
  const task = `${runUrl(run)}/tasks/${encodeURIComponent(run.task_id)}${mapped}`;
  return `${task}?try_number=${encodeURIComponent(run.try_number)}`;
}

function link(href, text) {
  const anchor = document.createElement("a");
  anchor.href = href;
  anchor.target = "_top"; // inside the Airflow UI's frame, open the UI page itself
  anchor.textContent = text;
  return anchor;
}

function renderRuns(runs, dagId) {
  const table = document.getElementById("runs");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  for (const run of runs) {
    const row = body.insertRow();
    row.dataset.dagId = run.dag_id;
    row.dataset.tryNumber = String(run.try_number);
    row.dataset.state = run.state;
    const error = run.errors && run.errors.length ? run.errors[0] : "";
    const cells = [
      ["finished", localTime(run.finished_at)],
      ["job", run.display_name || run.dag_id],
      ["run", link(runUrl(run), run.run_id)],
      ["try", link(logUrl(run), `try ${run.try_number} · log`)],
      ["topic", run.topic],
      ["rows", formatNumber(run.rows)],
      ["sent", formatNumber(run.messages_sent)],
      ["failed", formatNumber(run.messages_failed)],
      ["dead_lettered", formatNumber(run.messages_dead_lettered)],
      ["state", run.state],
      ["error", error],
      ["duration", `${formatNumber(run.duration_s)} s`],
    ];
    for (const [name, content] of cells) {
      const cell = row.insertCell();
      cell.dataset.col = name;
      cell.append(content);
      if (["rows", "sent", "failed", "dead_lettered", "duration"].includes(name)) cell.className = "num";
      if (name === "state") cell.className = `state-${run.state}`;
      if (name === "job") cell.title = run.dag_id;
      if (name === "error") {
        cell.className = "error-text";
        cell.title = (run.errors || []).join("\n");
      }
    }
  }
  if (!runs.length) {
    const cell = body.insertRow().insertCell();
    cell.colSpan = 12;
    cell.textContent = dagId ? "No stored try of this job." : "No delivery try stored yet.";
  }
  table.dataset.dagId = dagId;
}

function renderJobs(jobs) {
  const select = document.getElementById("job-filter");
  const chosen = select.value;
  select.replaceChildren(new Option("All jobs", ""));
  for (const job of jobs) {
    const label = job.display_name === job.dag_id ? job.dag_id : `${job.display_name} (${job.dag_id})`;
    select.append(new Option(label, job.dag_id));
  }
  select.value = jobs.some((job) => job.dag_id === chosen) ? chosen : "";
}

function selectedJob() {
  return document.getElementById("job-filter").value;
}

async function loadRuns() {
  const dagId = selectedJob();
  const query = new URLSearchParams({ limit: String(RECENT_TRIES) });
  if (dagId) query.set("dag_id", dagId);
  renderRuns(await getJson(`metrics/runs?${query}`), dagId);
}

async function refresh() {
  const [summary, hourly, jobs, health] = await Promise.all([
    getJson("metrics/summary?period=today"),
    getJson("metrics/hourly?hours=24"),
    getJson("metrics/jobs"),
    getJson("health"),
  ]);
  setTimezone(summary.timezone);
  renderSummary(summary);
  renderHourly(hourly);
  renderJobs(jobs);
  await loadRuns();
  renderHealth(health);
  document.getElementById("updated").textContent = `updated ${localTime(new Date().toISOString())}`;
}

async function testConnection(event) {
  event.preventDefault();
  const output = document.getElementById("test-result");
  const connectionId = new FormData(event.target).get("connection_id");
  output.textContent = "testing…";
  try {
    const result = await getJson("test", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ connection_id: connectionId }),
    });
    output.textContent = result.connected
      ? `${connectionId}: connected in ${formatNumber(result.latency_ms)} ms`
      : `${connectionId}: unreachable (${result.error})`;
  } catch (error) {
    output.textContent = error.message;
  }
}

function showProblem(error) {
  const problem = document.getElementById("problem");
  problem.hidden = false;
  problem.textContent = `Could not load the metrics: ${error.message}`;
  document.body.dataset.state = "error";
}

document.getElementById("test-form").addEventListener("submit", testConnection);
document.getElementById("filter-form").addEventListener("submit", (event) => event.preventDefault());
document.getElementById("job-filter").addEventListener("change", () => loadRuns().catch(showProblem));
function loaded() {
  document.getElementById("problem").hidden = true;
  document.body.dataset.state = "ready";
  document.body.dataset.ready = "true";
}

refresh().then(loaded).catch(showProblem);
setInterval(() => refresh().then(loaded).catch(showProblem), 60_000);

// PSTT dashboard: reads the /pstt JSON endpoints (same origin, Airflow session cookie) and draws them.
// body[data-state] becomes "ready" once everything is rendered, or "error" with the reason in #problem.
"use strict";

const API = "api/kafka/";
const charts = {};

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

function renderSummary(summary) {
  for (const element of document.querySelectorAll("#summary [data-field]")) {
    const field = element.dataset.field;
    const text = formatNumber(summary[field]) + (element.dataset.unit || "");
    element.textContent = field === "runs" ? `${summary.runs} (${summary.failed_runs})` : text;
  }
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
  const labels = hours.map((hour) => hour.hour.slice(11, 16));
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

function renderRuns(runs) {
  const body = document.querySelector("#runs tbody");
  body.replaceChildren();
  for (const run of runs) {
    const row = body.insertRow();
    const cells = [
      run.finished_at.slice(0, 19).replace("T", " "),
      run.dag_id,
      run.task_id,
      run.topic,
      formatNumber(run.rows),
      formatNumber(run.messages_sent),
      formatNumber(run.messages_failed),
      run.state,
      `${formatNumber(run.duration_s)} s`,
    ];
    cells.forEach((text, index) => {
      const cell = row.insertCell();
      cell.textContent = text;
      if (index >= 4 && index !== 7) cell.className = "num";
      if (index === 7) cell.className = `state-${run.state}`;
    });
  }
  if (!runs.length) {
    body.insertRow().insertCell().textContent = "No delivery run stored yet.";
  }
}

async function refresh() {
  const [summary, hourly, runs, health] = await Promise.all([
    getJson("metrics/summary?period=today"),
    getJson("metrics/hourly?hours=24"),
    getJson("metrics/runs?limit=15"),
    getJson("health"),
  ]);
  renderSummary(summary);
  renderHourly(hourly);
  renderRuns(runs);
  renderHealth(health);
  document.getElementById("updated").textContent = `updated ${new Date().toISOString().slice(0, 19)} UTC`;
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
refresh()
  .then(() => {
    document.body.dataset.state = "ready";
  })
  .catch(showProblem);
setInterval(() => refresh().catch(showProblem), 60_000);

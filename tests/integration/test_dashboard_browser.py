"""
The dashboard in real headless Chromium (Debian's package, installed by scripts/chromium.sh) against a
real API server fed by two real DAG runs, driven over the DevTools protocol: the Airflow session is the
``_token`` cookie the UI itself uses. The server's default timezone is Europe/Rome, as at the seed's site.

Every wait is for a state the page itself announces (``body[data-ready]`` after its first complete load,
``#runs[data-dag-id]`` after the tries table is loaded for a job), never for a fixed time.

Screenshots go to $PSTT_SCREENSHOT_DIR when set (docs/img/ is made that way), else to the test's temp dir.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import pytest
from helpers import ROOT
from helpers.kafka import new_topic
from helpers.pstt_api_server import (
    DISPLAY_NAMES,
    FAILING_DAG,
    OK_DAG,
    UNWRITABLE_TOPIC_CONFIG,
    ApiServer,
    Delivered,
    deliver_two_runs,
    wait_for_tries,
)
from websockets.sync.client import ClientConnection, connect

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1280,1400",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]
TIMEZONE = "Europe/Rome"
READY = "document.body?.dataset.ready === 'true'"


class DevTools:
    """Just enough of the Chrome DevTools protocol: one page, commands answered in order."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, limit_s: float = 90) -> Any:
        """Poll until the expression is truthy; the limit only stops a hung page from hanging the suite."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise TimeoutError(f"page never satisfied: {expression}")


@pytest.fixture(scope="module")
def chromium() -> str:
    installed = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], check=True, capture_output=True, text=True)
    return installed.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def delivered_server(tmp_path_factory, airflow_home, kafka_bootstrap) -> Iterator[tuple[ApiServer, Delivered]]:
    home = airflow_home(tmp_path_factory.mktemp("pstt-dashboard-home"))
    delivered = deliver_two_runs(
        home, new_topic(kafka_bootstrap), new_topic(kafka_bootstrap, config=UNWRITABLE_TOPIC_CONFIG)
    )
    # The repo's plugins folder and the package's entry point both in place, as on a real install.
    server = ApiServer(
        home, AIRFLOW__CORE__DEFAULT_TIMEZONE=TIMEZONE, AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "plugins")
    )
    server.start()
    with server.client("admin") as client:
        assert wait_for_tries(client, 2, period="today")["runs"] == 2  # the background writer stored both
    yield server, delivered
    server.stop()


@pytest.fixture
def page(chromium: str, tmp_path: Path) -> Iterator[DevTools]:
    profile = tmp_path / "profile"
    browser = subprocess.Popen(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if browser.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not open its DevTools port (exit code {browser.poll()})")
            time.sleep(0.2)
        port = port_file.read_text().split()[0]
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=30).json()
        target = next(target for target in targets if target["type"] == "page")
        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as socket:
            yield DevTools(socket)
    finally:
        browser.terminate()
        browser.wait(timeout=30)


def open_dashboard(page: DevTools, server: ApiServer, user: str = "admin") -> None:
    page.call("Network.enable")
    page.call("Network.setCookie", name="_token", value=server.token(user), url=f"{server.url}/")
    page.call("Page.enable")
    page.call("Page.navigate", url=f"{server.url}/pstt/")
    state = page.wait_for(
        "document.body && ['ready', 'error'].includes(document.body.dataset.state) && document.body.dataset.state"
    )
    assert state == "ready", page.evaluate("document.getElementById('problem').textContent")
    assert page.evaluate(READY)


TRIES_TABLE = (
    "[...document.querySelectorAll('#runs tbody tr')].map(r => Object.fromEntries([...r.cells].map(c =>"
    " [c.dataset.col, c.textContent]).concat([['links', [...r.querySelectorAll('a')].map(a => a.href)]])))"
)


def local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(TIMEZONE)).strftime("%Y-%m-%d %H:%M:%S")


def test_dashboard_renders_the_runs_charts_and_connection_status(delivered_server, page, tmp_path):
    server, delivered = delivered_server
    open_dashboard(page, server)

    cards = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#summary [data-field]')]"
        ".map(e => [e.dataset.field, e.textContent]))"
    )
    assert cards["messages_sent"] == "25"
    assert cards["messages_failed"] == "5"
    assert cards["success_rate"] == "83.33%"
    assert cards["total_bytes"] == f"{delivered.summaries[OK_DAG]['bytes']:,}"
    assert cards["runs"] == "2 (1)"
    assert (cards["messages_dead_lettered"], cards["messages_aborted"], cards["messages_skipped"]) == ("0", "0", "0")
    assert (cards["try_success_rate"], cards["job_runs"], cards["run_success_rate"]) == ("50%", "2 (1)", "50%")

    assert page.evaluate("document.getElementById('timezone-note').textContent") == (
        f"times in {TIMEZONE} (Airflow's default timezone)"
    )
    assert page.evaluate("document.getElementById('today-since').textContent").endswith(f"00:00:00 {TIMEZONE}")

    connection = page.evaluate(
        "(() => { const li = document.querySelector('#connections li[data-conn-id=\"kafka_default\"]');"
        " return {reachable: li.dataset.reachable, dot: li.querySelector('.dot').className, text: li.textContent}; })()"
    )
    assert connection["reachable"] == "true"
    assert connection["dot"] == "dot up"
    assert page.evaluate("document.getElementById('overall').textContent") == "healthy"

    charts = page.evaluate(
        "['messages-chart', 'latency-chart'].map(id => { const chart = Chart.getChart(id);"
        " return {type: chart.config.type, width: chart.width, labels: chart.data.labels,"
        " datasets: chart.data.datasets.map(d => ({label: d.label, total: d.data.reduce((a, b) => a + (b || 0), 0),"
        " points: d.data.filter(v => v).length}))}; })"
    )
    messages, latency = charts
    assert messages["type"] == "bar"
    assert messages["width"] > 100
    assert {d["label"]: d["total"] for d in messages["datasets"]} == {"sent": 25, "failed": 5}
    assert latency["type"] == "line"
    assert latency["width"] > 100
    assert [d["label"] for d in latency["datasets"]] == ["p50", "p99"]
    assert all(d["points"] >= 1 and d["total"] > 0 for d in latency["datasets"])
    assert messages["labels"][-1] == datetime.now(ZoneInfo(TIMEZONE)).strftime("%H:00")  # the hours are local

    by_dag = {row["job"]: row for row in page.evaluate(TRIES_TABLE)}
    ok, failing = by_dag[DISPLAY_NAMES[OK_DAG]], by_dag[DISPLAY_NAMES[FAILING_DAG]]
    assert [ok[name] for name in ("topic", "rows", "sent", "failed", "state")] == [
        delivered.topic_a,
        "25",
        "25",
        "0",
        "success",
    ]
    assert [failing[name] for name in ("topic", "rows", "sent", "failed", "state")] == [
        delivered.topic_b,
        "5",
        "0",
        "5",
        "failed",
    ]
    assert "too large" in failing["error"]
    assert ok["error"] == ""
    assert failing["finished"] == local(delivered.summaries[FAILING_DAG]["finished_at"])

    page.evaluate("document.querySelector('#test-form button').click()")
    result = page.wait_for(
        "document.getElementById('test-result').textContent.includes('connected in')"
        " && document.getElementById('test-result').textContent"
    )
    assert result.startswith("kafka_default: connected in")

    save_screenshot(page, "dashboard.png", tmp_path)


def test_recent_tries_filter_by_job_and_link_to_the_run_and_its_log_in_the_airflow_ui(delivered_server, page):
    server, delivered = delivered_server
    open_dashboard(page, server)
    options = page.evaluate("[...document.querySelectorAll('#job-filter option')].map(o => [o.value, o.text])")
    assert options == [
        ["", "All jobs"],
        *sorted(([dag, f"{name} ({dag})"] for dag, name in DISPLAY_NAMES.items()), key=lambda o: o[1].casefold()),
    ]

    page.evaluate(
        f"(() => {{ const select = document.getElementById('job-filter'); select.value = '{FAILING_DAG}';"
        " select.dispatchEvent(new Event('change')); })()"
    )
    page.wait_for(f"document.getElementById('runs').dataset.dagId === '{FAILING_DAG}'")
    [row] = page.evaluate(TRIES_TABLE)
    assert (row["job"], row["try"], row["state"]) == (DISPLAY_NAMES[FAILING_DAG], "try 1 · log", "failed")

    run_id = delivered.summaries[FAILING_DAG]["run_id"]
    run_url = f"{server.url}/dags/{FAILING_DAG}/runs/{quote(run_id, safe='')}"
    assert row["links"] == [run_url, f"{run_url}/tasks/publish?try_number=1"]
    assert row["run"] == run_id

    # The log link opens Airflow's own task-try page (its UI routes, served by the same API server).
    page.call("Page.navigate", url=row["links"][1])
    page.wait_for(f"document.body && document.body.innerText.includes({json.dumps(DISPLAY_NAMES[FAILING_DAG])})")
    assert page.evaluate("location.pathname").endswith("/tasks/publish")


def test_the_airflow_ui_shows_the_dashboard_from_its_navigation(delivered_server, page, tmp_path):
    server, _ = delivered_server
    page.call("Network.setCookie", name="_token", value=server.token("viewer"), url=f"{server.url}/")
    page.call("Page.enable")
    page.call("Page.navigate", url=f"{server.url}/plugin/pstt")

    # The frame's document may still be loading (no body yet) when first looked at: wait for the page's own
    # ready mark, each step optional, instead of reading a body that is not there.
    frame = "document.querySelector('iframe[src$=\"/pstt/\"]')"
    page.wait_for(f"{frame}?.contentDocument?.body?.dataset.ready === 'true'", limit_s=180)
    sent = page.evaluate(f"{frame}.contentDocument.querySelector('[data-field=messages_sent]').textContent")
    assert sent == "25"
    names = page.evaluate(
        f"[...{frame}.contentDocument.querySelectorAll('#runs td[data-col=job]')].map(c => c.textContent)"
    )
    assert sorted(names) == sorted(DISPLAY_NAMES.values())
    assert "Browse" in page.evaluate("document.body.innerText")
    save_screenshot(page, "dashboard-in-airflow.png", tmp_path)


def test_the_airflow_ui_home_page_shows_no_plugin_import_error(delivered_server, page, tmp_path):
    server, _ = delivered_server
    page.call("Network.setCookie", name="_token", value=server.token("admin"), url=f"{server.url}/")
    page.call("Page.enable")
    page.call("Page.navigate", url=f"{server.url}/")

    # The home page has rendered its health section (metadatabase, scheduler, ...) once it names them.
    text = page.wait_for("document.body?.innerText.includes('MetaDatabase') && document.body.innerText", limit_s=180)
    save_screenshot(page, "airflow-home.png", tmp_path)
    assert "Plugin Import Error" not in text
    assert "Import Error" not in text


def save_screenshot(page: DevTools, name: str, tmp_path: Path) -> None:
    screenshot = Path(os.environ.get("PSTT_SCREENSHOT_DIR", tmp_path)) / name
    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000

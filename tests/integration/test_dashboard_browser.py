"""
The dashboard in real headless Chromium (Debian's package, installed by scripts/chromium.sh) against a
real API server fed by two real DAG runs, driven over the DevTools protocol: the Airflow session is the
``_token`` cookie the UI itself uses.

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
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ROOT, new_topic
from pstt_api_server import (
    FAILING_DAG,
    OK_DAG,
    UNWRITABLE_TOPIC_CONFIG,
    ApiServer,
    Delivered,
    deliver_two_runs,
    migrate,
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
def delivered_server(tmp_path_factory, kafka_bootstrap) -> Iterator[tuple[ApiServer, Delivered]]:
    home = tmp_path_factory.mktemp("pstt-dashboard-home")
    migrate(home)
    delivered = deliver_two_runs(
        home, new_topic(kafka_bootstrap), new_topic(kafka_bootstrap, config=UNWRITABLE_TOPIC_CONFIG)
    )
    server = ApiServer(home)
    server.start()
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


def test_dashboard_renders_the_runs_charts_and_connection_status(delivered_server, page, tmp_path):
    server, delivered = delivered_server
    page.call("Network.enable")
    page.call("Network.setCookie", name="_token", value=server.token("admin"), url=f"{server.url}/")
    page.call("Page.enable")
    page.call("Page.navigate", url=f"{server.url}/pstt/")

    state = page.wait_for(
        "document.body && ['ready', 'error'].includes(document.body.dataset.state) && document.body.dataset.state"
    )
    assert state == "ready", page.evaluate("document.getElementById('problem').textContent")

    cards = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#summary [data-field]')]"
        ".map(e => [e.dataset.field, e.textContent]))"
    )
    assert cards["messages_sent"] == "25"
    assert cards["messages_failed"] == "5"
    assert cards["success_rate"] == "83.33%"
    assert cards["total_bytes"] == f"{delivered.summaries[OK_DAG]['bytes']:,}"
    assert cards["runs"] == "2 (1)"

    connection = page.evaluate(
        "(() => { const li = document.querySelector('#connections li[data-conn-id=\"kafka_default\"]');"
        " return {reachable: li.dataset.reachable, dot: li.querySelector('.dot').className, text: li.textContent}; })()"
    )
    assert connection["reachable"] == "true" and connection["dot"] == "dot up"
    assert page.evaluate("document.getElementById('overall').textContent") == "healthy"

    charts = page.evaluate(
        "['messages-chart', 'latency-chart'].map(id => { const chart = Chart.getChart(id);"
        " return {type: chart.config.type, width: chart.width, datasets: chart.data.datasets.map(d =>"
        " ({label: d.label, total: d.data.reduce((a, b) => a + (b || 0), 0),"
        " points: d.data.filter(v => v).length}))}; })"
    )
    messages, latency = charts
    assert messages["type"] == "bar" and messages["width"] > 100
    assert {d["label"]: d["total"] for d in messages["datasets"]} == {"sent": 25, "failed": 5}
    assert latency["type"] == "line" and latency["width"] > 100
    assert [d["label"] for d in latency["datasets"]] == ["p50", "p99"]
    assert all(d["points"] >= 1 and d["total"] > 0 for d in latency["datasets"])

    runs = page.evaluate(
        "[...document.querySelectorAll('#runs tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
    )
    by_dag = {row[1]: row for row in runs}
    assert by_dag[OK_DAG][3:8] == [delivered.topic_a, "25", "25", "0", "success"]
    assert by_dag[FAILING_DAG][3:8] == [delivered.topic_b, "5", "0", "5", "failed"]

    page.evaluate("document.querySelector('#test-form button').click()")
    result = page.wait_for(
        "document.getElementById('test-result').textContent.includes('connected in')"
        " && document.getElementById('test-result').textContent"
    )
    assert result.startswith("kafka_default: connected in")

    save_screenshot(page, "dashboard.png", tmp_path)


def test_the_airflow_ui_shows_the_dashboard_from_its_navigation(delivered_server, page, tmp_path):
    server, _ = delivered_server
    page.call("Network.setCookie", name="_token", value=server.token("viewer"), url=f"{server.url}/")
    page.call("Page.enable")
    page.call("Page.navigate", url=f"{server.url}/plugin/pstt")

    frame = "document.querySelector('iframe[src$=\"/pstt/\"]')"
    page.wait_for(f"{frame} && {frame}.contentDocument.body.dataset.state === 'ready'")
    sent = page.evaluate(f"{frame}.contentDocument.querySelector('[data-field=messages_sent]').textContent")
    assert sent == "25"
    assert "Browse" in page.evaluate("document.body.innerText")
    save_screenshot(page, "dashboard-in-airflow.png", tmp_path)


def save_screenshot(page: DevTools, name: str, tmp_path: Path) -> None:
    screenshot = Path(os.environ.get("PSTT_SCREENSHOT_DIR", tmp_path)) / name
    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000

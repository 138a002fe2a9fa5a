"""
`make demo`: the demo job end to end, through Airflow, on the local broker.

Builds the SQLite demo database, prepares Airflow's metadata DB (.cache/airflow), runs the DAG that the
factory builds from dags/jobs/demo_traces.json with `airflow dags test` (the real operator, real
connections, the day-before template), then reads a few messages back from Kafka and prints the run's
delivery summary: the operator's `pstt_delivery` XCom.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AIRFLOW = [str(ROOT / "scripts" / "airflow.sh"), "run"]
DAG_ID = "pstt_demo_traces"
TOPIC = "pstt-demo-traces"
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.update(
    shlex.split(line)[1].split("=", 1)
    for line in subprocess.run(
        [str(ROOT / "scripts" / "airflow.sh"), "env"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
)

import demo_db  # noqa: E402


def main() -> None:
    db_path = Path(os.environ["PSTT_DEMO_DB"])
    print(f"demo database: {db_path} ({demo_db.build(db_path)} traces)")
    airflow_home = Path(os.environ["AIRFLOW_HOME"])
    airflow_home.mkdir(parents=True, exist_ok=True)
    log = airflow_home / "demo-dags-test.log"
    print("Airflow metadata DB: migrating (first run takes a minute) ...", flush=True)
    quiet(["db", "migrate"], log)
    check = subprocess.run(
        [sys.executable, "-m", "pstt_provider.cli", "validate"], capture_output=True, text=True, cwd=ROOT
    )
    print(f"job specs: {check.stdout.strip().splitlines()[-1] if check.stdout.strip() else check.stderr.strip()}")
    print(f"running {DAG_ID} with `airflow dags test` (log: {log}) ...", flush=True)
    ran = quiet(["dags", "test", DAG_ID], log, check=False)
    summary = delivery_summary()
    if summary is None:
        sys.exit(f"demo failed: no delivery summary for {DAG_ID}; see {log}")
    print_last_messages(3)
    print_summary(summary)
    if ran.returncode != 0 or summary["state"] != "success":
        sys.exit(f"demo failed: the run ended {summary['state']}; see {log}")
    print("\nOpen the Airflow UI with the jobs loaded: make up")


def quiet(args: list[str], log: Path, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    """An airflow command with its (long) output appended to ``log`` instead of the terminal."""
    with log.open("a") as out:
        result = subprocess.run([*AIRFLOW, *args], stdout=out, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    if check and result.returncode != 0:
        sys.exit(f"`airflow {' '.join(args)}` failed; see {log}")
    return result


def delivery_summary() -> dict[str, Any] | None:
    """The newest ``pstt_delivery`` XCom of the demo DAG, read from Airflow's metadata DB."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(
            select(XComModel.value)
            .where(XComModel.dag_id == DAG_ID, XComModel.key == "pstt_delivery")
            .order_by(XComModel.timestamp.desc())
            .limit(1)
        ).first()
        return XComModel.deserialize_value(row) if row else None


def print_last_messages(count: int) -> None:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": "pstt-demo-reader"})
    _, high = consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10)
    consumer.assign([TopicPartition(TOPIC, 0, max(0, high - count))])
    print(f"\nlast {count} messages in {TOPIC}:")
    for message in consumer.consume(num_messages=count, timeout=10):
        print(f"  key={message.key().decode()} value={message.value().decode()}")
    consumer.close()


def print_summary(summary: dict[str, Any]) -> None:
    latency = summary.get("latency_ms", {})
    print(f"\ndelivery summary of {summary['dag_id']} / {summary['run_id']} (try {summary['try_number']}):")
    print(f"  state:    {summary['state']}")
    print(f"  topic:    {summary['topic']} ({summary['delivery']})")
    print(
        f"  rows:     {summary['rows']} read, {summary['messages_sent']} sent, "
        f"{summary['messages_failed']} failed, {summary['messages_skipped']} skipped"
    )
    print(f"  bytes:    {summary['bytes']}  duration: {summary['duration_s']} s")
    if latency:
        print(f"  latency:  avg {latency['avg']} ms, p50 {latency['p50']} ms, p99 {latency['p99']} ms")
    for error in summary.get("errors", []):
        print(f"  error:    {error}")


if __name__ == "__main__":
    main()

"""
How long the DAG files take to parse per job spec: 1,000 generated specs (JSON and YAML, 10 query files,
some with folder defaults) parsed through a DagBag exactly as the DAG processor does. Target: < 5 ms/spec.

Prints ms/spec and writes benchmarks/results/factory_parse.json. Imports are excluded (warmed up once on
an empty jobs folder): what is measured is what grows with the number of specs. The target is judged on
CPU time: wall time on a shared 2-core machine also counts the time other processes hold the cores.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "benchmarks" / "results" / "factory_parse.json"
SPECS = 1_000
QUERIES = 10
REPEATS = 3
TARGET_MS = 5.0


def generate(folder: Path) -> None:
    """SPECS specs over QUERIES query files, a third in YAML, a third in a folder with _defaults.json."""
    queries = folder / "queries"
    jobs = folder / "jobs"
    queries.mkdir()
    (jobs / "team").mkdir(parents=True)
    (jobs / "team" / "_defaults.json").write_text(
        json.dumps({"timezone": "Europe/Rome", "email_notification": {"recipients": ["ops@example.com"]}})
    )
    for number in range(QUERIES):
        (queries / f"BENCH-{number:03d}--Query.sql").write_text(
            "define DATA='2026-01-20'  --Obbligatorio: Giorno\n"
            "define STATO='%'  --Opzionale: Stato\n"
            "SELECT BARCODE, TRKDATE FROM EXPORT_TABLE WHERE TRKDATE = '&DATA' AND STATUS LIKE '&STATO';\n"
        )
    for number in range(SPECS):
        spec = {
            "name": f"Bench {number}",
            "query": f"BENCH-{number % QUERIES:03d}--Query.sql",
            "connection": "pstt_demo_sqlite",
            "scheduling_mode": "cron",
            "cron": f"{number % 60} {number % 24} * * *",
            "max_retries": 2,
            "retry_delay": 60,
            "timeout": 600,
            "parameters": {"DATA": "{date-1}", "STATO": "OK"},
            "kafka_config": {"enabled": True, "topic": f"bench-{number}", "message_key_field": "BARCODE"},
            "email_notification": {"enabled": True, "on_failure": True, "recipients": ["a@example.com"]},
        }
        if number % 3 == 0:
            import yaml

            (jobs / f"bench_{number:04d}.yaml").write_text(yaml.safe_dump(spec))
        elif number % 3 == 1:
            del spec["email_notification"]["recipients"]
            (jobs / "team" / f"bench_{number:04d}.json").write_text(json.dumps(spec))
        else:
            (jobs / f"bench_{number:04d}.json").write_text(json.dumps(spec))


def parse_seconds(dag_file: Path) -> tuple[float, float, int, dict[str, str]]:
    """Wall and CPU seconds of one DagBag fill (CPU is the steadier figure on a shared machine)."""
    from airflow.dag_processing.dagbag import DagBag

    wall, cpu = time.perf_counter(), time.process_time()
    bag = DagBag(dag_folder=dag_file)
    return time.perf_counter() - wall, time.process_time() - cpu, len(bag.dags), bag.import_errors


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pstt-bench-") as temp:
        folder = Path(temp)
        os.environ["AIRFLOW_HOME"] = str(folder / "airflow")
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        os.environ["PSTT_QUERIES_DIR"] = str(folder / "queries")
        (folder / "empty").mkdir()
        os.environ["PSTT_JOBS_DIR"] = str(folder / "empty")
        generate(folder)
        build_file = ROOT / "dags" / "pstt_jobs.py"
        check_file = ROOT / "dags" / "pstt_jobs_validation.py"
        parse_seconds(build_file)
        parse_seconds(check_file)
        os.environ["PSTT_JOBS_DIR"] = str(folder / "jobs")
        build_runs, check_runs, build_cpu, check_cpu = [], [], [], []
        for _ in range(REPEATS):
            wall, cpu, dags, errors = parse_seconds(build_file)
            if dags != SPECS or errors:
                sys.exit(f"expected {SPECS} DAGs and no import error, got {dags} and {errors}")
            build_runs.append(wall)
            build_cpu.append(cpu)
            wall, cpu, _, errors = parse_seconds(check_file)
            if errors:
                sys.exit(f"the validation file reported {errors}")
            check_runs.append(wall)
            check_cpu.append(cpu)
    build_ms = statistics.median(build_runs) * 1000 / SPECS
    check_ms = statistics.median(check_runs) * 1000 / SPECS
    cpu_ms = (statistics.median(build_cpu) + statistics.median(check_cpu)) * 1000 / SPECS
    result = {
        "benchmark": "factory_parse",
        "specs": SPECS,
        "query_files": QUERIES,
        "repeats": REPEATS,
        "dag_file_ms_per_spec": round(build_ms, 3),
        "validation_file_ms_per_spec": round(check_ms, 3),
        "total_ms_per_spec": round(build_ms + check_ms, 3),
        "total_cpu_ms_per_spec": round(cpu_ms, 3),
        "dag_file_seconds": [round(value, 3) for value in build_runs],
        "validation_file_seconds": [round(value, 3) for value in check_runs],
        "target_ms_per_spec": TARGET_MS,
        "within_target": cpu_ms < TARGET_MS,
        "python": sys.version.split()[0],
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"factory parse: {build_ms:.2f} ms/spec building DAGs (pstt_jobs.py) + {check_ms:.2f} ms/spec validating "
        f"(pstt_jobs_validation.py) = {build_ms + check_ms:.2f} ms/spec ({cpu_ms:.2f} ms CPU) for {SPECS} specs "
        f"(target < {TARGET_MS:g}) -> {RESULT.relative_to(ROOT)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

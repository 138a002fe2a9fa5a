"""
The published results: results/latest.json, results/latest.md, results/latest.png and docs/performance.md.

Everything in docs/performance.md is generated from the JSON, so the page never disagrees with the run it shows.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import psycopg
from source import PG

PSTT = ("pstt_at_least_once", "pstt_exactly_once")
ALTERNATIVES = ("airflow_produce_async", "airflow_produce_sync", "seed_kafka_python")
TARGETS = {"pstt_at_least_once": 0.6, "pstt_exactly_once": 0.5}
# Variants whose target is a ratio to another pstt variant of the same run: (that variant, least ratio).
RELATIVE_TARGETS = {"pstt_exactly_once_checkpointed": ("pstt_exactly_once", 0.85)}
RSS_TOLERANCE = 1.15
FACTORY_MS_PER_SPEC = 5.0
# benchmarks/factory_parse.py's figure: building the DAGs plus the validation DAG file, per spec.
FACTORY_FIGURE = "total_ms_per_spec"
ROOT = Path(__file__).resolve().parent.parent
# Hand-written reading of the profile, appended to docs/performance.md as it is.
ANALYSIS = Path(__file__).resolve().parent / "analysis.md"


def machine() -> str:
    """CPU, memory and the versions of everything on the data path, as one line."""
    import confluent_kafka

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or platform.machine(),
    )
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    with psycopg.connect(**PG) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
    jars = sorted((ROOT / ".cache" / "kafka" / "lib").glob("kafka_2.13-*.jar"))
    kafka_version = jars[0].stem.split("-", 1)[1] if jars else "unknown"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} vCPU, {mem_kb / 1024 / 1024:.0f} GiB RAM, Linux {platform.release()}; "
        f"Python {platform.python_version()}, PostgreSQL {pg_version}, "
        f"Apache Kafka {kafka_version} (one local broker), "
        f"confluent-kafka {confluent_kafka.version()} / librdkafka {confluent_kafka.libversion()[0]}; "
        f"load average at start {load}"
    )


def _by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in document["results"]}


def _delivery_cell(result: dict[str, Any]) -> str:
    delivered, rows = result["delivered"], result["rows"]
    if delivered == rows:
        return f"{delivered:,} (all)"
    if delivered < rows:
        return f"{delivered:,} (LOST {rows - delivered:,})"
    return f"{delivered:,} (DUPLICATES {delivered - rows:,})"


def markdown_table(document: dict[str, Any]) -> str:
    lines = [
        "| variant | rows | rows/s | MB/s | bytes/msg | peak RSS MB | CPU µs/row | busy cores | delivered | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in document["results"]:
        note = r.get("note", "")
        if r["name"] == "fetch_only":
            note = "; ".join(filter(None, [note, "MB/s counts each row as its JSON size"]))
        lines.append(
            f"| {r['name']} | {r['rows']:,} | {r['rows_per_s']:,.0f} | {r['mb_per_s']:.1f} | {r['bytes_per_row']:.0f} "
            f"| {r['peak_rss_mb']:.0f} | {r['cpu_s'] / max(r['rows'], 1) * 1e6:.1f} | {r['machine_busy_cores']:.2f} "
            f"| {_delivery_cell(r)} | {note} |"
        )
    return "\n".join(lines) + "\n"


def ratios(document: dict[str, Any]) -> list[tuple[str, float | None, str]]:
    """(what, value, verdict) for every target and comparison the issue asks for; None when not measured."""
    results = {name: r for name, r in _by_name(document).items() if r["rows_per_s"] > 0}
    rows: list[tuple[str, float | None, str]] = []
    limits = [results[n]["rows_per_s"] for n in ("fetch_only", "produce_only") if n in results]
    limit = min(limits) if len(limits) == 2 else None
    for name in PSTT:
        if name not in results:
            continue
        speed = results[name]["rows_per_s"]
        target = TARGETS[name]
        value = speed / limit if limit else None
        verdict = "not measured" if value is None else ("meets" if value >= target else "MISSES") + f" >= {target}"
        rows.append((f"{name} / min(fetch_only, produce_only)", value, verdict))
    rows.extend(_relative_targets(document, results))
    if limit:
        rows.extend(_cpu_bounds(document, results, limit))
    for name in PSTT:
        for other in ALTERNATIVES:
            if name in results and other in results:
                rows.append((f"{name} / {other}", results[name]["rows_per_s"] / results[other]["rows_per_s"], ""))
    scaling = document.get("rss_scaling")
    if scaling:
        value = scaling["peak_rss_mb"][1] / scaling["peak_rss_mb"][0]
        verdict = ("meets" if value <= RSS_TOLERANCE else "MISSES") + f" <= {RSS_TOLERANCE}"
        rows.append((f"pstt peak RSS at {scaling['multiplier']} x N / at N", value, verdict))
    factory = document.get("factory_parse")
    if factory and FACTORY_FIGURE in factory:
        value = float(factory[FACTORY_FIGURE])
        verdict = ("meets" if value < FACTORY_MS_PER_SPEC else "MISSES") + f" < {FACTORY_MS_PER_SPEC} ms"
        rows.append(("DAG-factory parse, ms per spec (both DAG files)", value, verdict))
        if "total_cpu_ms_per_spec" in factory:
            rows.append(("DAG-factory parse, CPU ms per spec (both DAG files)", factory["total_cpu_ms_per_spec"], ""))
    lost = [r["name"] for r in document["results"] if r["delivered"] != r["rows"]]
    rows.append(("variants whose delivered count differs from rows", float(len(lost)), ", ".join(lost) or "none"))
    return rows


def _relative_targets(
    document: dict[str, Any], results: dict[str, dict[str, Any]]
) -> list[tuple[str, float | None, str]]:
    """RELATIVE_TARGETS of the variants that ran; not measured when either side of the ratio failed."""
    rows: list[tuple[str, float | None, str]] = []
    ran = _by_name(document)
    for name, (base, target) in RELATIVE_TARGETS.items():
        if name not in ran:
            continue
        value = results[name]["rows_per_s"] / results[base]["rows_per_s"] if {name, base} <= results.keys() else None
        verdict = "not measured" if value is None else ("meets" if value >= target else "MISSES") + f" >= {target}"
        rows.append((f"{name} / {base}", value, verdict))
    return rows


def _cpu_bounds(
    document: dict[str, Any], results: dict[str, dict[str, Any]], limit: float
) -> list[tuple[str, float | None, str]]:
    """The ceilings the machine's CPU and the interpreter's lock put on the PSTT runs, as ratios to ``limit``."""
    bounds: list[tuple[str, float | None, str]] = []
    fetch, produce = results["fetch_only"], results["produce_only"]
    cores = document.get("cores") or os.cpu_count() or 1
    # Machine CPU seconds per row of each limit (its process, PostgreSQL or the broker, and any other load).
    per_row = fetch["machine_busy_cores"] / fetch["rows_per_s"] + produce["machine_busy_cores"] / produce["rows_per_s"]
    bounds.append(
        (
            "CPU bound: fetching and producing each row on this machine's cores, no encoding, / min(A, B)",
            cores / per_row / limit,
            "ceiling for any operator here",
        )
    )
    # The operator reads on one thread and encodes and produces on another, but both hold one interpreter's
    # lock for nearly all of that work: the reading costs what fetch_only's process spends per row.
    for name in PSTT:
        if name in results and results[name]["main_thread_cpu_s"] > 0:
            run = results[name]
            per_row = fetch["cpu_s"] / fetch["rows"] + run["main_thread_cpu_s"] / run["rows"]
            bounds.append(
                (
                    f"interpreter bound of {name}: fetch_only's CPU per row (its reading thread) plus its own "
                    "main thread's (encoding, producing), one at a time under the GIL, / min(A, B)",
                    1 / per_row / limit,
                    "ceiling for this code in one process",
                )
            )
    # What the operator's own run cost the machine per row, were that work spread perfectly over every core.
    for name in PSTT:
        if name in results and results[name]["machine_busy_cores"] > 0:
            run = results[name]
            bounds.append(
                (
                    f"CPU bound of {name}'s own work: the machine CPU its run took per row (its process, "
                    f"PostgreSQL, the broker) spread over all {cores} cores, / min(A, B)",
                    cores * run["rows_per_s"] / run["machine_busy_cores"] / limit,
                    "ceiling for this code here, however parallel",
                )
            )
    return bounds


def ratios_table(document: dict[str, Any]) -> str:
    lines = ["| measure | value | target |", "|---|---:|---|"]
    for what, value, verdict in ratios(document):
        shown = "-" if value is None else (f"{value:.0f}" if what.startswith("variants") else f"{value:.2f}")
        lines.append(f"| {what} | {shown} | {verdict} |")
    return "\n".join(lines) + "\n"


def chart(document: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = document["results"]
    names = [r["name"] for r in results][::-1]
    speeds = [r["rows_per_s"] for r in results][::-1]
    rss = [r["peak_rss_mb"] for r in results][::-1]
    pstt = (*PSTT, *RELATIVE_TARGETS)
    colors = [
        "#d62728" if n in pstt else ("#7f7f7f" if n in ("fetch_only", "produce_only") else "#1f77b4") for n in names
    ]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 0.55 * len(names) + 1.6), sharey=True)
    left.barh(names, speeds, color=colors)
    left.set_xlabel("rows per second (higher is better)")
    for y, value in enumerate(speeds):
        left.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    left.set_xlim(0, max(speeds) * 1.25)
    right.barh(names, rss, color=colors)
    right.set_xlabel("peak RSS, MB (lower is better)")
    for y, value in enumerate(rss):
        right.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
    right.set_xlim(0, max(rss) * 1.25)
    figure.suptitle(f"pstt-provider benchmark, N = {document['rows']:,} rows (grey: limits, red: pstt)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def performance_doc(document: dict[str, Any]) -> str:
    n = document["rows"]
    scaling = document.get("rss_scaling")
    factory = document.get("factory_parse")
    parts = [
        "# Performance",
        "",
        "<!-- Generated by `make bench` (benchmarks/report.py) from benchmarks/results/latest.json: edit those, "
        "not this page. -->",
        "",
        f"Latest run: **N = {n:,} rows**, on {document['machine']}.",
        f"The whole run took {document.get('wall_clock_s', 0) / 60:.0f} minutes.",
        "",
        "![benchmark chart](../benchmarks/results/latest.png)",
        "",
        markdown_table(document),
        "## Targets and ratios",
        "",
        ratios_table(document),
    ]
    if scaling:
        parts += [
            f"Memory: pstt_at_least_once peaked at {scaling['peak_rss_mb'][0]:.0f} MB on {scaling['rows'][0]:,} rows "
            f"and at {scaling['peak_rss_mb'][1]:.0f} MB on {scaling['rows'][1]:,} rows "
            f"({scaling['rows_per_s'][1]:,.0f} rows/s, delivered {scaling['delivered'][1]:,}). "
            "Sampled once a second, its resident memory over the second half of each run had a median of "
            f"{scaling['second_half_median_rss_mb'][0]:.0f} MB and {scaling['second_half_median_rss_mb'][1]:.0f} MB"
            + (
                ": flat in the number of rows."
                if scaling["second_half_median_rss_mb"][1] <= scaling["second_half_median_rss_mb"][0] * RSS_TOLERANCE
                else ": it grows with the number of rows."
            ),
            "",
        ]
    else:
        parts += ["Memory at 10 x N was not measured in this run (BENCH_RSS_MULTIPLIER).", ""]
    if factory is None:
        parts += ["DAG-factory parse time was not measured in this run (benchmarks/factory_parse.py is absent).", ""]
    elif "error" in factory:
        parts += [f"DAG-factory parse benchmark failed: `{factory['error']}`", ""]
    else:
        parts += [
            f"DAG-factory parse ({factory.get('specs', '?')} generated specs through a DagBag, "
            "`benchmarks/factory_parse.py`): "
            f"{factory.get('dag_file_ms_per_spec', '?')} ms per spec building the DAGs + "
            f"{factory.get('validation_file_ms_per_spec', '?')} ms per spec for the validation DAG file = "
            f"{factory.get(FACTORY_FIGURE, '?')} ms per spec"
            + (f" ({factory['total_cpu_ms_per_spec']} ms of CPU)." if "total_cpu_ms_per_spec" in factory else "."),
            "",
        ]
    config = ", ".join(f"`{k}={v}`" for k, v in document.get("producer_config", {}).items())
    parts += [
        "## What each variant does",
        "",
        f"Source: a PostgreSQL table of N shipment traces shaped like the seed's (BARCODE, its primary key, TRKDATE, "
        f"ARRIVETIMESTAMP, STATUS and eight more columns of text, dates, integers, decimals, a boolean and a nullable "
        f"text; "
        f"{document.get('row_json_bytes', 0):.0f} bytes per row as JSON), built by `generate_series` and reused "
        f"across runs. Every producing variant writes to a fresh topic of {document.get('partitions', 3)} partitions "
        f"on the same broker, with the same producer settings where the client has them ({config}), is timed from "
        "opening its connections to its last acknowledged message, runs in its own process (peak RSS is that "
        "process's own high-water mark `VmHWM`, Python and Airflow imports included; not `ru_maxrss`, which Linux "
        "carries over `exec` from the parent that started it), and is verified by reading its topic back "
        "with a read_committed consumer (the delivered column).",
        "",
        "- `fetch_only` (limit A): the rows read exactly as the operator reads them (its `stream_query`: a "
        "server-side cursor, `fetchmany` of 5,000, over a connection from the Airflow hook) and discarded. Every "
        "variant below that reads the table reads it the same way.",
        "- `produce_only` (limit B): confluent-kafka `produce()` of messages serialised before the clock starts "
        "by pstt's own encoder (the table's first 10,000 rows, cycled), `poll()` every 1,000 messages, one "
        "`flush()`, delivery reports for failed messages only: the fastest producer that still notices a loss.",
        "- `pstt_at_least_once`, `pstt_exactly_once`: `SqlToKafkaOperator.execute()` with a minimal task context.",
        "- `pstt_exactly_once_checkpointed`: `pstt_exactly_once` with `checkpoint_rows=100_000` and `order_by` the "
        "primary key: it reads the table in key order (through the key's index) and every 100,000 rows commits its "
        "transaction with the job's position in the compacted topic `pstt-state`, then begins the next.",
        "- `airflow_produce_async` / `airflow_produce_sync`: the Kafka provider's `ProduceToTopicOperator` with a "
        "`producer_function` that streams the same cursor and serialises each row with `json.dumps(default=str)` "
        "into the same envelope; `synchronous=False` / the default `synchronous=True` (a flush after every message). "
        "Its default delivery callback logs every message at INFO, as it does in a real task.",
        "- `seed_kafka_python`: the seed tool's loop: kafka-python-ng `send()` per row and `flush()` every 100 rows "
        "(batch_size=100), same serialisation. kafka-python-ng has no idempotent producer; acks, linger and "
        "compression match.",
        "",
        f"`fetch_only`, `produce_only` and the pstt variants ran {document.get('repeat', 1)} time(s), interleaved, "
        "and the table shows each one's median run by speed (a run that lost messages would be shown instead); "
        "every run's rows/s is in latest.json (`rows_per_s_runs`). "
        "The other variants ran once.",
        "",
        "Columns: CPU µs/row is the variant process's own CPU (all its threads, librdkafka's included) per row; "
        "busy cores is how many of the machine's cores were busy on average while it ran (every process: the "
        "variant, the broker, PostgreSQL and anything else running), so a value near the core count means the run "
        "was bound by the machine's CPU, not by the variant's own code.",
        "",
        "Run it: `make bench` (N from `BENCH_ROWS`, default 1,000,000; see `benchmarks/run.py` for the other knobs). "
        "`benchmarks/run.py --profile pstt_at_least_once` prints a cProfile of the operator's run.",
        "",
    ]
    if ANALYSIS.exists():
        parts += [ANALYSIS.read_text()]
    return "\n".join(parts)


def publish(document: dict[str, Any], results_dir: Path, doc_path: Path) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    (results_dir / "latest.md").write_text(markdown_table(document) + "\n" + ratios_table(document))
    chart(document, results_dir / "latest.png")
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    doc_path.write_text(performance_doc(document))

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
PARALLEL = ("pstt_parallel_2", "pstt_parallel_4")
ALTERNATIVES = ("airflow_produce_async", "airflow_produce_sync", "seed_kafka_python")
TARGETS = {"pstt_at_least_once": 0.6, "pstt_exactly_once": 0.5}
# The fastest pstt variant of the run, whichever it is (parallel ones included), against min(fetch_only, produce_only).
BEST_PSTT_TARGET = 0.6
# Variants whose target is a ratio to another pstt variant of the same run: (that variant, least ratio).
RELATIVE_TARGETS = {
    "pstt_exactly_once_checkpointed": ("pstt_exactly_once", 0.85),
    # The seed job's spec through the factory: within 10 % of the operator's own at_least_once run.
    "pstt_seed_spec": ("pstt_at_least_once", 0.9),
    # The metadata as 7 headers instead of the envelope: confluent-kafka converts the header list for each message.
    "pstt_headers": ("pstt_at_least_once", 0.6),
    # Avro through the compiled encoder (pstt_provider.avro_binary): a few µs a row more than the JSON encoder.
    "pstt_avro": ("pstt_at_least_once", 0.5),
}
# Its messages cycle a pool of 10,000 (benchmarks/variants.py), so its keys repeat by design.
CYCLED_KEYS = ("produce_only",)
# Peer tools: (the figure of theirs compared, what it is called, least ratio of pstt_at_least_once to it).
PEERS = {
    "connect_jdbc_source": ("rows_per_s_from_first_message", "from its first message", 2.0),
    "benthos_sql": ("rows_per_s", "from its start", 4.0),
}
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
    if result.get("skipped"):
        return "-"
    keys = result.get("distinct_keys")
    shown = "" if keys is None or keys == delivered else f", {keys:,} distinct keys"
    if delivered == rows:
        return f"{delivered:,} (all){shown}"
    if delivered < rows:
        return f"{delivered:,} (LOST {rows - delivered:,}){shown}"
    return f"{delivered:,} (DUPLICATES {delivered - rows:,}){shown}"


def _verdict(value: float | None, target: float) -> str:
    """Whether ``value`` reaches ``target``, and by how much it falls short when it does not."""
    if value is None:
        return "not measured"
    if value >= target:
        return f"meets >= {target}"
    return f"MISSES >= {target} by {target - value:.2f} ({(1 - value / target) * 100:.0f} % short)"


def markdown_table(document: dict[str, Any]) -> str:
    lines = [
        "| variant | rows | rows/s | MB/s | bytes/msg | peak RSS MB | CPU µs/row | busy cores | delivered | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in document["results"]:
        note = r.get("note", "")
        if "order_breaks" in r:
            order = (
                "rows in table order per partition"
                if r["order_breaks"] == 0
                else f"rows OUT OF table order: {r['order_breaks']:,} breaks"
            )
            note = "; ".join(filter(None, [note, order]))
        if "first_message_s" in r:
            note = "; ".join(
                filter(
                    None,
                    [
                        note,
                        f"first message after {r['first_message_s']:.1f} s, "
                        f"{r['rows_per_s_from_first_message']:,.0f} rows/s from it",
                    ],
                )
            )
        if r["name"] == "fetch_only":
            note = "; ".join(filter(None, [note, "MB/s counts each row as its JSON size"]))
        if r["name"] in CYCLED_KEYS:
            note = "; ".join(filter(None, [note, "its keys cycle a pool of 10,000 messages"]))
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
        rows.append((f"{name} / min(fetch_only, produce_only)", value, _verdict(value, target)))
    rows.extend(_parallel(results, limit))
    rows.extend(_relative_targets(document, results))
    rows.extend(_peers(document, results))
    if limit:
        rows.extend(_cpu_bounds(document, results, limit))
    for name in PSTT:
        for other in ALTERNATIVES:
            if name in results and other in results:
                rows.append((f"{name} / {other}", results[name]["rows_per_s"] / results[other]["rows_per_s"], ""))
    scaling = document.get("rss_scaling")
    if scaling:
        value = scaling["peak_rss_mb"][1] / scaling["peak_rss_mb"][0]
        verdict = (
            f"meets <= {RSS_TOLERANCE}"
            if value <= RSS_TOLERANCE
            else f"MISSES <= {RSS_TOLERANCE} by {value - RSS_TOLERANCE:.2f}"
        )
        rows.append((f"pstt peak RSS at {scaling['multiplier']} x N / at N", value, verdict))
    factory = document.get("factory_parse")
    if factory and FACTORY_FIGURE in factory:
        value = float(factory[FACTORY_FIGURE])
        verdict = (
            f"meets < {FACTORY_MS_PER_SPEC} ms"
            if value < FACTORY_MS_PER_SPEC
            else f"MISSES < {FACTORY_MS_PER_SPEC} ms by {value - FACTORY_MS_PER_SPEC:.2f} ms"
        )
        rows.append(("DAG-factory parse, ms per spec (both DAG files)", value, verdict))
        if "total_cpu_ms_per_spec" in factory:
            rows.append(("DAG-factory parse, CPU ms per spec (both DAG files)", factory["total_cpu_ms_per_spec"], ""))
    lost = [
        r["name"]
        for r in document["results"]
        if r["delivered"] != r["rows"]
        or (r["name"] not in CYCLED_KEYS and r.get("distinct_keys", r["delivered"]) != r["delivered"])
    ]
    rows.append(
        (
            "variants whose delivered count (or distinct keys) differs from rows",
            float(len(lost)),
            ", ".join(lost) or "none",
        )
    )
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
        rows.append((f"{name} / {base}", value, _verdict(value, target)))
    return rows


def _parallel(results: dict[str, dict[str, Any]], limit: float | None) -> list[tuple[str, float | None, str]]:
    """The parallel runs against the limits and the one-process run, and the best pstt variant against its target."""
    rows: list[tuple[str, float | None, str]] = []
    base = results.get("pstt_at_least_once")
    for name in PARALLEL:
        if name not in results:
            continue
        speed = results[name]["rows_per_s"]
        if limit:
            rows.append((f"{name} / min(fetch_only, produce_only)", speed / limit, ""))
        if base:
            rows.append((f"{name} / pstt_at_least_once", speed / base["rows_per_s"], ""))
    pstt = [n for n in (*PSTT, *PARALLEL, *RELATIVE_TARGETS) if n in results]
    if limit and pstt:
        best = max(pstt, key=lambda n: results[n]["rows_per_s"])
        value = results[best]["rows_per_s"] / limit
        rows.append((f"best pstt variant ({best}) / min(fetch_only, produce_only)", value, _verdict(value, 0.6)))
    return rows


def _peers(document: dict[str, Any], results: dict[str, dict[str, Any]]) -> list[tuple[str, float | None, str]]:
    """pstt_at_least_once against each peer tool that ran; a skipped or failed peer says so."""
    rows: list[tuple[str, float | None, str]] = []
    ran = _by_name(document)
    base = results.get("pstt_at_least_once")
    for name, (figure, described, target) in PEERS.items():
        if name not in ran:
            continue
        if name not in results or not base:
            why = ran[name].get("note", "") if name not in results else "pstt_at_least_once did not run"
            rows.append((f"pstt_at_least_once / {name} ({described})", None, f"not measured: {why}"[:160]))
            continue
        value = base["rows_per_s"] / results[name][figure]
        rows.append((f"pstt_at_least_once / {name} ({described})", value, _verdict(value, target)))
        if figure != "rows_per_s":
            value = base["rows_per_s"] / results[name]["rows_per_s"]
            rows.append((f"pstt_at_least_once / {name} (from the tool's start)", value, ""))
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

    results = [r for r in document["results"] if not r.get("skipped")]
    names = [r["name"] for r in results][::-1]
    speeds = [r["rows_per_s"] for r in results][::-1]
    rss = [r["peak_rss_mb"] for r in results][::-1]
    pstt = (*PSTT, *PARALLEL, *RELATIVE_TARGETS)
    palette = {**dict.fromkeys(pstt, "#d62728"), **dict.fromkeys(PEERS, "#ff7f0e")}
    palette.update({"fetch_only": "#7f7f7f", "produce_only": "#7f7f7f"})
    colors = [palette.get(n, "#1f77b4") for n in names]
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
    figure.suptitle(
        f"pstt-provider benchmark, N = {document['rows']:,} rows (grey: limits, red: pstt, orange: peer tools)",
        fontsize=10,
    )
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
        f"text, and TRACE_ID, a bigint in the table's physical order with an index of its own, the parallel "
        f"variants' split column; "
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
        "- `pstt_seed_spec`: `pstt_at_least_once` with the seed job's `kafka_config` "
        "(tests/fixtures/specs/seed/export_cdg_tracce.json) read by the DAG factory's model: key, metadata, "
        "delivery, null_key and producer_config as the factory passes them (its batch_size is accepted and unused).",
        "- `pstt_headers`: `pstt_at_least_once` with `metadata='headers'`: the value is the row object alone, the "
        "run's seven metadata fields go as `pstt-*` headers of every message.",
        "- `pstt_avro`: `pstt_at_least_once` with `value_format='avro'`: the value schema derived from the cursor "
        "(decimal, date and local-timestamp-micros logical types, nullable unions) and registered once in the local "
        "Schema Registry (scripts/schema-registry.sh, AxonOps Schema Registry), each row encoded by the compiled "
        "encoder of pstt_provider.avro_binary in the Confluent wire format, the metadata envelope a second record "
        "after the row's.",
        "- `pstt_parallel_2`, `pstt_parallel_4`: a parallel run as a DAG makes it: `SplitRangesOperator` plans 2 or 4 "
        "ranges of TRACE_ID (BARCODE, the key, is text, which a split cannot divide), then one "
        "`SqlToKafkaOperator(split_range=...)` per range, at_least_once, each in an OS process of its own with its "
        "own task context (map_index = its part), all started together once imported. Timed from the first part's "
        "start to the last one's end (the plan, about 0.1 s, not included); rows, CPU and peak RSS are the parts' "
        "sums.",
        "- `connect_jdbc_source`: Apache Kafka Connect standalone at the broker's version with Aiven's JDBC source "
        "connector 6.11.0 (built from source by benchmarks/peers/connect_jdbc.sh), bulk mode, "
        "`batch.max.rows=1000`, `defaultRowFetchSize=10000`, JSON without schemas, the key BARCODE (ValueToKey + "
        "ExtractField), pstt's acks, idempotence, linger and compression. Bulk mode never ends, so it is timed until "
        "the topic's end offsets reach N, from the worker's start (a JVM starting) and from its first message "
        "(the ratio's figure), then stopped.",
        "- `benthos_sql`: Benthos v4.27.0 (built by benchmarks/peers/benthos.sh with only the io, kafka, pure and "
        "sql/base components and lib/pq): `sql_raw` (postgres) into `kafka_franz`, batches of 1,000, the key "
        "BARCODE, pstt's compression and linger (as the batching period); franz-go's idempotent producer "
        "(acks=all); timed from its start until the topic holds N.",
        "- Peer tools whose build is absent are skipped (their row says so): `make bench-peers` builds both.",
        "",
        "`fetch_only`, `produce_only`, the pstt variants and the peer tools ran "
        f"{document.get('repeat', 1)} time(s), interleaved, "
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

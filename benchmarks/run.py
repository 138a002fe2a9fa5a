"""
``make bench``: every variant over the same PostgreSQL table and broker, one process each, then the report.

Environment: BENCH_ROWS (default 1,000,000), BENCH_RSS_MULTIPLIER (10; 0 skips the large pstt run),
BENCH_SYNC_ROWS (airflow_produce_sync, default 20,000), BENCH_SEED_ROWS (seed_kafka_python, default 200,000),
BENCH_REPEAT (3: rounds of fetch_only, produce_only, the pstt variants and the peer tools, the median run reported),
BENCH_PARTITIONS (3), BENCH_BOOTSTRAP (127.0.0.1:9092).
``make bench-peers`` builds the peer tools (connect_jdbc_source, benthos_sql), which are skipped when absent.
``--only a,b`` runs just those variants (no 10 x N run, no factory parse) and writes .cache/bench/partial.json,
leaving the published results alone;
``--profile NAME`` runs one variant under cProfile and prints where its time goes.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import peer_tools
import report
import settings
import source
import topics

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
VARIANTS = (
    "fetch_only",
    "produce_only",
    "pstt_at_least_once",
    "pstt_exactly_once",
    "pstt_exactly_once_checkpointed",
    "airflow_produce_async",
    "airflow_produce_sync",
    "seed_kafka_python",
    "pstt_seed_spec",
    "pstt_headers",
    "pstt_avro",
    "pstt_parallel_2",
    "pstt_parallel_4",
    "connect_jdbc_source",
    "benthos_sql",
)
VARIANT_TIMEOUT_S = 4 * 3600
# Run BENCH_REPEAT times, interleaved, because the targets are ratios between them; the others run once.
REPEATED = (
    "fetch_only",
    "produce_only",
    "pstt_at_least_once",
    "pstt_exactly_once",
    "pstt_exactly_once_checkpointed",
    "pstt_seed_spec",
    "pstt_headers",
    "pstt_avro",
    "pstt_parallel_2",
    "pstt_parallel_4",
    # The peers too: a ratio of one of their runs to a median of pstt's would depend on the load of that moment.
    "connect_jdbc_source",
    "benthos_sql",
)
# The peer tools' runs are read back also for the order of the rows: the table's physical order is its TRACE_ID.
ORDER_CHECKED = ("connect_jdbc_source", "benthos_sql")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").replace("_", "").replace(",", "")
    return int(value) if value else default


def _variant_rows(name: str, rows: int) -> tuple[int, str]:
    """The row count a variant runs on, and the note that says so when it is smaller than N."""
    limits = {
        "airflow_produce_sync": ("BENCH_SYNC_ROWS", 20_000, "flushes after every message"),
        "seed_kafka_python": ("BENCH_SEED_ROWS", 200_000, "pure-Python client"),
    }
    if name not in limits:
        return rows, ""
    env, default, why = limits[name]
    smaller = min(rows, _env_int(env, default))
    return smaller, (f"first {smaller:,} rows only ({why}; {env})" if smaller < rows else "")


def run_variant(
    name: str, rows: int, table: source.SourceTable, row_json_bytes: float, workdir: Path, profile: Path | None = None
) -> dict[str, Any]:
    """One variant in its own process, on a fresh topic that is read back and deleted afterwards."""
    unavailable = peer_tools.missing(name)
    if unavailable:
        print(f"bench: {name} skipped: {unavailable}", flush=True)
        return _skipped_result(name, unavailable)
    partitions = _env_int("BENCH_PARTITIONS", 3)
    topic = "-" if name == "fetch_only" else topics.create_topic(settings.BOOTSTRAP, name, partitions)
    out = workdir / f"{name}-{rows}.json"
    log = workdir / f"{name}-{rows}.log"
    command = [
        sys.executable,
        str(HERE / "variants.py"),
        name,
        f"--rows={rows}",
        f"--table={table.name}",
        f"--topic={topic}",
        f"--row-json-bytes={row_json_bytes}",
        f"--out={out}",
    ]
    if profile:
        command.append(f"--profile={profile}")
    print(f"bench: {name} on {rows:,} rows ...", flush=True)
    try:
        with log.open("wb") as log_file:
            process = subprocess.Popen(command, env=settings.variant_env(), stdout=log_file, stderr=subprocess.STDOUT)
            rss_samples = _sample_rss(process)
            code = process.returncode
        if code == 0:
            result = json.loads(out.read_text())
            result["rss_samples_mb"] = rss_samples
            log.unlink()
        else:
            result = _failed_result(name, rows, code, log)
        if topic == "-":
            result["delivered"] = result["rows"]
        else:
            _add_read_back(result, topics.read_back(settings.BOOTSTRAP, topic, _order_field(name)))
    finally:
        if topic != "-" and not os.environ.get("BENCH_KEEP_TOPICS"):
            topics.delete_topic(settings.BOOTSTRAP, topic)
    print(
        f"bench: {name}: {result['rows_per_s']:,.0f} rows/s, {result['mb_per_s']} MB/s, "
        f"peak RSS {result['peak_rss_mb']} MB, delivered {result['delivered']:,}/{result['rows']:,}",
        flush=True,
    )
    return result


def _order_field(name: str) -> str | None:
    return source.SPLIT_COLUMN if name in ORDER_CHECKED else None


def _add_read_back(result: dict[str, Any], found: topics.ReadBack) -> None:
    """What the topic holds; for a tool whose own byte count the benchmark cannot see, its size from the topic."""
    result["delivered"] = found.messages
    result["distinct_keys"] = found.distinct_keys
    if found.order_breaks is not None:
        result["order_breaks"] = found.order_breaks
    if not result.get("bytes_per_row") and found.messages and result["seconds"]:
        result["bytes_per_row"] = round(found.bytes / found.messages, 1)
        result["mb_per_s"] = round(found.bytes / result["seconds"] / 1e6, 2)


def _skipped_result(name: str, why: str) -> dict[str, Any]:
    """A peer whose tool is not built: a row in the table that says so, and no figures."""
    return {**_failed_result_fields(name, 0), "delivered": 0, "skipped": True, "note": f"SKIPPED: {why}"}


def _representative(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """
    The median of a variant's runs by speed, unless a run lost or duplicated messages: then that run, so the
    table never hides a delivery problem. Not the fastest: the limits' runs last two seconds, and on a shared
    virtual machine one of them can catch a burst of CPU that the operator's longer runs never see.
    """
    wrong = [r for r in runs if r["delivered"] != r["rows"]]
    chosen = dict(wrong[0] if wrong else sorted(runs, key=lambda r: r["rows_per_s"])[(len(runs) - 1) // 2])
    chosen["rows_per_s_runs"] = [r["rows_per_s"] for r in runs]
    return chosen


def _second_half_median(result: dict[str, Any]) -> float:
    """Typical resident memory once the run is under way: robust to one transient peak of the allocator."""
    samples = result.get("rss_samples_mb") or [result["peak_rss_mb"]]
    return statistics.median(samples[len(samples) // 2 :])


def _sample_rss(process: subprocess.Popen, interval_s: float = 1.0) -> list[float]:
    """The process's resident memory once a second until it exits: shows whether memory plateaus or grows."""
    samples: list[float] = []
    deadline = time.monotonic() + VARIANT_TIMEOUT_S
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            break
        try:
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS:"))
            samples.append(round(int(line.split()[1]) / 1024, 1))
        except (OSError, StopIteration):
            pass
        time.sleep(interval_s)
    return samples


def _failed_result(name: str, rows: int, code: int, log: Path) -> dict[str, Any]:
    """A variant that crashed still gets its row in the table, with its last log line and zero speed."""
    kept = settings.ROOT / ".cache" / "bench" / log.name
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(log.read_bytes())
    lines = [line for line in kept.read_text(errors="replace").splitlines() if line.strip()]
    print(f"bench: {name} FAILED (exit {code}); its log is {kept}", file=sys.stderr, flush=True)
    return {
        **_failed_result_fields(name, rows),
        "note": f"FAILED (exit {code}): {lines[-1][:200] if lines else 'no output'}",
    }


def _failed_result_fields(name: str, rows: int) -> dict[str, Any]:
    """The figures of a variant that did not run to the end: zero speed, every row failed."""
    return {
        "name": name,
        "rows": rows,
        "seconds": 0,
        "rows_per_s": 0,
        "mb_per_s": 0,
        "bytes_per_row": 0,
        "peak_rss_mb": 0,
        "baseline_rss_mb": 0,
        "cpu_s": 0,
        "main_thread_cpu_s": 0,
        "machine_busy_cores": 0,
        "failed": rows,
    }


def run_factory_parse() -> dict[str, Any] | None:
    """The factory engineer's parse benchmark, when it exists; it leaves its figures in results/factory_parse.json."""
    script = HERE / "factory_parse.py"
    if not script.exists():
        return None
    print("bench: factory_parse ...", flush=True)
    result_file = RESULTS / "factory_parse.json"
    result_file.unlink(missing_ok=True)
    completed = subprocess.run(
        [sys.executable, str(script)], env=settings.variant_env(), capture_output=True, text=True, timeout=3600
    )
    if completed.returncode != 0 or not result_file.exists():
        return {"error": f"exit {completed.returncode}: {(completed.stderr or completed.stdout)[-500:]}"}
    print(f"bench: {completed.stdout.strip()}", flush=True)
    return json.loads(result_file.read_text())


def run_all(rows: int, names: Sequence[str], workdir: Path, extras: bool) -> dict[str, Any]:
    """The variants in ``names``; with ``extras`` also pstt's peak RSS at BENCH_RSS_MULTIPLIER x N and factory parse."""
    started = time.time()
    table = source.ensure_table(rows)
    row_json_bytes = source.row_json_bytes(table)
    repeat = max(1, _env_int("BENCH_REPEAT", 3))
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for round_number in range(repeat):
        for name in names:
            if round_number and name not in REPEATED:
                continue
            variant_rows, note = _variant_rows(name, rows)
            result = run_variant(name, variant_rows, table, row_json_bytes, workdir)
            if note:
                result["note"] = note
            runs[name].append(result)
    results = [_representative(runs[name]) for name in names]
    document: dict[str, Any] = {
        "rows": rows,
        "machine": report.machine(),
        "cores": os.cpu_count(),
        "results": results,
        "row_json_bytes": round(row_json_bytes, 1),
        "partitions": _env_int("BENCH_PARTITIONS", 3),
        "repeat": repeat,
        "producer_config": {k: v for k, v in settings.producer_config().items() if k != "bootstrap.servers"},
    }
    multiplier = _env_int("BENCH_RSS_MULTIPLIER", 10)
    base = next((r for r in results if r["name"] == "pstt_at_least_once"), None)
    if extras and multiplier > 1 and base:
        big_rows = rows * multiplier
        big_table = source.ensure_table(big_rows)
        big = run_variant("pstt_at_least_once", big_rows, big_table, row_json_bytes, workdir)
        document["rss_scaling"] = {
            "multiplier": multiplier,
            "rows": [rows, big_rows],
            "peak_rss_mb": [base["peak_rss_mb"], big["peak_rss_mb"]],
            "second_half_median_rss_mb": [_second_half_median(base), _second_half_median(big)],
            "rows_per_s": [base["rows_per_s"], big["rows_per_s"]],
            "delivered": [base["delivered"], big["delivered"]],
        }
    factory = run_factory_parse() if extras else None
    if factory is not None:
        document["factory_parse"] = factory
    document["wall_clock_s"] = round(time.time() - started, 1)
    return document


def profile(name: str, rows: int, workdir: Path) -> None:
    table = source.ensure_table(rows)
    stats_file = workdir / f"{name}.prof"
    variant_rows, _ = _variant_rows(name, rows)
    run_variant(name, variant_rows, table, source.row_json_bytes(table), workdir, profile=stats_file)
    stats = pstats.Stats(str(stats_file))
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(40)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated variants to run (writes .cache/bench/partial.json)")
    parser.add_argument("--profile", choices=VARIANTS, help="run one variant under cProfile")
    args = parser.parse_args()
    rows = _env_int("BENCH_ROWS", 1_000_000)
    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pstt-bench-") as tmp:
        workdir = Path(tmp)
        if args.profile:
            profile(args.profile, rows, workdir)
            return 0
        names = [n.strip() for n in args.only.split(",")] if args.only else list(VARIANTS)
        unknown = sorted(set(names) - set(VARIANTS))
        if unknown:
            parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
        document = run_all(rows, names, workdir, extras=not args.only)
    if args.only:
        partial = settings.ROOT / ".cache" / "bench" / "partial.json"
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(document, indent=2) + "\n")
        print(report.markdown_table(document))
        return 0
    report.publish(document, RESULTS, HERE.parent / "docs" / "performance.md")
    print(report.markdown_table(document))
    print(f"bench: wrote {RESULTS / 'latest.json'}, latest.md, latest.png and docs/performance.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

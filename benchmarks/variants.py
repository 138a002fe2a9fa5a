"""
One benchmark variant, run in a process of its own so that its peak RSS is its own.

``python benchmarks/variants.py NAME --rows N --table T --topic TOPIC --out FILE`` writes one result object to FILE.
The clock runs from just before the variant opens its DB connection or producer to just after its last message
is acknowledged (or its last row fetched): imports and the produce_only payload pool are outside it.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import peer_tools
import settings
import source

FETCH_BATCH = 5_000
SEED_FLUSH_EVERY = 100
POOL_SIZE = 10_000
CHECKPOINT_ROWS = 100_000
ORDER_KEY = "BARCODE"
"""pstt_exactly_once_checkpointed's order_by: the benchmark table's primary key (benchmarks/source.py)."""
# Unique per process: exactly_once keys its transactional id and its run marker on the run id. A parallel
# variant's parts share their parent's, as the mapped tasks of one DAG run do.
RUN_ID = os.environ.get("BENCH_RUN_ID") or f"bench__{uuid.uuid4().hex}"
PART_COMMAND = "part"
"""variants.py part ...: one range of a pstt_parallel_N run, in a process of its own."""
PART_START_TIMEOUT_S = 300.0
SEED_SPEC = settings.ROOT / "tests" / "fixtures" / "specs" / "seed" / "export_cdg_tracce.json"
"""The seed tool's job file; pstt_seed_spec runs the export task the DAG factory makes of its kafka_config."""


@dataclass(frozen=True)
class Job:
    rows: int
    select: str
    topic: str
    row_json_bytes: float


@dataclass(frozen=True)
class Outcome:
    """
    What a variant moved: rows handled and the bytes (key + value) it produced, or fetched as JSON.

    ``measured`` is for a variant whose work runs in other processes (the parallel parts, a peer tool): its own
    clock and CPU figures, which replace those of this process.
    """

    rows: int
    bytes: int
    failed: int = 0
    measured: dict[str, Any] = field(default_factory=dict)


def _metadata(job: Job, system: str) -> dict[str, str]:
    """The seed's message envelope, so every variant's messages have about the same size as pstt's."""
    return {
        "schema_version": "1",
        "system": system,
        "dag_id": "bench",
        "run_id": RUN_ID,
        "task_id": "bench",
        "query": job.select,
        "extracted_at": datetime.now(UTC).isoformat(),
    }


def _stream_rows(job: Job, limit: int | None = None) -> Iterator[tuple[tuple[str, ...], Sequence[Sequence[Any]]]]:
    """
    Batches of rows exactly as the operator reads them: its ``stream_query`` (a server-side cursor for
    PostgreSQL) over a connection from the Airflow hook of the benchmark's connection id.
    """
    from airflow.sdk import BaseHook

    from pstt_provider.dialects import dialect_for
    from pstt_provider.streaming import stream_query

    hook = BaseHook.get_connection(settings.PG_CONN_ID).get_hook()
    dialect = dialect_for(hook, settings.PG_CONN_ID)
    sql = job.select + (f" LIMIT {int(limit)}" if limit else "")
    with stream_query(dialect, hook.get_conn(), sql, {}, fetch_size=FETCH_BATCH, source="bench") as result:
        for batch in result.batches():
            yield result.columns, batch


def fetch_only(job: Job) -> Outcome:
    rows = sum(len(batch) for _, batch in _stream_rows(job))
    return Outcome(rows, round(rows * job.row_json_bytes))


def produce_only(job: Job) -> Outcome:
    """
    The producer alone, as fast as it goes while still noticing failures: produce() of ready payloads,
    poll() every 1,000 messages, one flush, delivery reports for failed messages only.
    """
    from confluent_kafka import Producer

    pool = _PAYLOAD_POOL
    failures = [0]

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures[0] += 1

    producer = Producer({**settings.producer_config(), "on_delivery": on_delivery, "delivery.report.only.error": True})
    produce, poll, topic = producer.produce, producer.poll, job.topic
    size = 0
    for i in range(job.rows):
        key, value = pool[i % len(pool)]
        size += len(key) + len(value)
        while True:
            try:
                produce(topic, value, key)
                break
            except BufferError:
                poll(0.05)
        if i % 1000 == 0:
            poll(0)
    producer.flush()
    return Outcome(job.rows, size, failures[0])


def _operator(job: Job, delivery: str, **arguments: Any) -> Any:
    """The export task of the job; ``arguments`` add to or override the benchmark's (key BARCODE)."""
    from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator

    return SqlToKafkaOperator(
        task_id="bench",
        conn_id=settings.PG_CONN_ID,
        topic=job.topic,
        sql=job.select,
        kafka_config_id=settings.KAFKA_CONN_ID,
        delivery=delivery,
        **{"message_key_field": "BARCODE", **arguments},
    )


def _pstt(job: Job, delivery: str, **arguments: Any) -> tuple[Outcome, dict[str, Any]]:
    """The operator's run of the job, and the result it returns (its delivery summary)."""
    operator = _operator(job, delivery, **arguments)
    result = operator.execute(_context(operator))
    return Outcome(result["messages_sent"], result["bytes"], result["messages_failed"]), result


def pstt_at_least_once(job: Job) -> Outcome:
    return _pstt(job, "at_least_once")[0]


def pstt_exactly_once(job: Job) -> Outcome:
    return _pstt(job, "exactly_once")[0]


def pstt_exactly_once_checkpointed(job: Job) -> Outcome:
    """
    pstt_exactly_once reading in the order of the table's primary key and committing its transaction, with the
    job's position in the state topic, every CHECKPOINT_ROWS rows. It must read every row from the first: RUN_ID
    is new in every process, and the operator resumes only a checkpoint of its own run id, so a run that says it
    started from a stored position (or made fewer checkpoints than its rows call for) fails instead of counting.
    """
    outcome, result = _pstt(job, "exactly_once", checkpoint_rows=CHECKPOINT_ROWS, order_by=[ORDER_KEY])
    expected = max(outcome.rows - 1, 0) // CHECKPOINT_ROWS
    if result["position_before"] is not None or result["checkpoints"] < expected:
        raise RuntimeError(
            f"pstt_exactly_once_checkpointed read after {result['position_before']} with {result['checkpoints']} "
            f"checkpoints (expected none and {expected}): the run did not start from the table's first row"
        )
    return outcome


def pstt_headers(job: Job) -> Outcome:
    """pstt_at_least_once with metadata='headers': the row alone as the value, the run's metadata in 7 headers."""
    return _pstt(job, "at_least_once", metadata="headers")[0]


def pstt_avro(job: Job) -> Outcome:
    """
    pstt_at_least_once with value_format='avro': the schema derived from the cursor and registered once in the
    local Schema Registry (scripts/schema-registry.sh), each row encoded by pstt_provider.avro_binary behind the
    wire header.
    """
    return _pstt(job, "at_least_once", value_format="avro", schema_registry=settings.SCHEMA_REGISTRY_CONN_ID)[0]


def pstt_seed_spec(job: Job) -> Outcome:
    """
    pstt_at_least_once with the seed job's kafka_config as the DAG factory reads it (its model, its defaults):
    key, metadata, delivery, null_key and producer_config. Its batch_size (100) is accepted and unused by
    the factory, so the run differs from pstt_at_least_once only where the spec's values do.
    """
    from pstt_provider.factory.models import KafkaConfig

    kafka = KafkaConfig.model_validate(json.loads(SEED_SPEC.read_text())["kafka_config"])
    arguments = {
        "message_key_field": kafka.message_key_field,
        "metadata": kafka.metadata,
        "null_key": kafka.null_key,
        "producer_config": kafka.producer_config,
    }
    return _pstt(job, kafka.delivery, **arguments)[0]


def _parallel(job: Job, partitions: int) -> Outcome:
    """
    A parallel run as a DAG makes it: SplitRangesOperator plans the ranges of source.SPLIT_COLUMN, then one
    SqlToKafkaOperator per range (at_least_once, map_index = its part) in a process of its own, all started at
    once. Each part imports and builds its operator, says it is ready and waits; the parts start together, and
    the variant's time runs from the first part's start to the last part's end (the plan and the imports outside
    it, as they are for the other variants).
    """
    from pstt_provider.operators.split_ranges import SplitRangesOperator

    planner = SplitRangesOperator(
        task_id="bench_split",
        conn_id=settings.PG_CONN_ID,
        split_by=source.SPLIT_COLUMN,
        partitions=partitions,
        sql=job.select,
    )
    plan_started = time.perf_counter()
    ranges = planner.execute(_context(planner))
    plan_s = time.perf_counter() - plan_started
    with tempfile.TemporaryDirectory(prefix="pstt-bench-parts-") as tmp:
        parts = [_start_part(job, index, split_range, Path(tmp)) for index, split_range in enumerate(ranges)]
        for process, out, log in parts:
            _await_file(out.with_suffix(".ready"), process, log)
        for process, _, _ in parts:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            process.stdin.close()
        for process, _, log in parts:
            if process.wait() != 0:
                raise RuntimeError(f"a pstt_parallel part failed (exit {process.returncode}): {_tail(log)}")
        results = [json.loads(out.read_text()) for _, out, _ in parts]
    started, ended = min(r["started"] for r in results), max(r["ended"] for r in results)
    seconds = ended - started
    busy = max(r["busy_end"] for r in results) - min(r["busy_start"] for r in results)
    return Outcome(
        sum(r["rows"] for r in results),
        sum(r["bytes"] for r in results),
        sum(r["failed"] for r in results),
        measured={
            "seconds": seconds,
            "cpu_s": sum(r["cpu_s"] for r in results),
            "main_thread_cpu_s": sum(r["main_thread_cpu_s"] for r in results),
            "peak_rss_mb": sum(r["peak_rss_mb"] for r in results),
            "machine_busy_cores": busy / seconds,
            "plan_s": round(plan_s, 3),
            "parts": [
                {"rows": r["rows"], "seconds": round(r["ended"] - r["started"], 3), "peak_rss_mb": r["peak_rss_mb"]}
                for r in results
            ],
            "note": f"{len(results)} processes; peak RSS is their sum; plan {plan_s * 1000:.0f} ms not timed",
        },
    )


def _start_part(
    job: Job, index: int, split_range: dict[str, Any], workdir: Path
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, log = workdir / f"part-{index}.json", workdir / f"part-{index}.log"
    command = [
        sys.executable,
        __file__,
        PART_COMMAND,
        f"--map-index={index}",
        f"--split-range={json.dumps(split_range)}",
        f"--select={job.select}",
        f"--topic={job.topic}",
        f"--out={out}",
    ]
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "BENCH_RUN_ID": RUN_ID},
        )
    return process, out, log


def _await_file(path: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until a part has written ``path``; a part that exits or takes too long fails the variant with its log."""
    deadline = time.monotonic() + PART_START_TIMEOUT_S
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"a pstt_parallel part did not start (exit {process.poll()}): {_tail(log)}")
        time.sleep(0.02)


def _tail(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def pstt_parallel_2(job: Job) -> Outcome:
    return _parallel(job, 2)


def pstt_parallel_4(job: Job) -> Outcome:
    return _parallel(job, 4)


def part_main(argv: Sequence[str]) -> None:
    """One part of a parallel run: ready once imported and built, then the range's export when told to go."""
    parser = argparse.ArgumentParser(prog=f"variants.py {PART_COMMAND}")
    parser.add_argument("--map-index", type=int, required=True)
    parser.add_argument("--split-range", type=json.loads, required=True)
    parser.add_argument("--select", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    importlib.import_module("airflow.providers.postgres.hooks.postgres")
    job = Job(0, args.select, args.topic, 0.0)
    operator = _operator(job, "at_least_once", split_range=args.split_range)
    context = _context(operator, map_index=args.map_index)
    args.out.with_suffix(".ready").touch()
    sys.stdin.readline()
    cpu_before, busy_before, thread_before = _cpu_s(), _machine_busy_s(), time.thread_time()
    started = time.monotonic()
    result = operator.execute(context)
    ended = time.monotonic()
    part = {
        "rows": result["messages_sent"],
        "bytes": result["bytes"],
        "failed": result["messages_failed"],
        "started": started,
        "ended": ended,
        "cpu_s": _cpu_s() - cpu_before,
        "main_thread_cpu_s": time.thread_time() - thread_before,
        "busy_start": busy_before,
        "busy_end": _machine_busy_s(),
        "peak_rss_mb": round(_memory_mb("VmHWM"), 1),
    }
    args.out.write_text(json.dumps(part))


def connect_jdbc_source(job: Job) -> Outcome:
    """Kafka Connect standalone with Aiven's JDBC source connector (benchmarks/peer_tools.py)."""
    rows, measured = peer_tools.connect_jdbc_source(job.select, job.topic, job.rows)
    return Outcome(rows, 0, measured=measured)


def benthos_sql(job: Job) -> Outcome:
    """Benthos sql_raw into kafka_franz (benchmarks/peer_tools.py)."""
    rows, measured = peer_tools.benthos_sql(job.select, job.topic, job.rows)
    return Outcome(rows, 0, measured=measured)


def _json_messages(job: Job, system: str, counter: list[int], limit: int | None = None) -> Iterator[tuple[str, bytes]]:
    """
    Rows as (key, JSON value) the way a hand-written producer function does it: stdlib json, default=str.
    ``counter`` accumulates [rows, bytes].
    """
    metadata = _metadata(job, system)
    dumps = json.dumps
    for columns, batch in _stream_rows(job, limit):
        key_index = columns.index("BARCODE")
        for row in batch:
            value = dumps({"data": dict(zip(columns, row, strict=True)), "metadata": metadata}, default=str).encode()
            key = row[key_index]
            counter[0] += 1
            counter[1] += len(key) + len(value)
            yield key, value


def _airflow(job: Job, synchronous: bool) -> Outcome:
    from airflow.providers.apache.kafka.operators.produce import ProduceToTopicOperator

    counter = [0, 0]
    operator = ProduceToTopicOperator(
        task_id="bench",
        topic=job.topic,
        kafka_config_id=settings.KAFKA_CONN_ID,
        producer_function=_json_messages,
        producer_function_args=(job, "airflow", counter, job.rows),
        synchronous=synchronous,
    )
    operator.execute(_context(operator))
    return Outcome(counter[0], counter[1])


def airflow_produce_async(job: Job) -> Outcome:
    return _airflow(job, synchronous=False)


def airflow_produce_sync(job: Job) -> Outcome:
    return _airflow(job, synchronous=True)


def seed_kafka_python(job: Job) -> Outcome:
    """The seed tool's loop: kafka-python-ng send() per row, flush() every batch_size=100 rows."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**settings.kafka_python_config())
    counter = [0, 0]
    pending = []
    failed = 0
    for key, value in _json_messages(job, "PSTT_Tool", counter, job.rows):
        pending.append(producer.send(job.topic, key=key.encode(), value=value))
        if len(pending) == SEED_FLUSH_EVERY:
            producer.flush()
            failed += sum(1 for future in pending if future.failed())
            pending.clear()
    producer.flush()
    failed += sum(1 for future in pending if future.failed())
    producer.close()
    return Outcome(counter[0], counter[1], failed)


VARIANTS: dict[str, Callable[[Job], Outcome]] = {
    "fetch_only": fetch_only,
    "produce_only": produce_only,
    "pstt_at_least_once": pstt_at_least_once,
    "pstt_exactly_once": pstt_exactly_once,
    "pstt_exactly_once_checkpointed": pstt_exactly_once_checkpointed,
    "airflow_produce_async": airflow_produce_async,
    "airflow_produce_sync": airflow_produce_sync,
    "seed_kafka_python": seed_kafka_python,
    "pstt_seed_spec": pstt_seed_spec,
    "pstt_headers": pstt_headers,
    "pstt_avro": pstt_avro,
    "pstt_parallel_2": pstt_parallel_2,
    "pstt_parallel_4": pstt_parallel_4,
    "connect_jdbc_source": connect_jdbc_source,
    "benthos_sql": benthos_sql,
}


# Imported before the clock starts, like Airflow's own imports: the clock measures work, not module loading.
_PREIMPORTS: dict[str, tuple[str, ...]] = {
    "fetch_only": ("airflow.providers.postgres.hooks.postgres",),
    "produce_only": ("airflow.providers.postgres.hooks.postgres", "confluent_kafka.admin"),
    "pstt_at_least_once": ("pstt_provider.operators.sql_to_kafka", "airflow.providers.postgres.hooks.postgres"),
    "pstt_exactly_once": ("pstt_provider.operators.sql_to_kafka", "airflow.providers.postgres.hooks.postgres"),
    "pstt_exactly_once_checkpointed": (
        "pstt_provider.operators.sql_to_kafka",
        "airflow.providers.postgres.hooks.postgres",
    ),
    "airflow_produce_async": (
        "airflow.providers.apache.kafka.operators.produce",
        "airflow.providers.postgres.hooks.postgres",
    ),
    "airflow_produce_sync": (
        "airflow.providers.apache.kafka.operators.produce",
        "airflow.providers.postgres.hooks.postgres",
    ),
    "seed_kafka_python": ("kafka", "airflow.providers.postgres.hooks.postgres"),
    "pstt_seed_spec": (
        "pstt_provider.operators.sql_to_kafka",
        "pstt_provider.factory.models",
        "airflow.providers.postgres.hooks.postgres",
    ),
    "pstt_headers": ("pstt_provider.operators.sql_to_kafka", "airflow.providers.postgres.hooks.postgres"),
    "pstt_avro": (
        "pstt_provider.operators.sql_to_kafka",
        "pstt_provider.hooks.schema_registry",
        "confluent_kafka.schema_registry",
        "airflow.providers.postgres.hooks.postgres",
    ),
    "pstt_parallel_2": ("pstt_provider.operators.split_ranges", "airflow.providers.postgres.hooks.postgres"),
    "pstt_parallel_4": ("pstt_provider.operators.split_ranges", "airflow.providers.postgres.hooks.postgres"),
}


def _context(operator: Any, map_index: int = -1) -> dict[str, Any]:
    """The smallest task context an operator's execute() reads: ids for metadata and an XCom sink."""
    ti = _TaskInstance(operator.task_id, map_index)
    return {
        "ti": ti,
        "task_instance": ti,
        "run_id": RUN_ID,
    }


class _TaskInstance:
    """Collects XComs in memory: the benchmark has no metadata DB and needs none."""

    def __init__(self, task_id: str, map_index: int = -1) -> None:
        self.task_id = task_id
        self.dag_id = "bench"
        self.run_id = RUN_ID
        self.try_number = 1
        self.map_index = map_index
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def _payload_pool(job: Job) -> list[tuple[bytes, bytes]]:
    """Messages serialised before the clock starts by pstt's own encoder, over the table's first rows."""
    from pstt_provider.serialization import RowEncoder, build_metadata

    metadata = build_metadata(
        dag_id="bench", run_id=RUN_ID, task_id="bench", query="<inline sql>", extracted_at=datetime.now(UTC)
    )
    pool = []
    for columns, batch in _stream_rows(job, POOL_SIZE):
        encode = RowEncoder(columns, metadata).encode
        key_index = columns.index("BARCODE")
        pool.extend((row[key_index].encode(), encode(row)) for row in batch)
    return pool


def _cpu_s() -> float:
    """User + system CPU of this process, all threads (librdkafka's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy (every process: broker, PostgreSQL, anyone else) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _memory_mb(field: str) -> float:
    """
    A memory figure of this process from /proc/self/status: ``VmRSS`` now, ``VmHWM`` its peak.

    The peak is VmHWM rather than ``getrusage().ru_maxrss``: Linux carries ru_maxrss over ``exec`` from the
    forked parent, so a variant started by a large orchestrator would report the orchestrator's size.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


_PAYLOAD_POOL: list[tuple[bytes, bytes]] = []


def main() -> None:
    global _PAYLOAD_POOL
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(VARIANTS))
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--row-json-bytes", type=float, required=True, help="mean size of a row as JSON")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the clocked part here")
    args = parser.parse_args()

    job = Job(args.rows, f"SELECT * FROM {args.table}", args.topic, args.row_json_bytes)
    variant = VARIANTS[args.name]
    for module in _PREIMPORTS.get(args.name, ()):
        importlib.import_module(module)
    if args.name == "produce_only":
        _PAYLOAD_POOL = _payload_pool(job)

    baseline_rss = _memory_mb("VmRSS")
    profiler = cProfile.Profile() if args.profile else None
    cpu_before = _cpu_s()
    busy_before = _machine_busy_s()
    thread_before = time.thread_time()
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    outcome = variant(job)
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - started
    cpu = _cpu_s() - cpu_before
    main_thread = time.thread_time() - thread_before
    busy_cores = (_machine_busy_s() - busy_before) / elapsed
    if profiler:
        profiler.dump_stats(args.profile)
    measured = dict(outcome.measured)
    elapsed = measured.pop("seconds", elapsed)
    cpu = measured.pop("cpu_s", cpu)
    main_thread = measured.pop("main_thread_cpu_s", main_thread)
    busy_cores = measured.pop("machine_busy_cores", busy_cores)
    peak_rss = measured.pop("peak_rss_mb", _memory_mb("VmHWM"))
    result = {
        "name": args.name,
        "rows": outcome.rows,
        "seconds": round(elapsed, 3),
        "rows_per_s": round(outcome.rows / elapsed, 1),
        "mb_per_s": round(outcome.bytes / elapsed / 1e6, 2),
        "bytes_per_row": round(outcome.bytes / outcome.rows, 1) if outcome.rows else 0,
        "peak_rss_mb": round(peak_rss, 1),
        "baseline_rss_mb": round(baseline_rss, 1),
        "cpu_s": round(cpu, 2),
        "main_thread_cpu_s": round(main_thread, 2),
        "machine_busy_cores": round(busy_cores, 2),
        "failed": outcome.failed,
        **measured,
    }
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    if sys.argv[1:2] == [PART_COMMAND]:
        part_main(sys.argv[2:])
    else:
        main()

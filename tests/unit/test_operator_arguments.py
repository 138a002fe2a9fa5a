from __future__ import annotations

import pytest

from pstt_provider.dialects.oracle import OracleDialect
from pstt_provider.exceptions import MessageKeyError
from pstt_provider.operators.oracle_to_kafka import OracleToKafkaOperator
from pstt_provider.operators.sql_to_kafka import SqlToKafkaOperator
from pstt_provider.publisher import key_index
from pstt_provider.query_file import QueryParameterError, parse_query_text
from pstt_provider.transactions import transactional_id

QUERY = (
    "define DATA='2026-01-20' --Obbligatorio: data\n"
    "define STATO= --Obbligatorio: stato\n"
    "define LIMITE='10' --Opzionale: limite\n"
    "SELECT * FROM T WHERE D = '&DATA' AND S = :STATO AND ROWNUM <= &LIMITE"
)


def make(**kwargs) -> SqlToKafkaOperator:
    kwargs.setdefault("sql", "SELECT 1 AS id")
    return SqlToKafkaOperator(task_id="publish", conn_id="db", topic="t", message_key_field="id", **kwargs)


def test_parameters_override_query_file_defaults_matched_case_insensitively():
    values = parse_query_text(QUERY).bind_values({"stato": "OK", "Data": "2026-02-01"})

    assert values == {"DATA": "2026-02-01", "STATO": "OK", "LIMITE": "10"}


def test_a_required_parameter_without_value_is_named():
    with pytest.raises(QueryParameterError, match=r"no value for required parameter.*STATO"):
        parse_query_text(QUERY).bind_values({})


def test_a_parameter_the_query_does_not_use_is_an_error_listing_the_known_ones():
    with pytest.raises(QueryParameterError, match=r"STATUS not used by the query \(it knows: DATA, STATO, LIMITE\)"):
        parse_query_text(QUERY).bind_values({"STATUS": "x", "STATO": "y"})


def test_the_key_column_matches_exactly_then_case_insensitively():
    assert key_index(("ID", "id", "X"), "id") == 1
    assert key_index(("ID", "TRKCODE"), "trkcode") == 1


def test_a_missing_key_column_names_the_columns_present():
    with pytest.raises(MessageKeyError, match="'id' is not in the query result; columns present: A, B"):
        key_index(("A", "B"), "id")


def test_duplicate_column_names_are_refused_because_a_message_could_hold_only_one():
    with pytest.raises(MessageKeyError, match=r"duplicate column name.*CODE"):
        key_index(("id", "CODE", "CODE"), "id")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sql": None}, "exactly one of sql or sql_file"),
        ({"sql_file": "q.sql"}, "exactly one of sql or sql_file"),
        ({"delivery": "at_most_once"}, "delivery must be one of at_least_once, exactly_once"),
        ({"null_key": "drop"}, "null_key must be one of fail, null, skip"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_sql_parameters_and_topic_are_templated_and_sql_is_never_read_as_a_template_file():
    assert set(SqlToKafkaOperator.template_fields) == {"sql", "parameters", "topic"}
    assert SqlToKafkaOperator.template_ext == ()


def test_oracle_operator_defaults_to_the_oracle_connection_and_large_fetches():
    operator = OracleToKafkaOperator(task_id="p", sql="SELECT 1 AS ID FROM DUAL", topic="t", message_key_field="ID")

    assert (operator.conn_id, operator.batch_size) == ("oracle_default", None)
    assert OracleDialect.fetch_size == 10_000  # what None means on an Oracle connection


def test_transactional_id_is_stable_per_run_and_differs_between_runs_tasks_and_map_indexes():
    base = transactional_id("dag", "task", "run1")

    assert base == transactional_id("dag", "task", "run1")
    assert (
        len(
            {
                base,
                transactional_id("dag", "task", "run2"),
                transactional_id("dag", "task2", "run1"),
                transactional_id("dag", "task", "run1", 3),
            }
        )
        == 4
    )

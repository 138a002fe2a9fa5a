"""
docs/grafana/pstt-dashboard.json queries only what the Prometheus endpoint renders.

Grafana shows "No data" for a misspelt metric or label instead of failing, so every PromQL expression of the
dashboard (panel targets and template variable queries) is read with a small tokenizer and checked against a real
exposition: the collector fed sample tries, rendered by prometheus_client as the endpoint renders it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import ROOT
from helpers.summaries import tried
from prometheus_client.parser import text_string_to_metric_families

from pstt_provider.metrics.kafka_health import ConnectionHealth
from pstt_provider.metrics.prometheus import exposition

DASHBOARD = ROOT / "docs" / "grafana" / "pstt-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

# PromQL's functions and aggregations (those a dashboard plausibly uses), keywords and grouping modifiers. A word
# list reads best as words, hence str.split.
FUNCTIONS = frozenset(
    "abs absent absent_over_time avg avg_over_time bottomk ceil changes clamp clamp_max clamp_min count "  # noqa: SIM905
    "count_over_time count_values delta deriv exp floor group histogram_quantile idelta increase irate label_join "
    "label_replace last_over_time ln log10 log2 max max_over_time min min_over_time predict_linear quantile "
    "quantile_over_time rate resets round scalar sgn sort sort_desc sqrt stddev stdvar sum sum_over_time time "
    "timestamp topk vector".split()
)
KEYWORDS = frozenset("and or unless bool offset inf nan".split())  # noqa: SIM905
GROUPING = frozenset("by without on ignoring group_left group_right".split())  # noqa: SIM905
MATCHER_OPS = frozenset(("=", "!=", "=~", "!~"))
TOKEN = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    |(?P<variable>\$\{[^}]*\}|\$\w+)
    |(?P<duration>(?:\d+(?:ms|[smhdwy]))+\b)
    |(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<ident>[A-Za-z_:][\w:]*)
    |(?P<op>=~|!~|!=|==|>=|<=|[-+*/%^=<>(){}\[\],:@])
    |(?P<space>\s+)
    |(?P<other>.)
    """,
    re.VERBOSE,
)
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(?P<selector>.*),)?\s*(?P<label>\w+)\s*\)\s*$", re.DOTALL)


@dataclass
class Selector:
    metric: str
    matchers: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class Query:
    selectors: list[Selector] = field(default_factory=list)
    named: set[str] = field(default_factory=set)
    """Labels named outside matchers: in by/without/on/ignoring/group_* clauses, or as label_values' label."""

    @property
    def labels(self) -> set[str]:
        return self.named.union(*(selector.matchers for selector in self.selectors))


def tokens(expr: str) -> list[tuple[str, str]]:
    found = []
    for match in TOKEN.finditer(expr):
        kind = match.lastgroup or "other"
        if kind == "other":
            raise ValueError(f"unexpected {match.group()!r} in {expr!r}")
        if kind != "space":
            found.append((kind, match.group()))
    return found


def matchers(items: list[tuple[str, str]], start: int) -> tuple[dict[str, tuple[str, str]], int]:
    """The ``label op "value"`` triples from the ``{`` at ``start``, and the index after its ``}``."""
    found, index = {}, start + 1
    while items[index][1] != "}":
        if items[index][1] == ",":
            index += 1
            continue
        (_, label), (_, op), (_, value) = items[index : index + 3]
        assert op in MATCHER_OPS, f"not a label matcher: {label} {op} {value}"
        found[label] = (op, value.strip("\"'`"))
        index += 3
    return found, index + 1


def closing(items: list[tuple[str, str]], start: int, close: str) -> int:
    return next(index for index in range(start, len(items)) if items[index][1] == close)


def parse(expr: str) -> Query:
    """Metric selectors and grouping labels of a PromQL expression, past functions, numbers, ranges and strings."""
    query, items, index = Query(), tokens(expr), 0
    while index < len(items):
        kind, text = items[index]
        following = items[index + 1][1] if index + 1 < len(items) else ""
        if text == "[":  # a range or subquery: durations and Grafana's $__interval variables
            index = closing(items, index, "]") + 1
        elif kind == "ident" and text in GROUPING and following == "(":
            end = closing(items, index, ")")
            query.named.update(label for kind, label in items[index + 2 : end] if kind == "ident")
            index = end + 1
        elif kind == "ident" and text not in FUNCTIONS | KEYWORDS | GROUPING:
            selector = Selector(text)
            query.selectors.append(selector)
            index += 1
            if following == "{":
                selector.matchers, index = matchers(items, index)
        else:
            index += 1
    return query


def parse_variable(query: str) -> Query:
    """A Grafana variable query: ``label_values(selector, label)`` names a label besides its PromQL selector."""
    label_values = LABEL_VALUES.match(query)
    if not label_values:
        return parse(query)
    parsed = parse(label_values["selector"] or "")
    parsed.named.add(label_values["label"])
    return parsed


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    return [inner for panel in dashboard["panels"] for inner in (panel, *panel.get("panels", ()))]


def target_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", ())]


def variable_queries(dashboard: dict[str, Any]) -> list[str]:
    queries = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            queries.append(query["query"] if isinstance(query, dict) else query)
    return queries


def queries(dashboard: dict[str, Any]) -> list[Query]:
    return [parse(expr) for expr in target_exprs(dashboard)] + [
        parse_variable(query) for query in variable_queries(dashboard)
    ]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


@pytest.fixture(scope="module")
def rendered() -> dict[str, frozenset[str]]:
    """Each series name the endpoint renders (``_total``, ``_bucket``, ...) and the labels it carries."""
    runs = [tried("d1", "a", 2, 0, [2.0, 40.0]), tried("d2", "b", 0, 1, [3.0])]
    health = [ConnectionHealth("kafka_default", True, 1.0, 1, None)]
    text = exposition(lambda: runs, list, lambda: health).decode()
    series: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(labels) for name, labels in series.items()}


def test_the_tokenizer_reads_metric_names_and_labels_past_functions_matchers_ranges_and_grouping():
    query = parse(
        'histogram_quantile(0.99, sum by (le, topic) (rate(m_bucket{topic=~"$topic", x!="a,b}"}[$__rate_interval])))'
        " * 1e3 / on(topic) group_left() (n_total offset 1h > bool 0) or vector(100)"
    )
    assert [(s.metric, s.matchers) for s in query.selectors] == [
        ("m_bucket", {"topic": ("=~", "$topic"), "x": ("!=", "a,b}")}),
        ("n_total", {}),
    ]
    assert query.named == {"le", "topic"}
    variable = parse_variable('label_values(m_total{dag_id=~"$job"}, topic)')
    assert [s.metric for s in variable.selectors] == ["m_total"]
    assert variable.labels == {"dag_id", "topic"}


def test_the_dashboard_charts_sent_failed_latency_tries_connections_and_last_success(dashboard):
    used = {selector.metric for query in queries(dashboard) for selector in query.selectors}
    assert used == {
        "pstt_kafka_messages_sent_total",
        "pstt_kafka_messages_failed_total",
        "pstt_kafka_delivery_latency_seconds_bucket",
        "pstt_kafka_runs_total",
        "pstt_kafka_connection_up",
        "pstt_kafka_last_success_timestamp_seconds",
    }


def test_every_metric_the_dashboard_queries_is_a_series_the_endpoint_renders(dashboard, rendered):
    for query in queries(dashboard):
        for selector in query.selectors:
            assert selector.metric in rendered, f"{selector.metric} is not in the exposition: {sorted(rendered)}"


def test_every_label_the_dashboard_matches_or_groups_by_is_one_the_endpoint_renders(dashboard, rendered):
    known = frozenset().union(*rendered.values())
    for query in queries(dashboard):
        assert query.labels <= known, f"labels {sorted(query.labels - known)} are not in the exposition"
        for selector in query.selectors:
            # A metric the exposition lacks is the previous test's failure: here only its labels count.
            labels = rendered.get(selector.metric, known)
            assert set(selector.matchers) <= labels, f"{selector.metric} has no label {sorted(selector.matchers)}"


def test_every_panel_follows_the_job_and_topic_selection(dashboard, rendered):
    """A panel that forgot a filter would silently show every job while the selection says otherwise."""
    for expr in target_exprs(dashboard):
        for selector in parse(expr).selectors:
            labels = rendered.get(selector.metric, frozenset())
            if "dag_id" in labels:
                assert selector.matchers.get("dag_id") == ("=~", "$job"), expr
            if "topic" in labels:
                assert selector.matchers.get("topic") == ("=~", "$topic"), expr


def test_importing_the_dashboard_asks_for_the_prometheus_datasource(dashboard):
    assert [(i["name"], i["type"], i["pluginId"]) for i in dashboard["__inputs"]] == [
        ("DS_PROMETHEUS", "datasource", "prometheus")
    ]
    queried = [
        *(panel["datasource"] for panel in panels(dashboard)),
        *(target["datasource"] for panel in panels(dashboard) for target in panel.get("targets", ())),
        *(variable["datasource"] for variable in dashboard["templating"]["list"]),
    ]
    assert queried
    assert all(datasource == DATASOURCE for datasource in queried)

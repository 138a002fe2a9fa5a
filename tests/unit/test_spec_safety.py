"""
Hostile and careless specs are refused at validation with file, field and reason; none hides another spec.

Each test is one finding of the adversarial sweep (issue: "Job specs are data, not code"), numbered as there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from test_factory_validation import demo, problems_of, validator, write
from test_factory_validation import jobs as jobs_folder

from pstt_provider.factory.validation import Validator

jobs = pytest.fixture(jobs_folder.__wrapped__, name="jobs")

SECRET_TEMPLATE = "{{ conn.adv_secret.password }}"


def one_problem(jobs: Path, spec: dict[str, Any] | str, name: str = "job.json") -> str:
    found = problems_of(jobs, spec, name)
    assert len(found) == 1, found
    return found[0]


# 1, 5: strings that reach templated fields ----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email_notification": {"enabled": True, "recipients": [SECRET_TEMPLATE + "@example.com"]}}, "recipients.0"),
        (
            {
                "email_notification": {
                    "enabled": True,
                    "recipients": ["ops@example.com"],
                    "from_email": "leak {{ var.value.get('x','novar') }} <a@example.com>",
                }
            },
            "email_notification.from_email",
        ),
        ({"name": "Job " + SECRET_TEMPLATE}, "name"),
        ({"description": "{% for c in conn %}{% endfor %}"}, "description"),
        ({"owner": "{# comment #}"}, "owner"),
        ({"tags": ["ok", "{{ var.value.x }}"]}, "tags.1"),
        ({"kafka_config__message_key_field": "{{ conn.x.password }}"}, "kafka_config.message_key_field"),
    ],
)
def test_jinja_in_any_spec_string_is_refused(jobs: Path, changes: dict[str, Any], field: str) -> None:
    problem = one_problem(jobs, demo(**changes))
    assert problem.split(": ")[1].endswith(field)
    assert "is not allowed: spec text is never a template" in problem or "is not an e-mail address" in problem


@pytest.mark.parametrize(
    "sender", ["ops@example.com\r\nBcc: all@example.com", "PSTT\n<ops@example.com>", "ops@example.com\x00"]
)
def test_a_line_break_in_from_email_is_refused_at_validation(jobs: Path, sender: str) -> None:
    spec = demo(email_notification={"enabled": True, "recipients": ["ops@example.com"], "from_email": sender})
    problem = one_problem(jobs, spec)
    assert problem.startswith("jobs/job.json: email_notification.from_email: must be one line of text")


def test_a_sender_with_a_display_name_is_accepted(jobs: Path) -> None:
    spec = demo(email_notification={"enabled": True, "recipients": ["a@b.it"], "from_email": "PSTT Tool <p@b.it>"})
    assert validator(jobs).validate(write(jobs, "job.json", spec)).spec.email_notification.from_email


# 2, 3: producer_config is tuning only --------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("plugin.library.paths", "/work/queries/evil.so", "loads a library or reads a file on the worker"),
        ("ssl.ca.location", "/etc/ssl/ca.pem", "loads a library or reads a file"),
        ("bootstrap.servers", "127.0.0.1:19092", "addressing and security come from the Airflow Kafka connection"),
        ("security.protocol", "PLAINTEXT", "addressing and security come from the Airflow Kafka connection"),
        ("sasl.username", "other", "addressing and security come from the Airflow Kafka connection"),
        ("sasl.oauthbearer.token.endpoint.url", "http://127.0.0.1:1/", "addressing and security"),
        ("oauthbearer.config", "x", "addressing and security"),
        ("transactional.id", "stolen", "set by pstt itself"),
        ("linger.mss", 5, "did you mean 'linger.ms'?"),
        ("linger.ms", -1, "must be from 0 to 900,000, not -1"),
        ("linger.ms", "5", "must be a whole number"),
        ("acks", 2, "must be one of all, -1, 0, 1"),
        ("enable.idempotence", "yes", "must be true or false"),
    ],
)
def test_producer_config_refuses_all_but_tuning(jobs: Path, key: str, value: Any, reason: str) -> None:
    problem = one_problem(jobs, demo(kafka_config__producer_config={key: value}))
    assert problem.startswith(f"jobs/job.json: kafka_config.producer_config: {key}: ")
    assert reason in problem


def test_producer_config_accepts_documented_tuning(jobs: Path) -> None:
    tuning = {"linger.ms": 50, "compression.type": "zstd", "acks": "all", "batch.size": 65536, "retries": 10}
    config = validator(jobs).validate(write(jobs, "job.json", demo(kafka_config__producer_config=tuning)))
    assert config.spec.kafka_config.producer_config == tuning


def test_acks_one_needs_idempotence_switched_off(jobs: Path) -> None:
    problem = one_problem(jobs, demo(kafka_config__producer_config={"acks": 1}))
    assert "acks: 1 needs enable.idempotence: false" in problem
    spec = demo(kafka_config__producer_config={"acks": 1, "enable.idempotence": False})
    assert validator(jobs).validate(write(jobs, "job.json", spec))


# 7: YAML 1.2 and no coercion -------------------------------------------------------------------------


def test_yaml_scalars_keep_their_text_in_parameters(jobs: Path) -> None:
    (jobs.parent / "queries" / "codes.sql").write_text(
        "define A='x' --Obbligatorio: a\ndefine B='x' --Obbligatorio: b\ndefine C='x' --Obbligatorio: c\n"
        "define D='x' --Obbligatorio: d\nSELECT 1 AS K FROM T WHERE A = :A AND B = :B AND C = :C AND D = :D\n"
    )
    spec = demo(query="codes.sql", parameters={})
    text = json.dumps(spec).replace('"parameters": {}', '"parameters": {"A": NO, "B": 0012, "C": 12:30, "D": 7}')
    config = validator(jobs).validate(write(jobs, "job.yaml", text))
    assert config.spec.parameters == {"A": "NO", "B": "0012", "C": "12:30", "D": "7"}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"parameters": {"DATA": True}},
            "parameters.DATA: a parameter value is text or a number, not true/false: put it in quotes",
        ),
        (
            {"parameters": {"DATA": None}},
            "parameters.DATA: a parameter value is text or a number, not null: give a value or leave the parameter out",
        ),
        ({"kafka_config__batch_size": True}, "kafka_config.batch_size: Input should be a valid integer"),
        ({"max_retries": "3"}, "max_retries: Input should be a valid integer"),
        ({"enabled": "yes"}, "enabled: Input should be a valid boolean"),
    ],
)
def test_booleans_and_text_are_not_coerced(jobs: Path, changes: dict[str, Any], expected: str) -> None:
    assert one_problem(jobs, demo(**changes)) == f"jobs/job.json: {expected}"


def test_yaml_yes_is_text_so_a_boolean_field_refuses_it(jobs: Path) -> None:
    text = json.dumps(demo()).replace('"catchup"', '"x"') + "\n"
    text = text.replace('"enabled": true,\n', "").replace('{"name"', '{"catchup": yes, "name"', 1)
    problem = one_problem(jobs, text, "job.yaml")
    assert problem == "jobs/job.yaml: catchup: Input should be a valid boolean"


# 8: duplicate keys -----------------------------------------------------------------------------------


def test_duplicate_yaml_keys_are_refused_with_their_path_and_line(jobs: Path) -> None:
    text = "name: a\nkafka_config:\n  topic: t1\n  topic: t2\n"
    problem = one_problem(jobs, text, "job.yaml")
    assert problem == "jobs/job.yaml: kafka_config.topic: appears twice in the same object (line 4); keep one"


def test_nested_duplicate_json_keys_name_their_path(jobs: Path) -> None:
    text = json.dumps(demo()).replace('"topic": "pstt-demo-traces"', '"topic": "a", "topic": "b"')
    assert one_problem(jobs, text) == "jobs/job.json: kafka_config.topic: appears twice in the same object; keep one"


def test_parameter_names_differing_only_in_case_are_refused_naming_both(jobs: Path) -> None:
    problem = one_problem(jobs, demo(parameters={"DATA": "{date}", "data": "{date-1}"}))
    assert problem == (
        "jobs/job.json: parameters: parameter names are case-insensitive, so these are the same parameter: "
        "DATA and data"
    )


# 9: cron -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("0 0 2 * * *", "it has 6 fields, a cron has 5"),
        ("0 0 2 * * * 2026", "it has 7 fields, a cron has 5"),
        ("0 0 30 2 *", "never fires (no such date, e.g. 30 February)"),
        ("0 0 31 4 *", "never fires"),
        ("@reboot", "unknown cron preset '@reboot'"),
    ],
)
def test_only_five_field_crons_that_fire_are_accepted(jobs: Path, cron: str, reason: str) -> None:
    problem = one_problem(jobs, demo(cron=cron))
    assert problem.startswith("jobs/job.json: cron: ")
    assert reason in problem


@pytest.mark.parametrize("cron", ["0 0 29 2 *", "@daily", "*/5 8-18 * * 1-5", "0 2 L * *"])
def test_rare_but_possible_crons_are_accepted(jobs: Path, cron: str) -> None:
    assert validator(jobs).validate(write(jobs, "job.json", demo(cron=cron))).schedule == cron


# 12: one spec never hides the others -----------------------------------------------------------------


HOSTILE = {
    "tz_folder.json": ({"timezone": "Europe"}, "timezone: unknown time zone 'Europe'"),
    "tz_us.json": ({"timezone": "US"}, "timezone: unknown time zone 'US'"),
    "tz_long.json": ({"timezone": "A" * 5000}, "timezone: String should have at most 64 characters"),
    "nul_query.json": ({"query": "DEMO\x00.sql"}, "query: must be one line of text"),
    "long_query.json": ({"query": "q" * 300 + ".sql"}, "query: String should have at most 255 characters"),
    "long_query_part.json": ({"query": "a" * 250 + ".sql"}, "query: query file"),
}


def test_a_hostile_spec_is_its_own_problem_and_the_others_validate(jobs: Path) -> None:
    write(jobs, "valid.json", demo())
    for name, (changes, _) in HOSTILE.items():
        write(jobs, name, demo(**changes))
    write(jobs, "deep.json", '{"name": ' + "[" * 1000 + "]" * 1000 + "}")

    configs, problems = validator(jobs).validate_folder()

    assert [config.display for config in configs] == ["jobs/valid.json"]
    by_file = {problem.file: str(problem) for problem in problems}
    for name, (_, expected) in HOSTILE.items():
        assert expected in by_file[f"jobs/{name}"], by_file[f"jobs/{name}"]
    assert "jobs/deep.json" in by_file


def test_an_unexpected_error_while_validating_becomes_that_specs_problem(
    jobs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(jobs, "a_valid.json", demo())
    bad = write(jobs, "b_bad.json", demo())
    original = Validator.validate

    def explode_on_bad(self: Validator, path: Path):
        if path.name == bad.name:
            raise OSError(36, "File name too long")
        return original(self, path)

    monkeypatch.setattr(Validator, "validate", explode_on_bad)
    configs, problems = validator(jobs).validate_folder()
    assert [config.display for config in configs] == ["jobs/a_valid.json"]
    assert [str(problem) for problem in problems] == [
        "jobs/b_bad.json: -: cannot be validated: OSError: [Errno 36] File name too long"
    ]


# 13: what Airflow would reject is refused first ---------------------------------------------------------


def test_a_retry_delay_airflow_cannot_hold_is_refused(jobs: Path) -> None:
    problem = one_problem(jobs, demo(retry_delay=10**20))
    assert problem.startswith("jobs/job.json: retry_delay: Input should be less than or equal to 604800")


def test_a_dag_id_over_250_characters_from_a_deep_path_is_refused(jobs: Path) -> None:
    deep = "/".join(["folder_with_a_long_name"] * 12) + "/job.json"
    problem = one_problem(jobs, demo(), deep)
    assert problem.endswith(
        "dag_id: the DAG id made from the spec's path is 296 characters, Airflow allows 250: "
        "set dag_id or use a shorter path"
    )


# 14: validation decides parameters the way the run does ---------------------------------------------------


def test_a_required_parameter_given_an_empty_value_is_refused(jobs: Path) -> None:
    problem = one_problem(jobs, demo(parameters={"DATA": ""}))
    assert problem.startswith("jobs/job.json: parameters.DATA: the query requires DATA")
    assert "an empty value would fail every run" in problem


def test_an_optional_parameter_with_an_empty_default_is_not_required(jobs: Path) -> None:
    (jobs.parent / "queries" / "opt.sql").write_text(
        "define OPT='' --Opzionale: filtro\nSELECT 1 AS K FROM T WHERE :OPT IS NULL OR C = :OPT\n"
    )
    config = validator(jobs).validate(write(jobs, "job.json", demo(query="opt.sql", parameters={})))
    [param] = config.params
    assert (param.name, param.required, param.default) == ("OPT", False, "")


# clear messages ------------------------------------------------------------------------------------------


def test_a_too_large_date_offset_says_so_instead_of_suggesting_itself(jobs: Path) -> None:
    problem = one_problem(jobs, demo(parameters={"DATA": "{date+999999}"}))
    assert problem == "jobs/job.json: parameters.DATA: {date+999999}: an offset is at most 36,600 days (100 years)"


def test_an_invalid_defaults_file_is_reported_once_and_names_each_spec_it_stops(jobs: Path) -> None:
    write(jobs, "team/_defaults.json", {"max_retries": -1})
    write(jobs, "team/a.json", demo())
    write(jobs, "team/b.json", demo())
    problems = [str(problem) for problem in validator(jobs).validate_folder()[1]]
    assert problems == [
        "jobs/team/_defaults.json: max_retries: Input should be greater than or equal to 0",
        "jobs/team/a.json: -: not built: the folder defaults jobs/team/_defaults.json are invalid",
        "jobs/team/b.json: -: not built: the folder defaults jobs/team/_defaults.json are invalid",
    ]


def test_a_symlinked_folder_in_the_jobs_folder_is_reported_not_ignored(jobs: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere, "job.json", demo())
    os.symlink(elsewhere, jobs / "linked")
    write(jobs, "valid.json", demo())
    configs, problems = validator(jobs).validate_folder()
    assert [config.display for config in configs] == ["jobs/valid.json"]
    [problem] = problems
    assert str(problem).startswith("jobs/linked: -: a symbolic link to a folder: links are not followed")


@pytest.mark.parametrize("topic", [".", ".."])
def test_topics_kafka_refuses_are_refused(jobs: Path, topic: str) -> None:
    problem = one_problem(jobs, demo(kafka_config__topic=topic))
    assert (
        problem
        == f"jobs/job.json: kafka_config.topic: {topic!r} is not a Kafka topic name (Kafka refuses '.' and '..')"
    )


def rendered_parameters(jobs: Path, conf: dict[str, Any]) -> dict[str, str]:
    """The export task's parameters as a run with this ``--conf`` renders them."""
    from types import SimpleNamespace

    import pendulum

    from pstt_provider.factory.builder import build_dag

    dag = build_dag(validator(jobs).validate(write(jobs, "job.json", demo())))
    task = dag.get_task(dag.task_ids[0])
    moment = pendulum.datetime(2026, 1, 20, 2, tz="UTC")
    params = {name: param.value for name, param in dag.params.items()}
    params.update(conf)
    context = {"params": params, "logical_date": moment, "dag_run": SimpleNamespace(conf=conf, run_after=moment)}
    environment = dag.get_template_env()
    return {name: environment.from_string(text).render(context) for name, text in task.parameters.items()}


def test_a_trigger_conf_may_spell_a_parameter_in_any_case(jobs: Path) -> None:
    assert rendered_parameters(jobs, {})["DATA"] == "2026-01-19"
    assert rendered_parameters(jobs, {"data": "2025-12-31"})["DATA"] == "2025-12-31"
    assert rendered_parameters(jobs, {"Stato": "OK"})["STATO"] == "OK"


def test_a_trigger_conf_with_two_spellings_of_one_parameter_fails(jobs: Path) -> None:
    from pstt_provider.factory.templates import TemplateError

    with pytest.raises(TemplateError, match=r"the run's conf sets DATA more than once \(DATA, data\): keep one"):
        rendered_parameters(jobs, {"DATA": "2025-01-01", "data": "2025-12-31"})

"""
E-mail on failure / success through the SMTP provider's ``SmtpNotifier`` (Airflow 3 style task callbacks).

The callbacks sit on the export task, not on the DAG: a task callback runs once, after the last retry,
in the worker, where the exception is in the context, so the e-mail can say what went wrong.
"""

from __future__ import annotations

from typing import Literal

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from pstt_provider.factory.models import EmailNotification

_SUBJECT = {
    "failure": "[PSTT] FAILED {{ dag.dag_id }} - run {{ run_id }}",
    "success": "[PSTT] OK {{ dag.dag_id }} - run {{ run_id }}",
}
_BODY = """\
<h3>PSTT job {{ dag.dag_id }} %(outcome)s</h3>
<table>
<tr><td>DAG</td><td>{{ dag.dag_id }}</td></tr>
<tr><td>Run</td><td>{{ run_id }}</td></tr>
<tr><td>Task</td><td>{{ ti.task_id }} (try {{ ti.try_number }})</td></tr>
{%% if exception is defined and exception %%}<tr><td>Error</td><td>{{ exception | string | e }}</td></tr>{%% endif %%}
{%% set delivery = ti.xcom_pull(task_ids=ti.task_id, key='pstt_delivery') %%}
{%% if delivery %%}<tr><td>Rows</td><td>{{ delivery.rows }} read, {{ delivery.messages_sent }} sent, \
{{ delivery.messages_failed }} failed, {{ delivery.messages_skipped }} skipped</td></tr>{%% endif %%}
</table>
<p><a href="{{ ti.log_url }}">Log</a></p>
"""


def notifiers(email: EmailNotification, event: Literal["failure", "success"]) -> list[SmtpNotifier]:
    """An ``SmtpNotifier`` for ``event`` when the spec asks for one, else nothing."""
    recipients = email.addresses(event)
    if not recipients:
        return []
    return [
        SmtpNotifier(
            to=recipients,
            from_email=email.from_email,
            smtp_conn_id=email.smtp_connection,
            subject=_SUBJECT[event],
            html_content=_BODY % {"outcome": "failed" if event == "failure" else "succeeded"},
        )
    ]

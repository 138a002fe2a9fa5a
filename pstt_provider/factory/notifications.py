"""
E-mail on failure / success through the SMTP provider (Airflow 3 style task callbacks).

The callbacks sit on the export task, not on the DAG: a task callback runs once, after the last retry,
in the worker, where the exception and the try's delivery summary (XCom ``pstt_delivery``) are at hand,
so the e-mail can say what the job read and sent and what went wrong. Every value in the templates comes
from the run's context, never from spec text spliced into the template: the spec's own strings are data.
"""

from __future__ import annotations

import smtplib
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate
from typing import Any, Literal, cast

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from pstt_provider.factory import templates
from pstt_provider.factory.models import EmailNotification
from pstt_provider.summary import XCOM_KEY

Event = Literal["failure", "success"]
_OUTCOME = {"failure": "FAILED", "success": "OK"}
# Jinja set at the top of every template: the run's moment in the job's time zone and its summary.
_PRELUDE = (
    "{% set when = pstt_run_time(@TIMEZONE@).strftime('%Y-%m-%d %H:%M:%S %Z') %}"
    "{% set delivery = ti.xcom_pull(task_ids=ti.task_id, key='" + XCOM_KEY + "') or {} %}"
    "{% set parameters = delivery.get('parameters') or params %}"
)
_SUBJECT = "[PSTT] @OUTCOME@ {{ dag.dag_display_name }} ({{ dag.dag_id }}) - {{ when }}"
_TEXT = """\
PSTT job {{ dag.dag_display_name }} @WORD@.

Job:        {{ dag.dag_display_name }} ({{ dag.dag_id }})
Run:        {{ run_id }} at {{ when }}
Task:       {{ ti.task_id }}, try {{ ti.try_number }}
Parameters: {% for name, value in parameters | dictsort %}{{ name }}={{ value }}{% if not loop.last %}, {% endif %}\
{% else %}none{% endfor %}
{% if delivery %}Rows:       {{ delivery.rows }} read; messages {{ delivery.messages_sent }} sent, \
{{ delivery.messages_failed }} failed, {{ delivery.messages_skipped }} skipped, \
{{ delivery.messages_dead_lettered }} dead-lettered, {{ delivery.messages_aborted }} aborted to {{ delivery.topic }}
{% endif %}{% if exception is defined and exception %}Error:      {{ exception }}
{% endif %}
Log: {{ ti.log_url }}
"""
_HTML = """\
<h3>PSTT job {{ dag.dag_display_name | e }} @WORD@</h3>
<table>
<tr><td>Job</td><td>{{ dag.dag_display_name | e }} ({{ dag.dag_id | e }})</td></tr>
<tr><td>Run</td><td>{{ run_id | e }} at {{ when | e }}</td></tr>
<tr><td>Task</td><td>{{ ti.task_id | e }}, try {{ ti.try_number }}</td></tr>
<tr><td>Parameters</td><td>{% for name, value in parameters | dictsort %}{{ name | e }}={{ value | e }}\
{% if not loop.last %}, {% endif %}{% else %}none{% endfor %}</td></tr>
{% if delivery %}<tr><td>Rows</td><td>{{ delivery.rows }} read; messages {{ delivery.messages_sent }} sent, \
{{ delivery.messages_failed }} failed, {{ delivery.messages_skipped }} skipped, \
{{ delivery.messages_dead_lettered }} dead-lettered, {{ delivery.messages_aborted }} aborted \
to {{ delivery.topic | e }}</td></tr>{% endif %}
{% if exception is defined and exception %}<tr><td>Error</td><td>{{ exception | string | e }}</td></tr>{% endif %}
</table>
<p><a href="{{ ti.log_url | e }}">Log</a></p>
"""


class PsttEmailNotifier(SmtpNotifier):
    """
    ``SmtpNotifier`` with a plain-text part beside the HTML (the SMTP hook sends HTML alone), as one
    ``multipart/alternative`` message: mail clients and ticket systems that read text get the same facts.
    """

    # SmtpNotifier leaves its template_fields unannotated, so its tuple's length became its type (BaseNotifier
    # declares Sequence[str]).
    template_fields = (*SmtpNotifier.template_fields, "text_content")  # type: ignore[assignment]

    def __init__(self, *, text_content: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text_content = text_content

    def notify(self, context: Any) -> None:
        with self.hook as smtp:
            self._build_email_content(smtp, context)
            # It has filled in the sender and subject (from the connection, else its templates) or raised.
            sender, subject = cast("str", self.from_email), cast("str", self.subject)
            message = MIMEMultipart("alternative")
            message["Subject"] = subject
            message["From"] = sender
            recipients = [self.to] if isinstance(self.to, str) else list(self.to)
            message["To"] = ", ".join(recipients)
            message["Date"] = formatdate(localtime=True)
            message.attach(MIMEText(self.text_content, "plain", self.mime_charset))
            message.attach(MIMEText(self.html_content or "", "html", self.mime_charset))
            # The hook offers no way to send a message it did not build; its connected client does.
            client = cast("smtplib.SMTP", smtp._smtp_client)  # entering the hook connected its synchronous client
            for attempt in range(smtp.smtp_retry_limit + 1):
                try:
                    client.sendmail(sender, recipients, message.as_string())
                    break
                except Exception:
                    if attempt == smtp.smtp_retry_limit:
                        raise


def notifiers(email: EmailNotification, event: Event, timezone: str) -> list[PsttEmailNotifier]:
    """A notifier for ``event`` when the spec asks for one, else nothing; times in the job's ``timezone``."""
    recipients = email.addresses(event)
    if not recipients:
        return []
    words = {
        "@OUTCOME@": _OUTCOME[event],
        "@WORD@": "failed" if event == "failure" else "succeeded",
        "@TIMEZONE@": templates.literal(timezone),
    }

    def fill(template: str) -> str:
        for placeholder, value in words.items():
            template = template.replace(placeholder, value)
        return template

    return [
        PsttEmailNotifier(
            to=recipients,
            from_email=email.from_email,
            smtp_conn_id=email.smtp_connection,
            subject=fill(_PRELUDE + _SUBJECT),
            html_content=fill(_PRELUDE + _HTML),
            text_content=fill(_PRELUDE + _TEXT),
        )
    ]

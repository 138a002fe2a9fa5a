"""
The value types of the job spec's fields: what a spec author may write, refused at validation otherwise.

Specs are data written by people who may not write DAG code, and several of their strings reach Airflow
fields that are Jinja templates (the e-mail notifier renders ``to``, ``from_email`` and ``subject`` at send
time, with ``conn`` and ``var`` in reach). So no spec string may carry Jinja delimiters, control characters
(CR/LF would forge mail headers, NUL breaks file names and drivers) or unbounded length. Parameter values
are the one exception: they are PSTT templates, compiled to Jinja string literals that can never run.
"""

from __future__ import annotations

import email.utils
import functools
import re
import zoneinfo
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from pstt_provider.ordered_read import IDENTIFIER

JINJA_DELIMITERS = ("{{", "{%", "{#")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LINE_BREAK = re.compile(r"[\r\n\t\u2028\u2029\x85]")
_CONN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_DEFINE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$#]{0,127}$")
# RFC 5322 atext without the braces (no Jinja), then dot-separated domain labels.
_ASSET_URI = re.compile(r"^[a-z][a-z0-9+.-]*://[\x21-\x7e]+$")
_ADDRESS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`|~.-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*$")


def _no_jinja(value: str) -> str:
    found = next((marker for marker in JINJA_DELIMITERS if marker in value), None)
    if found is not None:
        raise ValueError(f"{found!r} is not allowed: spec text is never a template (Jinja is refused everywhere)")
    return value


def _single_line(value: str) -> str:
    if _LINE_BREAK.search(value) or _CONTROL.search(value):
        raise ValueError("must be one line of text, without line breaks, tabs or control characters")
    return value


def _no_control(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (NUL, escape, ...)")
    return value


def _matching(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value[:80]!r} is not {what}")
        return value

    return check


def _topic(value: str) -> str:
    _matching(_TOPIC, "a Kafka topic name (1-249 of letters, digits, '.', '_', '-')")(value)
    if value in (".", ".."):
        raise ValueError(f"{value!r} is not a Kafka topic name (Kafka refuses '.' and '..')")
    return value


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError(f"{value[:80]!r} is not an e-mail address (name@domain, no spaces or braces)")
    return value


def _sender(value: str) -> str:
    """``addr`` or ``Display Name <addr>``: the address part checked like a recipient."""
    name, address = email.utils.parseaddr(value)
    if not address or (not name and address != value.strip()):
        raise ValueError(f"{value[:80]!r} is not a sender (name@domain or Display Name <name@domain>)")
    _address(address)
    return value


def _asset_uri(value: str) -> str:
    """
    A URI with a scheme (``kafka://host:port/topic``, ``s3://bucket/key``), printable ASCII: what Airflow keeps as
    an Asset's identity. ``kafka`` URIs also need the server and the topic, as Airflow's Kafka provider requires.
    """
    _no_jinja(value)
    if not _ASSET_URI.match(value):
        raise ValueError(f"{value[:80]!r} is not an asset URI (scheme://..., e.g. kafka://broker:9092/topic)")
    scheme, _, rest = value.partition("://")
    if scheme == "airflow":
        raise ValueError("the airflow:// scheme is Airflow's own and cannot name an asset")
    server, _, topic = rest.partition("/")
    if scheme == "kafka" and not (server and topic):
        raise ValueError(f"{value[:80]!r} is not a Kafka asset: kafka://<bootstrap host:port>/<topic>")
    return value


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones() | {"UTC"})


def _zone(value: str) -> str:
    """Only names of the installed IANA database: ``Europe`` (a folder) or a path must never reach a file read."""
    if value not in _known_zones():
        raise ValueError(f"unknown time zone {value[:80]!r} (use an IANA name like Europe/Rome)")
    return value


def _parameter_text(value: Any) -> Any:
    """Text or a number, as text; one message for anything else (not one per type the union would try)."""
    if value is None:
        raise ValueError("a parameter value is text or a number, not null: give a value or leave the parameter out")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        kind = "true/false" if isinstance(value, bool) else f"a {type(value).__name__}"
        raise ValueError(f"a parameter value is text or a number, not {kind}: put it in quotes")
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


Text = Annotated[str, Field(max_length=200), AfterValidator(_single_line), AfterValidator(_no_jinja)]
"""One line of free text: names, owners, tags."""
LongText = Annotated[str, Field(max_length=4000), AfterValidator(_no_control), AfterValidator(_no_jinja)]
"""Free text that may span lines: descriptions."""
Identifier = Annotated[str, Field(max_length=255), AfterValidator(_single_line), AfterValidator(_no_jinja)]
"""A database column name (the message key)."""
OrderColumn = Annotated[
    str, AfterValidator(_matching(IDENTIFIER, "a plain column name (a letter or _, then letters, digits, _ $ #)"))
]
"""A column an incremental or checkpointed read orders by: written into the SQL, so a plain name only."""
QueryName = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_single_line)]
"""A query file's path below the queries folder."""
ConnId = Annotated[str, AfterValidator(_matching(_CONN_ID, "an Airflow connection id (letters, digits, _ . -)"))]
Topic = Annotated[str, AfterValidator(_topic)]
Address = Annotated[str, AfterValidator(_address)]
AssetUri = Annotated[str, Field(max_length=1500), AfterValidator(_asset_uri)]
"""An Airflow Asset's URI, e.g. another job's topic ``kafka://broker:9092/pstt-traces``."""
Sender = Annotated[
    str, Field(max_length=320), AfterValidator(_single_line), AfterValidator(_no_jinja), AfterValidator(_sender)
]
TimeZone = Annotated[str, Field(max_length=64), AfterValidator(_zone)]
DefineName = Annotated[str, AfterValidator(_matching(_DEFINE_NAME, "a query parameter name (letters, digits, _)"))]
ParameterValue = Annotated[
    str,
    BeforeValidator(_parameter_text),
    Field(max_length=4000),
    WithJsonSchema({"type": ["string", "number"], "maxLength": 4000}),
]
"""Text (PSTT templates allowed) or a number, kept as text: the value a query parameter is bound to."""

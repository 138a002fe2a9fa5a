"""transaction.timeout.ms fitted to the broker's transaction.max.timeout.ms before the producer is made."""

from __future__ import annotations

import pytest

from pstt_provider.exceptions import KafkaConfigurationError
from pstt_provider.transactions import fit_transaction_timeout

DEFAULTS = {"transactional.id": "pstt-x", "transaction.timeout.ms": 900_000, "message.timeout.ms": 120_000}


def test_the_default_is_lowered_to_the_brokers_limit_with_the_message_timeout():
    fitted = fit_transaction_timeout(DEFAULTS, explicit=False, broker_max_ms=60_000)
    assert (fitted["transaction.timeout.ms"], fitted["message.timeout.ms"]) == (60_000, 60_000)


def test_a_limit_the_broker_does_not_tell_or_that_is_higher_changes_nothing():
    assert fit_transaction_timeout(DEFAULTS, explicit=False, broker_max_ms=None) == DEFAULTS
    assert fit_transaction_timeout(DEFAULTS, explicit=True, broker_max_ms=3_600_000) == DEFAULTS


def test_a_chosen_timeout_above_the_brokers_limit_fails_naming_both():
    with pytest.raises(KafkaConfigurationError, match=r"transaction\.timeout\.ms=900000 .* \(60000\)"):
        fit_transaction_timeout(DEFAULTS, explicit=True, broker_max_ms=60_000)

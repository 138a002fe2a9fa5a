"""Exposes the pstt plugin to an Airflow install that loads plugins from this folder instead of entry points."""

from pstt_provider.plugins.metrics import PsttPlugin

__all__ = ["PsttPlugin"]

"""
Exposes the pstt plugin to an Airflow install that loads plugins from this folder instead of entry points.

With pstt-provider installed, its ``airflow.plugins`` entry point registers the plugin already; exposing it
here as well would register it twice, which Airflow reports as a plugin import error on the UI's home page.
So this file exposes the plugin only when no such entry point exists (the package on ``PYTHONPATH`` only).
"""

from importlib.metadata import entry_points

if not entry_points(group="airflow.plugins", name="pstt"):
    from pstt_provider.plugins.metrics import PsttPlugin

    __all__ = ["PsttPlugin"]

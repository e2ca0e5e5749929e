"""owui-meter: what each Open WebUI user really costs on OpenRouter."""

from __future__ import annotations

__version__ = "0.1.0"


def create_app(settings=None):
    """The meter as ``owui-meter serve`` runs it: opened as the server, behind its web app.

    ``settings`` defaults to the environment's. Starts no threads: ``serve`` does that.
    """
    from . import settings as settings_module
    from .meter import Meter
    from .web import create_app as create_web_app

    return create_web_app(Meter.open(settings or settings_module.load(), serving=True))

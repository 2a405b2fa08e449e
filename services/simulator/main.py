"""``dispatch-simulator``: the scripted Messages API stand-in on 127.0.0.1:8090."""

from __future__ import annotations

import logging

from services import http_server
from services.settings import exit_on_bad_settings
from services.simulator.app import create_app
from services.simulator.config import SimulatorConfig
from services.simulator.rules import load_rules


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with exit_on_bad_settings():
        config = SimulatorConfig.from_env()
    app = create_app(config, load_rules(config.rules_path))
    # uvicorn handles SIGTERM/SIGINT itself and shuts down promptly.
    http_server.run(
        app,
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )

"""``dispatch-console``: the operator console at ``/console``.

Environment: CONSOLE_TOKEN (required), CONSOLE_HOST (127.0.0.1), CONSOLE_PORT
(8060), PROJECTOR_STORE_URL (a PostgreSQL store) or PROJECTOR_DB (the
projector's SQLite file), read only,
CONSOLE_PROCESSOR_METRICS_URL (timer lateness), KAFKA_BOOTSTRAP and
DISPATCH_TOPIC_PREFIX (redelivery). See docs/console.md.
"""

from __future__ import annotations

import logging

from projections.store import redacted
from services import http_server
from services.console.app import create_app
from services.console.settings import ConsoleSettings
from services.settings import exit_on_bad_settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per sample otherwise
    with exit_on_bad_settings():
        settings = ConsoleSettings.from_env()
    logging.getLogger("dispatch.console").info(
        "console at http://%s:%s/console reading %s",
        settings.host,
        settings.port,
        redacted(settings.store_url),
    )
    http_server.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,
    )

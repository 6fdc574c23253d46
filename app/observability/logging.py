"""structlog set-up: JSON lines when not on a terminal (containers), readable lines on one.

The standard library's loggers (transformers, litestar, granian's own) go through the same pipeline, so
every line of a process has one format. Request-scoped fields (``http_request_id``, ``trace_id``) are
bound as context variables by the HTTP middleware and land on every line logged while serving the request.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_GRANIAN_LOGGERS = ("_granian", "granian.access")


def configure_logging(level: str = "info", *, json_output: bool | None = None) -> None:
    """Route structlog and the standard library (transformers, granian, litestar) through one pipeline."""
    if json_output is None:
        json_output = not sys.stderr.isatty()
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _GRANIAN_LOGGERS:  # granian gives its loggers their own handlers: send them to ours
        granian = logging.getLogger(name)
        granian.handlers.clear()
        granian.propagate = True
    for noisy in ("httpx", "httpcore", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def granian_log_config(level: str) -> dict[str, Any]:
    """Granian's ``log_dictconfig``: its loggers keep no handler of their own and propagate to the root one."""
    loggers = {name: {"handlers": [], "level": level.upper(), "propagate": True} for name in _GRANIAN_LOGGERS}
    return {"version": 1, "disable_existing_loggers": False, "formatters": {}, "handlers": {}, "loggers": loggers}

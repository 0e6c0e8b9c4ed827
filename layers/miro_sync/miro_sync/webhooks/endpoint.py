"""HTTP face of the webhook: a Powertools Function URL resolver around `WebhookReceiver`.

`POST /board-events/<secret>` is the only accepted request. Everything else gets a 4xx without
touching a store; the path (which holds the secret) is only ever logged redacted."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError

from miro_sync.ports import LogSink, MetricsSink
from miro_sync.webhooks.receiver import Outcome, WebhookReceiver, redact_path

ROUTE = "/board-events/<secret>"
OTHER_METHODS = ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
JSON = "application/json"
_SECRET_IN_PATH = re.compile(r"/board-events/[^\s'\",}]*")
# Route arguments (the secret) are printed as a dict repr, quoted either way: drop the whole dict.
_ROUTE_ARGUMENTS = re.compile(r"(Calling API Route Handler: ).*", re.DOTALL)
# Any unmatched path may be a secret sent to the wrong place (e.g. without the /board-events prefix).
_UNMATCHED_PATH = re.compile(r"for path .* and method", re.DOTALL)
# The resolver's own debug lines print the matched route arguments and unmatched paths.
_RESOLVER_LOGGER = "aws_lambda_powertools.event_handler.api_gateway"


class SecretRedactingFilter(logging.Filter):
    """Rewrites Powertools' debug records (POWERTOOLS_DEBUG / a DEBUG root logger) so that the path
    secret never reaches a log: hand-written because Powertools has no hook to redact route arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_IN_PATH.sub("/board-events/<redacted>", message)
        redacted = _ROUTE_ARGUMENTS.sub(r"\1<redacted>", redacted)
        redacted = _UNMATCHED_PATH.sub("for path <redacted> and method", redacted)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def _install_redaction() -> None:
    resolver_logger = logging.getLogger(_RESOLVER_LOGGER)
    if not any(isinstance(existing, SecretRedactingFilter) for existing in resolver_logger.filters):
        resolver_logger.addFilter(SecretRedactingFilter())


def _json_response(status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status_code, content_type=JSON, body=json.dumps(body), headers=headers)


def _raw_body(event: dict[str, Any], size_cap: int) -> bytes | None:
    """The request body as bytes; None when base64 is invalid. Oversized input is cut one byte past the
    cap (enough for the receiver to answer 413) before any decoding work."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        return None
    if event.get("isBase64Encoded"):
        encoded = body[: (size_cap // 3 + 2) * 4]
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            return None
    # surrogatepass: a lone surrogate in the event string becomes invalid UTF-8, which the JSON
    # parser then rejects with a 400 instead of this line raising.
    return body[: size_cap + 1].encode("utf-8", "surrogatepass")


def create_resolver(
    receiver: Callable[[], WebhookReceiver],
    *,
    logger: LogSink,
    metrics: MetricsSink,
) -> LambdaFunctionUrlResolver:
    """`receiver` is called per request so the handler can key its cached adapters by settings."""
    _install_redaction()
    app = LambdaFunctionUrlResolver()

    def respond(outcome: Outcome) -> Response:
        metrics.add_metric(name=f"Webhook_{outcome.reason}", unit="Count", value=1)
        log = logger.info if outcome.status_code < 400 else logger.warning
        log("board webhook request", extra={"status": outcome.status_code, "reason": outcome.reason})
        return _json_response(outcome.status_code, outcome.body)

    @app.post(ROUTE)
    def deliver(secret: str) -> Response:
        active = receiver()
        return respond(active.handle(secret, _raw_body(app.current_event.raw_event, active.max_body_bytes)))

    @app.route(ROUTE, method=OTHER_METHODS)
    def wrong_method(secret: str) -> Response:
        return respond(Outcome(405, {"message": "only POST is accepted"}, "wrong_method"))

    @app.not_found
    def elsewhere(_: NotFoundError) -> Response:
        path = app.current_event.path
        if path != "/board-events" and not path.startswith("/board-events/"):
            return respond(Outcome(404, {"message": "not found"}, "no_route"))
        if app.current_event.http_method.upper() != "POST":
            return respond(Outcome(405, {"message": "only POST is accepted"}, "wrong_method"))
        # `/board-events`, `/board-events/` or a secret with characters no secret of ours has.
        return respond(Outcome(401, {"message": "unknown or missing subscription secret"}, "unauthorized"))

    @app.exception_handler(Exception)
    def failed(error: Exception) -> Response:
        # A store or network failure: 500 so Miro retries. The path is logged redacted; the exception
        # text comes from our code and boto3 and holds at most the secret's hash.
        logger.exception(
            "board webhook failed",
            extra={"path": redact_path(app.current_event.path), "error_type": type(error).__name__},
        )
        metrics.add_metric(name="Webhook_error", unit="Count", value=1)
        return _json_response(500, {"message": "internal error, retry later"})

    return app

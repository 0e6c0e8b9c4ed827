"""A Lambda Function URL on 127.0.0.1: real HTTP in, payload-v2.0 event to a handler in this process,
the handler's result back out as the HTTP response.

Generic (any handler callable); the demo serves the board webhook with it and the webhook benchmark
measures through it. Built on werkzeug's threaded dev server (already a dev dependency) so chunked
bodies and keep-alive are handled for us.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from miro_sync_cli.local.invoke import LocalLambdaContext, process_environment

# Function URL's own request payload limit (6 MB); above it Lambda is never called.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
URL_ID = "local0000000000000000000000000000"
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)

Handler = Callable[[dict[str, Any], Any], Any]


def _is_text(content_type: str) -> bool:
    lowered = content_type.lower()
    return any(lowered.startswith(kind) for kind in _TEXT_TYPES) or lowered.endswith("+json")


def function_url_event(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
    query: str = "",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The event Lambda builds for a Function URL request (payload format 2.0)."""
    lowered: dict[str, str] = {}
    for name, value in (headers or {}).items():
        key = name.lower()
        # Function URL joins repeated headers with commas.
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    content_type = lowered.get("content-type", "")
    text_body: str | None = None
    if body and _is_text(content_type):
        with contextlib.suppress(UnicodeDecodeError):
            text_body = body.decode("utf-8")
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": URL_ID,
            "domainName": f"{URL_ID}.lambda-url.us-east-1.on.aws",
            "domainPrefix": URL_ID,
            "http": {
                "method": method.upper(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        from urllib.parse import parse_qsl

        event["queryStringParameters"] = dict(parse_qsl(query, keep_blank_values=True))
    if "cookie" in lowered:
        event["cookies"] = [part.strip() for part in lowered["cookie"].split(";")]
    if body:
        if text_body is not None:
            event["body"] = text_body
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


def _to_response(result: Any) -> Response:
    """Function URL's rules: a dict with statusCode is a full response; anything else is a JSON 200."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return Response(json.dumps(result), status=200, content_type="application/json")
    body = result.get("body") or ""
    payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    response = Response(payload, status=int(result["statusCode"]))
    response.headers.pop("Content-Type", None)
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values:
            response.headers.add(name, str(value))
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response


class _QuietRequestHandler(WSGIRequestHandler):
    """werkzeug logs every request line, path included; the webhook's path holds a secret."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


@dataclass
class FunctionUrlServer:
    url: str
    invocations: int = 0


@contextlib.contextmanager
def serve_function_url(
    handler: Handler,
    env: Mapping[str, str],
    port: int = 0,
    *,
    function_name: str = "local-function",
    timeout_s: float = 30.0,
    memory_mb: int = 256,
) -> Iterator[FunctionUrlServer]:
    """Serve `handler` at http://127.0.0.1:<port> until the block ends (the thread stops with it)."""
    server_info = FunctionUrlServer(url="")
    lock = threading.Lock()

    @Request.application
    def application(request: Request) -> Response:
        body = request.get_data(cache=False)
        if len(body) > MAX_PAYLOAD_BYTES:
            return Response(json.dumps({"Message": "Request must be smaller than 6 MB"}), status=413)
        event = function_url_event(
            request.method,
            request.path,
            body=body,
            headers=dict(request.headers.items()),
            query=request.query_string.decode("latin-1"),
            source_ip=request.remote_addr or "127.0.0.1",
        )
        context = LocalLambdaContext(
            function_name=function_name,
            memory_limit_in_mb=memory_mb,
            timeout_s=timeout_s,
            aws_request_id=event["requestContext"]["requestId"],
        )
        with lock:
            server_info.invocations += 1
        try:
            result = handler(event, context)
        except Exception:
            # What Function URL answers when the function errors; the error itself is the handler's to log.
            return Response(
                json.dumps({"Message": "Internal Server Error"}), status=502, content_type="application/json"
            )
        return _to_response(result)

    server: BaseWSGIServer = make_server(
        "127.0.0.1", port, application, threaded=True, request_handler=_QuietRequestHandler
    )
    server_info.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="function-url"
    )
    # Lambda hands each container its own environment; in-process the server's lifetime is the
    # container's, so the variables are set once for it rather than per (concurrent) request.
    with process_environment(dict(env)):
        thread.start()
        try:
            yield server_info
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

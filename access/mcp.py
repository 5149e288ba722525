"""POST /mcp: the Model Context Protocol over Streamable HTTP, stateless, JSON responses.

Both revision families are served by the same view, one request at a time, so that any worker
of any instance answers any request: the initialize-era revisions (initialize,
notifications/initialized, ping, tools/list, tools/call; no session id is issued) and 2026-07-28
(server/discover, the per-request `_meta` envelope and its MCP-Protocol-Version / Mcp-Method /
Mcp-Name headers). Messages are validated and serialised with the official SDK's types, per
revision (`mcp_types.methods`), and a 2026-07-28 envelope goes through the SDK's own validation
ladder (`mcp.shared.inbound`). See docs/mcp.md ("Design") for why this is not the SDK's ASGI app.
"""

from __future__ import annotations

import json
import logging
import time

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS, classify_inbound_request
from mcp_types import (
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
    CallToolResult,
    DiscoverResult,
    EmptyResult,
    Implementation,
    InitializeResult,
    ListToolsResult,
    ServerCapabilities,
    TextContent,
    Tool,
    ToolsCapability,
)
from mcp_types import methods as mcp_methods
from mcp_types.jsonrpc import (
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    JSONRPCRequest,
)
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)
from pydantic import ValidationError

from access.authentication import caller_resolve
from access.services import dataset_readable, datasets_readable, usage_report
from access.tools import INSTRUCTIONS, TOOL_NAMES, error_text, tool_call, tool_definitions
from datasets.engine.errors import QueryError, SourceUnavailable
from datasets.policy import AccessPolicy
from gatewaysite.addresses import public_url
from gatewaysite.errors import ApiError, error_body, error_json
from keys.authentication import KeyRejected
from keys.ratelimit import budget_refusal
from keys.usage import rejected_count

logger = logging.getLogger("gateway")

SERVER_INFO = Implementation(name="gateway", title="Gateway", version="1.0.0")
CAPABILITIES = ServerCapabilities(tools=ToolsCapability(list_changed=False))
KEY_REQUIRED = (
    "A Gateway API key (or an OAuth access token) is required: send it as "
    "'Authorization: Bearer <key>'."
)


def _unauthorized(request, message: str) -> JsonResponse:
    response = error_json(401, "unauthorized", message)
    metadata = f"{public_url(request)}/.well-known/oauth-protected-resource/mcp"
    response["WWW-Authenticate"] = f'Bearer resource_metadata="{metadata}"'
    return response


def _authenticate(request) -> AccessPolicy | JsonResponse:
    """The caller's policy, or the 401 (429 past the failed-attempt budget) to answer.

    Calls that reach no dataset (/mcp is not under /api/) are counted here, not by the usage
    middleware."""
    try:
        policy = caller_resolve(request, door="mcp")
    except KeyRejected as rejected:
        rejected_count(rejected.reason)
        return _unauthorized(request, str(rejected.detail))
    except ApiError as limited:
        rejected_count(request.gateway_auth)
        return error_json(429, limited.code, limited.message, retry_after=limited.retry_after)
    if policy is None:
        rejected_count("missing")
        return _unauthorized(request, KEY_REQUIRED)
    return policy


def _reply(message_id, result: dict, status: int = 200) -> HttpResponse:
    body = {"jsonrpc": "2.0", "id": message_id, "result": result}
    return HttpResponse(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        content_type="application/json",
    )


def _error(message_id, code: int, message: str, *, data=None, modern: bool = False) -> HttpResponse:
    error = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    # 2026-07-28 maps error codes to HTTP statuses; the initialize era answers 200 (a 404 would
    # read as "session expired" to its clients), except for a body that is not JSON-RPC at all.
    if modern:
        status = ERROR_CODE_HTTP_STATUS.get(code, 200)
    else:
        status = 400 if code in (PARSE_ERROR, INVALID_REQUEST) else 200
    return HttpResponse(
        json.dumps({"jsonrpc": "2.0", "id": message_id, "error": error}, ensure_ascii=False),
        status=status,
        content_type="application/json",
    )


def _origin_allowed(request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin.rstrip("/") in settings.GATEWAY_ALLOWED_ORIGINS


def _is_modern(request, body: dict) -> bool:
    header = request.headers.get("MCP-Protocol-Version")
    if header is not None:
        return header not in HANDSHAKE_PROTOCOL_VERSIONS
    params = body.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and PROTOCOL_VERSION_META_KEY in meta


def _handshake_version(request, method: str, params: dict | None) -> str:
    if method == "initialize":
        requested = (params or {}).get("protocolVersion")
        return requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
    header = request.headers.get("MCP-Protocol-Version")
    # Without the header the revision is not known: the newest initialize-era one serves
    # every feature the tools use (structuredContent, outputSchema).
    return header if header in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION


def _dump(model) -> dict:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def _tools(policy: AccessPolicy) -> list[Tool]:
    specs = datasets_readable(policy)
    largest = max((spec.max_page_size for spec in specs), default=1000)
    slugs = [spec.slug for spec in specs]
    return [Tool.model_validate(tool) for tool in tool_definitions(slugs, largest)]


def _tool_error(
    status: int, code: str, message: str, retry_after: int | None = None
) -> CallToolResult:
    error = error_body(status, code, message)
    if retry_after is not None:
        error["error"]["retry_after"] = retry_after
    return CallToolResult(
        content=[TextContent(type="text", text=error_text(code, message))],
        structured_content=error,
        is_error=True,
    )


def _readable_slug(policy: AccessPolicy, arguments: dict) -> str:
    """The dataset a failed call named, for its usage record, if the caller may read it."""
    slug = arguments.get("dataset") if isinstance(arguments, dict) else None
    try:
        return dataset_readable(policy, slug).slug if isinstance(slug, str) else ""
    except ApiError:
        return ""


def _call_tool(request, policy: AccessPolicy, params: dict) -> CallToolResult:
    name = params["name"]
    arguments = params.get("arguments") or {}
    started, began = time.time(), time.perf_counter()
    status, dataset, rows, code = 200, "", None, ""
    try:
        refusal = None if policy.budget is None else budget_refusal(request, policy.budget)
        if refusal is not None:
            raise refusal
        answer = tool_call(
            name,
            arguments,
            policy=policy,
            base_url=public_url(request),
            max_chars=settings.GATEWAY_MAX_RESPONSE_CHARS,
        )
        dataset, rows = answer.dataset, answer.rows
        return CallToolResult(
            content=[TextContent(type="text", text=answer.text)],
            structured_content=answer.structured,
        )
    except ApiError as error:
        status, code = error.status_code, error.code
        return _tool_error(status, error.code, error.message, error.retry_after)
    except QueryError as error:
        status, code = error.status, error.code
        return _tool_error(status, error.code, error.message)
    except SourceUnavailable as error:
        status, code = 503, error.code
        return _tool_error(503, error.code, error.message, error.retry_after)
    except Exception:
        status, code = 500, "server_error"
        raise
    finally:
        if status != 200:
            dataset = _readable_slug(policy, arguments)
        try:
            usage_report(
                policy=policy,
                operation=f"mcp:{name}",
                dataset=dataset,
                status=status,
                started=started,
                began=began,
                rows=rows,
                error_code=code,
            )
        except Exception:
            # Usage is bookkeeping: it never turns a served answer into an error.
            logger.exception("Usage record failed for mcp:%s", name)


def _handle(request, policy: AccessPolicy, message: JSONRPCRequest, *, version: str, modern: bool):
    method, params = message.method, message.params
    try:
        typed = mcp_methods.parse_client_request(method, version, params)
    except KeyError:
        return _error(
            message.id, METHOD_NOT_FOUND, f"Method not found: {method[:60]}", modern=modern
        )
    except ValidationError as error:
        errors = error.errors()
        where = ".".join(str(part) for part in errors[0]["loc"]) if errors else ""
        detail = errors[0]["msg"] if errors else ""
        return _error(
            message.id,
            INVALID_PARAMS,
            f"Invalid params for {method}: {where} {detail}".strip(),
            modern=modern,
        )
    result: InitializeResult | DiscoverResult | EmptyResult | ListToolsResult | CallToolResult
    if method == "initialize":
        result = InitializeResult(
            protocol_version=version,
            capabilities=CAPABILITIES,
            server_info=SERVER_INFO,
            instructions=INSTRUCTIONS,
        )
    elif method == "server/discover":
        result = DiscoverResult(
            supported_versions=list(MODERN_PROTOCOL_VERSIONS),
            capabilities=CAPABILITIES,
            instructions=INSTRUCTIONS,
        )
    elif method == "ping":
        result = EmptyResult()
    elif method == "tools/list":
        result = ListToolsResult(tools=_tools(policy))
    elif method == "tools/call":
        name = typed.params.name
        if name not in TOOL_NAMES:
            return _error(
                message.id,
                INVALID_PARAMS,
                f"Unknown tool '{name[:60]}'. Tools: {', '.join(TOOL_NAMES)}.",
                modern=modern,
            )
        result = _call_tool(request, policy, {"name": name, "arguments": typed.params.arguments})
    else:
        return _error(
            message.id, METHOD_NOT_FOUND, f"Method not found: {method[:60]}", modern=modern
        )
    dumped = mcp_methods.serialize_server_result(method, version, _dump(result))
    if modern:
        dumped.setdefault("resultType", "complete")
        dumped["_meta"] = {**dumped.get("_meta", {}), SERVER_INFO_META_KEY: _dump(SERVER_INFO)}
    return _reply(message.id, dumped)


# One JSON-RPC message of Gateway's tools is a few hundred bytes (REST query strings, the same
# grammar, stop at a few KB): a larger body is refused before it is read.
MAX_MESSAGE_BYTES = 256 * 1024


def _read_message(request):
    """The parsed JSON body, or the bounded JSON-RPC error to answer (never a 500)."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= MAX_MESSAGE_BYTES:
        length = len(request.body)
    if length > MAX_MESSAGE_BYTES:
        response = _error(
            None,
            INVALID_REQUEST,
            f"The request body is {length} bytes: /mcp takes one JSON-RPC message of at most "
            f"{MAX_MESSAGE_BYTES} bytes.",
        )
        response.status_code = 413
        return response
    try:
        return json.loads(request.body)
    except RecursionError:
        # Python's parser recurses once per [ or {: deep nesting ends its stack, not the server.
        return _error(None, PARSE_ERROR, "Parse error: the JSON is nested too deeply.")
    except (ValueError, UnicodeDecodeError):
        return _error(None, PARSE_ERROR, "Parse error: the body is not JSON.")


@csrf_exempt
def mcp_endpoint(request):
    """POST /mcp: one JSON-RPC message in, one JSON response out (202 for a notification)."""
    if request.method != "POST":
        response = error_json(
            405, "method_not_allowed", "The MCP endpoint takes POST: this server sends no streams."
        )
        response["Allow"] = "POST"
        return response
    if not _origin_allowed(request):
        return error_json(
            403,
            "forbidden_origin",
            "Requests from this web origin are not allowed (GATEWAY_ALLOWED_ORIGINS).",
        )
    policy = _authenticate(request)
    if not isinstance(policy, AccessPolicy):
        return policy
    body = _read_message(request)
    if isinstance(body, HttpResponse):
        return body
    if not isinstance(body, dict):
        return _error(None, INVALID_REQUEST, "Send one JSON-RPC message per request (no batches).")
    if "method" not in body or "id" not in body:
        if "method" in body or "result" in body or "error" in body:
            return HttpResponse(status=202)  # a notification or a response: nothing to answer
        return _error(None, INVALID_REQUEST, "Not a JSON-RPC request.")
    try:
        message = JSONRPCRequest.model_validate(body)
    except ValidationError:
        return _error(
            body.get("id") if isinstance(body.get("id"), (int, str)) else None,
            INVALID_REQUEST,
            "Not a JSON-RPC 2.0 request.",
        )
    if _is_modern(request, body):
        headers = {name.lower(): value for name, value in request.headers.items()}
        verdict = classify_inbound_request(body, headers=headers)
        if not hasattr(verdict, "protocol_version"):
            return _error(message.id, verdict.code, verdict.message, data=verdict.data, modern=True)
        return _handle(request, policy, message, version=verdict.protocol_version, modern=True)
    version = _handshake_version(request, message.method, message.params)
    return _handle(request, policy, message, version=version, modern=False)

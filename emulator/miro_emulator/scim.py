"""Miro's SCIM 2.0 /Users endpoints. Only internal members (admins and users) exist for SCIM."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from miro_emulator.http import SCIM_CONTENT_TYPE, Request, Response, ScimError
from miro_emulator.state import Member, OrgState, StateError

if TYPE_CHECKING:
    from miro_emulator.app import Emulator

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_COUNT = 1000
USER_TYPES = {
    "full": "Full",
    "occasional": "Occasional",
    "free": "Free",
    "free_restricted": "Free Restricted",
    "full_trial": "Full",
}

# One comparison: attribute, operator, value (quoted string, true/false, or a number).
_COMPARISON = re.compile(
    r'^\s*([A-Za-z][\w.:]*)\s+(eq|ne|co|sw|ew)\s+("(?:[^"\\]|\\.)*"|true|false|\d+)\s*$', re.I
)
_AND = re.compile(r"\s+and\s+", re.I)


def scim_response(status: int, body: Any = None) -> Response:
    return Response(status, body, content_type=SCIM_CONTENT_TYPE)


def user_json(emulator: Emulator, member: Member) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "id": member.scim_id,
        "userName": member.email,
        "name": {
            "givenName": member.given_name,
            "familyName": member.family_name,
            "formatted": member.display_name,
        },
        "displayName": member.display_name,
        "userType": USER_TYPES.get(member.license, "Free"),
        "active": member.active,
        "emails": [{"value": member.email, "type": "work", "primary": True}],
        "roles": [{"value": member.role.upper(), "type": "organization_role", "primary": True}],
        "meta": {
            "resourceType": "User",
            "location": f"{emulator.scim_base_for_links}/Users/{member.scim_id}",
        },
    }


def _attribute(member: Member, name: str) -> object:
    lowered = name.lower()
    if lowered in ("username", "emails", "emails.value"):
        return member.email
    if lowered == "active":
        return member.active
    if lowered == "id":
        return member.scim_id
    if lowered == "displayname":
        return member.display_name
    if lowered == "name.givenname":
        return member.given_name
    if lowered == "name.familyname":
        return member.family_name
    raise ScimError(400, f"Filtering on attribute '{name}' is not supported", "invalidFilter")


def _predicate(expression: str) -> tuple[Callable[[Member], bool], str | None]:
    """Returns a predicate, plus the userName it pins (so `userName eq` is an index lookup)."""
    checks: list[Callable[[Member], bool]] = []
    pinned_user_name: str | None = None
    for clause in _AND.split(expression.strip()):
        match = _COMPARISON.match(clause)
        if match is None:
            raise ScimError(400, f"Invalid filter: {expression}", "invalidFilter")
        attribute, operator, literal = match.group(1), match.group(2).lower(), match.group(3)
        value: object
        if literal.startswith('"'):
            value = literal[1:-1].replace('\\"', '"')
        elif literal.lower() in ("true", "false"):
            value = literal.lower() == "true"
        else:
            value = literal
        if attribute.lower() == "username" and operator == "eq" and isinstance(value, str):
            pinned_user_name = value
        checks.append(_comparison(attribute, operator, value))
    return (lambda member: all(check(member) for check in checks)), pinned_user_name


def _comparison(attribute: str, operator: str, expected: object) -> Callable[[Member], bool]:
    def check(member: Member) -> bool:
        actual = _attribute(member, attribute)
        if isinstance(actual, str) and isinstance(expected, str):
            left, right = actual.lower(), expected.lower()  # SCIM string compares are case-insensitive
            return {
                "eq": left == right,
                "ne": left != right,
                "co": right in left,
                "sw": left.startswith(right),
                "ew": left.endswith(right),
            }[operator]
        if operator == "eq":
            return actual == expected
        if operator == "ne":
            return actual != expected
        raise ScimError(400, f"Operator '{operator}' needs a string value", "invalidFilter")

    return check


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.param(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ScimError(400, f"Parameter '{name}' must be an integer", "invalidValue") from None


def list_users(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    start_index = max(1, _int_param(request, "startIndex", 1))  # RFC 7644: values below 1 mean 1
    count = min(MAX_COUNT, max(0, _int_param(request, "count", 100)))
    expression = request.param("filter")
    with state.lock:
        if expression:
            predicate, pinned = _predicate(expression)
            if pinned is not None:
                candidate = state.member_by_email(pinned)
                visible = candidate is not None and state.scim_user(candidate.scim_id or "") is candidate
                matches = [candidate] if visible and candidate is not None and predicate(candidate) else []
            else:
                matches = [m for m in (state.all_members[i] for i in state.scim_order) if predicate(m)]
            total = len(matches)
            window = matches[start_index - 1 : start_index - 1 + count]
        else:  # unfiltered: slice the order rather than copy every user for each page
            total = len(state.scim_order)
            positions = state.scim_order[start_index - 1 : start_index - 1 + count]
            window = [state.all_members[i] for i in positions]
        resources = [user_json(emulator, member) for member in window]
    body = {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
    return scim_response(200, body)


def _user_or_404(state: OrgState, scim_id: str) -> Member:
    member = state.scim_user(scim_id)
    if member is None:
        raise ScimError(404, f"User {scim_id} not found")
    return member


def get_user(emulator: Emulator, request: Request) -> Response:
    with emulator.state.lock:
        member = _user_or_404(emulator.state, request.path_params["id"])
        return scim_response(200, user_json(emulator, member))


def _as_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ScimError(400, "Attribute 'active' must be a boolean", "invalidValue")


def _raise_state_error(refused: StateError) -> None:
    status = {"conflict": 409, "uniqueness": 409, "not_found": 404}.get(refused.kind, 400)
    raise ScimError(status, refused.message, refused.scim_type)


def patch_user(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    try:
        body = request.json()
    except (ValueError, UnicodeDecodeError):
        raise ScimError(400, "Request body must be valid JSON", "invalidSyntax") from None
    if not isinstance(body, dict) or PATCH_SCHEMA not in (body.get("schemas") or []):
        raise ScimError(400, f"Request must be a PatchOp with schemas [{PATCH_SCHEMA}]", "invalidSyntax")
    operations = body.get("Operations")
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty list", "invalidSyntax")
    with state.lock:
        member = _user_or_404(state, request.path_params["id"])
        changes: list[tuple[str, object]] = []
        for operation in operations:
            changes.extend(_changes(operation))
        try:
            for attribute, value in changes:
                _apply(state, member, attribute, value)
        except StateError as refused:
            _raise_state_error(refused)
        return scim_response(200, user_json(emulator, member))


def _changes(operation: object) -> list[tuple[str, object]]:
    if not isinstance(operation, dict):
        raise ScimError(400, "Each operation must be an object", "invalidSyntax")
    op = str(operation.get("op", "")).lower()
    if op not in ("add", "replace", "remove"):
        raise ScimError(400, "op must be one of Add, Remove, Replace", "invalidSyntax")
    if op == "remove":
        raise ScimError(400, "Removing user attributes is not supported", "mutability")
    path = operation.get("path")
    value = operation.get("value")
    if path is None:
        if not isinstance(value, dict):
            raise ScimError(400, "An operation without path needs an object value", "invalidSyntax")
        return [(str(key), item) for key, item in value.items()]
    if not isinstance(path, str):
        raise ScimError(400, "path must be a string", "invalidPath")
    return [(path, value)]


def _apply(state: OrgState, member: Member, attribute: str, value: object) -> None:
    lowered = attribute.lower()
    if lowered == "active":
        state.set_active(member, _as_bool(value))
    elif lowered == "username":
        if not isinstance(value, str) or "@" not in value:
            raise ScimError(400, "userName must be an email address", "invalidValue")
        if value.lower() != member.email.lower():
            state.rename(member, value)
    elif lowered in ("name.givenname", "name.familyname", "displayname"):
        if not isinstance(value, str) or not value.strip():
            raise ScimError(400, f"{attribute} must be a non-empty string", "invalidValue")
        if lowered == "name.givenname":
            member.given_name = value
        elif lowered == "name.familyname":
            member.family_name = value
        else:
            member.given_name, _, family = value.partition(" ")
            member.family_name = family or member.family_name
    elif lowered == "name" and isinstance(value, dict):
        for key, item in value.items():
            _apply(state, member, f"name.{key}", item)
    else:
        raise ScimError(400, f"Attribute '{attribute}' cannot be patched", "invalidPath")


def delete_user(emulator: Emulator, request: Request) -> Response:
    state = emulator.state
    with state.lock:
        member = _user_or_404(state, request.path_params["id"])
        try:
            state.delete_member(member)
        except StateError as refused:
            _raise_state_error(refused)
    return scim_response(204)

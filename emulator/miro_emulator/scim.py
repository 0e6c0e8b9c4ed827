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
# GET /Users `count`: "set to 100 by default and the maximum value allowed for this parameter is 1000"
# (spec, listUsers); a larger count is answered with 1000 (itemsPerPage says how many came).
MAX_COUNT = 1000
DEFAULT_COUNT = 100
# License -> userType, in the spec's names ("Full, Free, Free Restricted, Full (Trial), Basic, Standard,
# Advanced"); "Occasional" is not in that list and is named after the REST license.
USER_TYPES = {
    "full": "Full",
    "occasional": "Occasional",
    "free": "Free",
    "free_restricted": "Free Restricted",
    "full_trial": "Full (Trial)",
}
USER_ROLE = "organization_user_role"
ADMIN_ROLE = "organization_admin_role"
ROLE_DISPLAY = {"organization_internal_admin": "Company Admin", "organization_internal_user": "Member"}
# Returned whatever `attributes` asks for (RFC 7644 section 3.4.2.5: returned "always").
ALWAYS_RETURNED = ("schemas", "id")

# One comparison: attribute, operator, value (quoted string, true/false, or a number).
_COMPARISON = re.compile(
    r'^\s*([A-Za-z][\w.:]*)\s+(eq|ne|co|sw|ew)\s+("(?:[^"\\]|\\.)*"|true|false|\d+)\s*$', re.I
)
_AND = re.compile(r"\s+and\s+", re.I)


def scim_response(status: int, body: Any = None) -> Response:
    return Response(status, body, content_type=SCIM_CONTENT_TYPE)


def user_json(
    emulator: Emulator, member: Member, groups: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """A SCIM user as the spec's UserResource shows it. `groups`: the member's teams as
    {"value": team id, "display": team name} (computed for the member when None)."""
    roles: list[dict[str, Any]] = [
        {
            "value": member.role.upper(),
            "display": ROLE_DISPLAY.get(member.role, member.role),
            "type": USER_ROLE,
            "primary": True,
        }
    ]
    roles.extend(
        {"value": name, "display": name, "type": ADMIN_ROLE, "primary": False} for name in member.admin_roles
    )
    if groups is None:
        groups = _groups_of(emulator.state, [member]).get(member.index, [])
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
        "groups": groups,
        "roles": roles,
        "meta": {
            "resourceType": "User",
            "location": f"{emulator.scim_base_for_links}/Users/{member.scim_id}",
        },
    }


def _groups_of(state: OrgState, members: list[Member]) -> dict[int, list[dict[str, str]]]:
    """Member index -> the member's teams as SCIM groups, for `members` only: one pass over the teams
    with a set intersection each (not a scan of every membership per member)."""
    wanted = {member.index for member in members}
    groups: dict[int, list[dict[str, str]]] = {}
    for team in state.teams:
        memberships = team.memberships
        if len(memberships) < len(wanted):
            found = [index for index in memberships if index in wanted]
        else:
            found = [index for index in wanted if index in memberships]
        for index in found:
            groups.setdefault(index, []).append({"value": team.id, "display": team.name})
    return groups


def _selected(resource: dict[str, Any], attributes: str | None) -> dict[str, Any]:
    """`resource` cut down to the `attributes` asked for (comma-separated, case-insensitive; a
    sub-attribute such as `name.givenName` keeps that part of `name`)."""
    if not attributes:
        return resource
    wanted = _wanted_attributes(attributes)
    selected: dict[str, Any] = {}
    for key, value in resource.items():
        lowered = key.lower()
        if key in ALWAYS_RETURNED:
            selected[key] = value
        elif lowered in wanted:
            subs = wanted[lowered]
            if subs is None:
                selected[key] = value
            elif isinstance(value, (dict, list)):
                selected[key] = _sub_attributes(value, subs)
    return selected


def _wanted_attributes(attributes: str) -> dict[str, set[str] | None]:
    """Lower-cased attribute -> the lower-cased sub-attributes asked for, None when all of it is: asking
    for the whole attribute wins over asking for parts of it, in either order."""
    wanted: dict[str, set[str] | None] = {}
    for raw in attributes.split(","):
        name = raw.strip()
        if not name:
            continue
        if name.lower().startswith(USER_SCHEMA.lower() + ":"):
            name = name[len(USER_SCHEMA) + 1 :]
        top, _dot, sub = name.partition(".")
        key = top.lower()
        if not sub:
            wanted[key] = None
        elif key not in wanted:
            wanted[key] = {sub.lower()}
        else:
            subs = wanted[key]
            if subs is not None:
                subs.add(sub.lower())
    return wanted


def _sub_attributes(value: dict[str, Any] | list[Any], subs: set[str]) -> dict[str, Any] | list[Any]:
    """The `subs` parts of a complex attribute, or of each complex value of a multi-valued one."""
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k.lower() in subs}
    return [
        {k: v for k, v in item.items() if k.lower() in subs} if isinstance(item, dict) else item
        for item in value
    ]


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
    count = min(MAX_COUNT, max(0, _int_param(request, "count", DEFAULT_COUNT)))
    attributes = request.param("attributes")
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
        wants_groups = not attributes or "groups" in attributes.lower()
        groups = _groups_of(state, window) if wants_groups else {}
        resources = [
            _selected(user_json(emulator, member, groups.get(member.index, [])), attributes)
            for member in window
        ]
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

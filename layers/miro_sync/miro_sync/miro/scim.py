"""Miro SCIM 2.0 client (``/Users``): look users up, page through all of them, suspend, delete.

SCIM has fixed limits per 30 s per operation class (GET 200, PATCH 100, DELETE 20), so it is paced
client-side with sliding windows; 429s wait for Retry-After/reset like the REST client. Guests and
external users are invisible to SCIM (404 -> ``MiroNotFound``); the last admin cannot be
deactivated or deleted (409 -> ``MiroConflict``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from miro_sync.miro.base import MiroClientBase, model_parser, no_content
from miro_sync.miro.errors import AuthHint, MiroNotFound, MiroProtocolError
from miro_sync.miro.models import SCIM_PATCH_OP, ScimListResponse, ScimUser
from miro_sync.miro.pacing import Pacer, WindowPacer

_SCIM_HINT = AuthHint(scope="SCIM API token", role="Company Admin")
# GET /Users `count`: "set to 100 by default and the maximum value allowed for this parameter is 1000"
# (Miro's OpenAPI spec, listUsers; shared/miro-openapi/spec.json). A full listing of 100,000 users is
# 100 requests instead of 1,000.
MAX_SCIM_COUNT = 1000


def scim_string(value: str) -> str:
    """A SCIM filter string literal (JSON string escaping: backslash and double quote)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


_parse_user = model_parser(ScimUser)
_parse_list = model_parser(ScimListResponse)


class MiroScimClient(MiroClientBase):
    def _default_pacer(self) -> Pacer:
        return WindowPacer()

    def __repr__(self) -> str:
        return f"MiroScimClient(base_url={self._http.base_url!r})"

    def find_user_by_username(self, email: str) -> ScimUser | None:
        """The SCIM user whose userName is ``email`` (case-insensitive, as SCIM compares userName)."""
        wanted = email.strip().casefold()
        page = self._list(filter=f"userName eq {scim_string(email.strip())}", start_index=1, count=10)
        matches = [user for user in page.resources if user.user_name.casefold() == wanted]
        if len(matches) > 1:
            raise MiroProtocolError(f"SCIM returned {len(matches)} users for one userName", path="/Users")
        return matches[0] if matches else None

    def iter_user_pages(
        self,
        filter: str | None = None,
        count: int = MAX_SCIM_COUNT,
        start_index: int = 1,
        attributes: Sequence[str] | None = None,
    ) -> Iterator[ScimListResponse]:
        """SCIM list pages from ``start_index`` (1-based; a caller that knows ``totalResults`` can
        fetch pages concurrently); raises if Miro stops before ``totalResults``. ``count`` is capped
        at Miro's maximum (1000). ``attributes`` (e.g. ``("userName", "displayName")``) asks for
        those only (``id`` always comes): smaller pages; a server ignoring it costs nothing but size."""
        count = max(1, min(count, MAX_SCIM_COUNT))
        start_index = max(1, start_index)
        while True:
            page = self._list(filter=filter, start_index=start_index, count=count, attributes=attributes)
            yield page
            received = len(page.resources)
            if received == 0:
                if start_index <= page.total_results:
                    # A short listing must never look like "these users were removed".
                    raise MiroProtocolError(
                        f"empty SCIM page at startIndex={start_index} although totalResults="
                        f"{page.total_results}",
                        path="/Users",
                    )
                return
            start_index += received
            if start_index > page.total_results:
                return

    def iter_users(self, filter: str | None = None, count: int = MAX_SCIM_COUNT) -> Iterator[ScimUser]:
        for page in self.iter_user_pages(filter=filter, count=count):
            yield from page.resources

    def get_user(self, user_id: str) -> ScimUser:
        return self._http.request("GET", f"/Users/{user_id}", _parse_user, hint=_SCIM_HINT)

    def set_active(self, user_id: str, active: bool) -> ScimUser:
        body = {
            "schemas": [SCIM_PATCH_OP],
            "Operations": [{"op": "Replace", "path": "active", "value": active}],
        }
        # Idempotent (setting the same value twice is harmless), so 5xx/timeouts are retried.
        return self._http.request("PATCH", f"/Users/{user_id}", _parse_user, json=body, hint=_SCIM_HINT)

    def delete_user(self, user_id: str) -> None:
        try:
            self._http.request("DELETE", f"/Users/{user_id}", no_content, hint=_SCIM_HINT)
        except MiroNotFound:
            # Our own earlier attempt (whose answer was lost) already deleted the user.
            if self._http.may_have_applied:
                return
            raise

    def _list(
        self, *, filter: str | None, start_index: int, count: int, attributes: Sequence[str] | None = None
    ) -> ScimListResponse:
        params: dict[str, str | int] = {"startIndex": start_index, "count": count}
        if filter:
            params["filter"] = filter
        if attributes:
            params["attributes"] = ",".join(attributes)
        return self._http.request("GET", "/Users", _parse_list, params=params, hint=_SCIM_HINT)

"""What the Miro REST and SCIM clients share: the constructor (base URL, token provider, connection
pool, pacer, retries, deadline, stats: one ``MiroHttp``) and the parsers of Miro's answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

import httpx
from pydantic import BaseModel

from miro_sync.miro.deadline import InvocationDeadline
from miro_sync.miro.expiring_token import as_token_provider
from miro_sync.miro.http import Clock, MiroHttp, RequestStats, Sleep
from miro_sync.miro.models import CursorPage
from miro_sync.miro.pacing import Pacer
from miro_sync.miro.token_provider import TokenProvider

if TYPE_CHECKING:
    from typing_extensions import Unpack

ModelT = TypeVar("ModelT", bound=BaseModel)
PageT = TypeVar("PageT", bound=CursorPage[Any])


class HttpOptions(TypedDict, total=False):
    """What a client hands on to its ``MiroHttp``; left out, ``MiroHttp``'s defaults apply (a shared
    pool for the base URL, 6 attempts, the real clock and sleep, new stats, no deadline)."""

    http: httpx.Client | None
    max_attempts: int
    sleep: Sleep
    clock: Clock
    stats: RequestStats | None
    rate_limit_jitter: float
    deadline: InvocationDeadline | None


class ClientOptions(HttpOptions, total=False):
    """The keyword arguments every client takes."""

    pacer: Pacer | None  # None: the client's own default (``_default_pacer``)


class MiroClientBase:
    """A client on one ``MiroHttp``. Subclasses say which pacer they get when none is passed."""

    def __init__(self, base_url: str, token: TokenProvider | str, **options: Unpack[ClientOptions]) -> None:
        pacer = options.pop("pacer", None)
        http_options: HttpOptions = options
        self._http = MiroHttp(
            base_url,
            as_token_provider(token),
            pacer=pacer if pacer is not None else self._default_pacer(),
            **http_options,
        )

    def _default_pacer(self) -> Pacer:
        raise NotImplementedError

    @property
    def stats(self) -> RequestStats:
        return self._http.stats


def model_parser(model: type[ModelT]) -> Callable[[httpx.Response], ModelT]:
    def parse(response: httpx.Response) -> ModelT:
        return model.model_validate_json(response.content)

    return parse


def page_parser(model: type[PageT]) -> Callable[[httpx.Response], PageT]:
    """Parse a cursor page and reject one whose ``size`` disagrees with its data (a truncated page)."""

    def parse(response: httpx.Response) -> PageT:
        page = model.model_validate_json(response.content)
        if page.size is not None and page.size != len(page.data):
            raise ValueError(f"page says size={page.size} but carries {len(page.data)} items")
        return page

    return parse


def no_content(response: httpx.Response) -> None:
    return None

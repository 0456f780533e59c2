"""Live pages: server-sent events carrying HTML fragments, which htmx's SSE extension swaps
into the page (``hx-ext="sse" sse-connect="<url>" sse-swap="<event>"``). No full-page
polling in the browser: the console looks for changes on the person's behalf every
``LEGATION_CONSOLE_LIVE_INTERVAL_SECONDS`` and sends a fragment only when it changed.

To make a part of a page live: a route returning :func:`live_fragments` with a function that
renders the fragment (:func:`~legation_console.adapters.rendering.render_fragment`) from a
fresh gRPC call, and the attributes above on the element to replace.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import StreamingResponse

from legation_console.adapters.rendering import console
from legation_console.adapters.services import ServiceError

log = logging.getLogger(__name__)


def sse_event(event: str, html: str) -> str:
    """One server-sent event whose data is ``html`` (a ``data:`` line per line)."""
    lines = html.splitlines() or [""]
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def _event_stream(events: AsyncIterator[str]) -> StreamingResponse:
    """The server-sent events response of ``events`` (never cached, nor buffered by a proxy)."""
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def live_fragments(
    request: Request,
    event: str,
    render: Callable[[], Awaitable[str]],
    on_error: Callable[[ServiceError], str],
) -> StreamingResponse:
    """A stream of ``event`` events: ``render()`` now and whenever its HTML changes, until
    the browser goes away. A failing service call sends ``on_error``'s fragment and the
    stream goes on (the next look may succeed)."""
    app = console(request)

    async def stream() -> AsyncIterator[str]:
        app.metrics.live_streams.inc()
        last = None
        try:
            while not await request.is_disconnected():
                try:
                    html = await render()
                except ServiceError as error:
                    log.warning("live update failed", extra={"code": error.code.name})
                    html = on_error(error)
                if html != last:
                    yield sse_event(event, html)
                    last = html
                else:
                    yield ": still here\n\n"  # a comment: keeps proxies from timing out
                await asyncio.sleep(app.live_interval_seconds)
        finally:
            app.metrics.live_streams.dec()

    return _event_stream(stream())


def streamed_fragments(
    request: Request,
    event: str,
    fragments: AsyncIterator[str],
    on_error: Callable[[ServiceError], str],
) -> StreamingResponse:
    """A stream of ``event`` events from a service's own stream (a gRPC server stream turned
    into HTML fragments), until it ends or the browser goes away; a failure sends
    ``on_error``'s fragment and ends the stream (the browser's EventSource reconnects)."""
    pairs = ((event, html) async for html in fragments)
    return _relayed(request, pairs, on_error, event, "live stream failed")


def finished_fragments(
    request: Request,
    fragments: AsyncIterator[tuple[str, str]],
    on_error: Callable[[ServiceError], str],
    last_event: str = "done",
) -> StreamingResponse:
    """A stream of ``(event, html)`` pairs for work that ends (a report being drawn): the
    element that shows it closes its EventSource on ``last_event``
    (``sse-close="done"``), so the browser does not start the work again. A failure is sent
    as ``last_event`` with ``on_error``'s fragment."""
    return _relayed(request, fragments, on_error, last_event, "stream of work failed")


def _relayed(
    request: Request,
    fragments: AsyncIterator[tuple[str, str]],
    on_error: Callable[[ServiceError], str],
    error_event: str,
    failure: str,
) -> StreamingResponse:
    """``fragments`` as events until they end or the browser goes away; a failure is logged
    as ``failure`` and sent as ``error_event`` with ``on_error``'s fragment, ending it."""
    app = console(request)

    async def stream() -> AsyncIterator[str]:
        app.metrics.live_streams.inc()
        try:
            async for event, html in fragments:
                yield sse_event(event, html)
                if await request.is_disconnected():
                    return
        except ServiceError as error:
            log.warning(failure, extra={"code": error.code.name})
            yield sse_event(error_event, on_error(error))
        finally:
            app.metrics.live_streams.dec()

    return _event_stream(stream())

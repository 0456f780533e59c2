"""The console's pages, one module per section. Each module has ``ROUTES`` (Starlette
routes to its handlers) and ``SECTION`` (its entry in the navigation, or None). A new
section is a new module listed in :data:`PAGES`, in navigation order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from starlette.routing import BaseRoute

from legation_console.adapters.pages import engage, evaluate, home, listen, notify, publish
from legation_console.adapters.rendering import Section


class PageModule(Protocol):
    """What a section's module provides."""

    ROUTES: Sequence[BaseRoute]
    SECTION: Section | None


PAGES: tuple[PageModule, ...] = (home, listen, publish, engage, evaluate, notify)

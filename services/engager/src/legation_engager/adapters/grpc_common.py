"""What the engager's servicers (:mod:`.grpc_inbox`, :mod:`.grpc_questions`,
:mod:`.grpc_partners`) share: the page limit. Finding an entity a call names, and changing
it in its table, are :func:`legation_core.state.existing` and
:func:`legation_core.state.changing` (the publisher finds its posts the same way)."""

from __future__ import annotations

MAX_PAGE = 1000

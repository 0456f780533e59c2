"""The engager API's partner register calls, mixed into
:class:`~legation_engager.adapters.grpc_api.EngagerApi` (kept apart so each part of the
API stays small)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import grpc

from legation.engager.v1 import engager_service_pb2 as pb
from legation.events.v1 import engage_pb2
from legation_core.auth import current_caller
from legation_core.state import changing, existing
from legation_engager.adapters.store import EngagerState, activity_event
from legation_engager.domain import partners

_PARTNER = ("partner", "partner_id")


class PartnersApi:
    """RegisterPartner, GetPartner, ListPartners and RecordPartnerActivity over the
    partners' table."""

    state: EngagerState
    clock: Callable[[], datetime]

    def RegisterPartner(
        self, request: pb.RegisterPartnerRequest, context: grpc.ServicerContext
    ) -> pb.PartnerResponse:
        user, now = current_caller().user, self.clock()
        with self.state.partners.transaction() as transaction:
            current = transaction.get(request.partner_id)
            partner, activities = partners.register(current, request, user, now)
            transaction.put(partner, *[activity_event(a) for a in activities])
        return pb.PartnerResponse(partner=partner)

    def _partner(self, partner_id: str) -> engage_pb2.PartnerState:
        return existing(self.state.partners, *_PARTNER, partner_id)

    def GetPartner(
        self, request: pb.GetPartnerRequest, context: grpc.ServicerContext
    ) -> pb.PartnerResponse:
        return pb.PartnerResponse(partner=self._partner(request.partner_id))

    def ListPartners(
        self, request: pb.ListPartnersRequest, context: grpc.ServicerContext
    ) -> pb.ListPartnersResponse:
        return pb.ListPartnersResponse(
            partners=[
                p
                for p in self.state.partners.all()
                if (not request.issue_id or request.issue_id in p.issue_ids)
                and (not request.country or request.country in p.countries)
                and (not request.stage or p.stage == request.stage)
            ]
        )

    def RecordPartnerActivity(
        self, request: pb.RecordPartnerActivityRequest, context: grpc.ServicerContext
    ) -> pb.PartnerResponse:
        user, now = current_caller().user, self.clock()
        table = self.state.partners
        with changing(table, *_PARTNER, request.partner_id) as (transaction, current):
            partner, activity = partners.record_activity(current, request, user, now)
            if activity is not None:
                transaction.put(partner, activity_event(activity, request.campaign_id))
        return pb.PartnerResponse(partner=partner)

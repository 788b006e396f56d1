"""GET /events: the live event stream (SSE) for operator screens and API clients."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from contact_center.events.hub import hub_for
from contact_center.inbox.visibility import sees_event
from contact_center.web.session import Operator
from contact_center.routes import CheckedRoute

router = APIRouter(tags=["live events"], route_class=CheckedRoute)


@router.get("/events")
async def events(request: Request, user: Operator,
                 since: str | None = Query(None, description="Resume after this event id (`<epoch>:<number>`).")):
    """Server-sent events: `message.created`, `message.status`, `conversation.updated` and `resync` (reload
    your data: what you missed is no longer known). Reconnect with `Last-Event-ID` (browsers do it by
    themselves) or `?since=` to get what happened in between. Only events of conversations you may
    see: agents get those of unassigned conversations and their own."""
    hub = hub_for(request.app)
    last_seen = request.headers.get("last-event-id") or since
    return StreamingResponse(hub.stream(last_seen, sees_event(user)), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

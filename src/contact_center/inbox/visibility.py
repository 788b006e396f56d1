"""Who may see a conversation, and so its messages: one rule for every path that reveals them
(lists, gets, timelines, fragments, searches, the live stream).

Supervisors and admins see every conversation. Agents see the unassigned ones and their own: a
conversation another agent is handling is theirs alone. A message is visible exactly when its
conversation is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import or_, select

from contact_center.auth.models import Role, User
from contact_center.inbox.models import Conversation
from contact_center.messaging.models import Message


def is_staff(user: User) -> bool:
    return user.role_enum.includes(Role.supervisor)


def can_see(user: User, conversation: Conversation) -> bool:
    return is_staff(user) or conversation.assignee_id in (None, user.id)


def visible_conversations(user: User):
    """The SQL condition on Conversation for what `user` may see; None when it is everything."""
    if is_staff(user):
        return None
    return or_(Conversation.assignee_id.is_(None), Conversation.assignee_id == user.id)


def visible_messages(user: User):
    """The SQL condition on Message for what `user` may see; None when it is everything."""
    condition = visible_conversations(user)
    if condition is None:
        return None
    return Message.conversation_id.in_(select(Conversation.id).where(condition))


def sees_event(user: User) -> Callable[[str, Mapping[str, Any]], bool]:
    """Whether `user`'s live stream carries an event (kind, data). Events about a conversation
    carry its assignee when it was announced (and, for a change of hands, the one before): an
    agent gets those of conversations that are, or were until this change, theirs or nobody's
    (so a conversation someone else takes leaves their list too). An event about a conversation
    that does not say whose it is goes to staff only."""
    if is_staff(user):
        return lambda kind, data: True
    user_id = user.id  # the stream outlives the request's session

    def sees(kind: str, data: Mapping[str, Any]) -> bool:
        if "conversation_id" not in data:
            return True  # not about a conversation
        if "assignee_id" not in data:
            return False
        before = data.get("previous_assignee_id", data["assignee_id"])
        return data["assignee_id"] in (None, user_id) or before in (None, user_id)

    return sees

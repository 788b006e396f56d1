"""Every table, imported in one place so Alembic and tests see the whole schema."""

from contact_center.audit.models import AuditEntry
from contact_center.auth.models import ApiToken, LoginFailure, UiSession, User
from contact_center.campaigns.models import Campaign
from contact_center.channels.models import Channel, WhatsAppTemplate
from contact_center.contacts.models import (
    Contact, ContactField, ContactFieldValue, ContactIdentifier, ContactImport, ContactTag,
)
from contact_center.db import Base
from contact_center.inbox.models import Conversation, ConversationEvent, QuickReply
from contact_center.messaging.models import Message, MessageAttempt
from contact_center.odoo.models import OdooSyncState
from contact_center.privacy.models import ErasedNumber
from contact_center.reports.models import REPORT_INDEXES, ConversationTimes, HandledDay, MessageDay, ReplyDay
from contact_center.templates.models import Template
from contact_center.webhooks.models import WebhookEvent

__all__ = [
    "ApiToken", "AuditEntry", "Base", "Campaign", "Channel", "Contact", "ContactField", "ContactFieldValue",
    "ContactIdentifier", "ContactImport", "ContactTag", "Conversation", "ErasedNumber",
    "ConversationEvent", "WhatsAppTemplate",
    "REPORT_INDEXES", "ConversationTimes", "HandledDay", "MessageDay", "ReplyDay",  # the reports' roll-ups and indexes
    "LoginFailure", "Message", "MessageAttempt", "OdooSyncState", "QuickReply", "Template", "UiSession", "User",
    "WebhookEvent",
]

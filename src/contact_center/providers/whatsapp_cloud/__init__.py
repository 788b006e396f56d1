"""WhatsApp Business Cloud API (Meta's Graph API): the WhatsApp channel's provider."""

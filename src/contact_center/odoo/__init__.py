"""Odoo partner sync: contacts from res.partner over Odoo's external XML-RPC API, and the
messages of a synced contact as notes in its partner's chatter."""

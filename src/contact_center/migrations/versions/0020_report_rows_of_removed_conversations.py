"""report_conversations: a conversation's report row goes when the conversation does

A merge of two contacts joins their conversations on the same channel and removes the newer
(contacts/merge.py): its row in report_conversations stayed. On SQLite, which gives a new row the
highest id plus one, the next conversation then got the removed one's id, and its report row could
not be inserted: every inbound message that opened a conversation failed. A trigger now removes
the row with the conversation, whichever code removes it; the upgrade removes the rows left behind.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-11 10:00:00
"""

from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None

REMOVE = "DELETE FROM report_conversations WHERE conversation_id = OLD.id"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""CREATE FUNCTION report_conversation_removed() RETURNS trigger LANGUAGE plpgsql AS $$
                       BEGIN {REMOVE}; RETURN NULL; END $$""")
        op.execute("CREATE TRIGGER report_conversation_removed AFTER DELETE ON conversations FOR EACH ROW "
                   "EXECUTE FUNCTION report_conversation_removed()")
    else:
        op.execute(f"CREATE TRIGGER report_conversation_removed AFTER DELETE ON conversations BEGIN {REMOVE}; END")
    op.execute("DELETE FROM report_conversations WHERE NOT EXISTS "
               "(SELECT 1 FROM conversations c WHERE c.id = report_conversations.conversation_id)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER report_conversation_removed ON conversations")
        op.execute("DROP FUNCTION report_conversation_removed()")
    else:
        op.execute("DROP TRIGGER report_conversation_removed")

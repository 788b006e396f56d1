"""audit_log: the actor's kind, token, campaign and address, a readable summary; append-only

Entries say who acted (a user in the UI, an API token, a campaign, the system), from where, and a
one-line summary. Indexes serve the audit page's filters newest first. Triggers refuse UPDATE and
DELETE on both databases; the only update allowed is an LGPD erasure's redaction, which stamps
`redacted_at` and may change nothing but `summary` and `detail`.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-10 10:00:00
"""

import sqlalchemy as sa
from alembic import op

import contact_center.db

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

# An update may only redact an entry, which stamps it: who, what, when and on what stay as written.
# (Twice is possible: an entry naming two customers loses each one's data at their own erasure.)
_REDACTION_ONLY = ("NEW.redacted_at IS NOT NULL AND NEW.id = OLD.id "
                   "AND NEW.at = OLD.at AND NEW.action = OLD.action AND NEW.subject_type = OLD.subject_type "
                   "AND NEW.subject_id IS NOT DISTINCT FROM OLD.subject_id AND NEW.via = OLD.via "
                   "AND NEW.actor_kind = OLD.actor_kind AND NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id "
                   "AND NEW.token_id IS NOT DISTINCT FROM OLD.token_id "
                   "AND NEW.campaign_id IS NOT DISTINCT FROM OLD.campaign_id")
MESSAGE = "audit_log is append-only"


def upgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor_kind', sa.String(length=8), server_default='system', nullable=False))
        batch_op.add_column(sa.Column('token_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('campaign_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('client_address', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('summary', sa.String(length=300), server_default='', nullable=False))
        batch_op.add_column(sa.Column('redacted_at', contact_center.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.drop_index('ix_audit_log_subject')
        batch_op.create_index('ix_audit_log_subject', ['subject_type', 'subject_id', 'id'], unique=False)
        batch_op.create_index('ix_audit_log_actor', ['actor_id', 'id'], unique=False)
        batch_op.create_index('ix_audit_log_action', ['action', 'id'], unique=False)
    # Entries written before: a user acted when one is named, else the system.
    op.execute("UPDATE audit_log SET actor_kind = 'user' WHERE actor_id IS NOT NULL")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
            CREATE FUNCTION audit_log_append_only() RETURNS trigger AS $$
            BEGIN
                IF TG_OP = 'UPDATE' AND ({_REDACTION_ONLY}) THEN
                    RETURN NEW;
                END IF;
                RAISE EXCEPTION '{MESSAGE}';
            END $$ LANGUAGE plpgsql""")
        op.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
                   "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()")
    else:
        op.execute(f"CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
                   f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")
        sqlite_check = _REDACTION_ONLY.replace("IS NOT DISTINCT FROM", "IS")
        op.execute(f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log WHEN NOT ({sqlite_check}) "
                   f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_log_append_only ON audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    else:
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_action')
        batch_op.drop_index('ix_audit_log_actor')
        batch_op.drop_index('ix_audit_log_subject')
        batch_op.create_index('ix_audit_log_subject', ['subject_type', 'subject_id'], unique=False)
        for column in ('redacted_at', 'summary', 'client_address', 'campaign_id', 'token_id', 'actor_kind'):
            batch_op.drop_column(column)

"""mail queue: outgoing mail, encrypted, sent by a background worker with retries

Revision ID: 0010c
Revises: 0010a
Create Date: 2026-11-27 07:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0010c'
down_revision: str | None = '0010a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('mail_queue',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('recipient_index', sa.String(length=64), nullable=False),
    sa.Column('recipient_ct', sa.LargeBinary(), nullable=False),
    sa.Column('subject_ct', sa.LargeBinary(), nullable=False),
    sa.Column('body_ct', sa.LargeBinary(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', gateway.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lease_until', gateway.adapters.db.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', gateway.adapters.db.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_queue'))
    )
    with op.batch_alter_table('mail_queue', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_queue_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_queue_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_queue_recipient_index'), ['recipient_index'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mail_queue', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_queue_recipient_index'))
        batch_op.drop_index(batch_op.f('ix_mail_queue_next_attempt_at'))
        batch_op.drop_index(batch_op.f('ix_mail_queue_created_at'))
    op.drop_table('mail_queue')

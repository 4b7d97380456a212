"""staff console: staff members, their sessions, and the log of their actions

Revision ID: 0012b_staff_console
Revises: 0011_address_spaces
Create Date: 2026-11-27 11:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0012b_staff_console'
down_revision: str | None = '0011_address_spaces'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Time = gateway.adapters.db.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        'staff_members',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('password_hash', sa.String(length=255), nullable=False),
        sa.Column('totp_secret_ct', sa.LargeBinary(), nullable=True),
        sa.Column('totp_enabled_at', _Time(timezone=True), nullable=True),
        sa.Column('totp_last_step', sa.BigInteger(), nullable=True),
        sa.Column('created_at', _Time(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_members')),
        sa.UniqueConstraint('name', name=op.f('uq_staff_members_name')),
    )
    op.create_table(
        'staff_sessions',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('staff_id', sa.String(length=40), nullable=False),
        sa.Column('enrolled', sa.Boolean(), nullable=False),
        sa.Column('created_at', _Time(timezone=True), nullable=False),
        sa.Column('expires_at', _Time(timezone=True), nullable=False),
        sa.Column('last_seen_at', _Time(timezone=True), nullable=False),
        sa.Column('revoked_at', _Time(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['staff_id'], ['staff_members.id'],
                                name=op.f('fk_staff_sessions_staff_id_staff_members'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_sessions')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_staff_sessions_token_hash')),
    )
    op.create_index(op.f('ix_staff_sessions_staff_id'), 'staff_sessions', ['staff_id'])
    op.create_table(
        'staff_log',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'),
                  autoincrement=True, nullable=False),
        sa.Column('staff', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=40), nullable=False),
        sa.Column('subject', sa.String(length=100), nullable=True),
        sa.Column('ip', sa.String(length=45), nullable=True),
        sa.Column('at', _Time(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_log')),
    )
    op.create_index(op.f('ix_staff_log_at'), 'staff_log', ['at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_staff_log_at'), table_name='staff_log')
    op.drop_table('staff_log')
    op.drop_index(op.f('ix_staff_sessions_staff_id'), table_name='staff_sessions')
    op.drop_table('staff_sessions')
    op.drop_table('staff_members')

"""privacy, second pass: encrypted security-log addresses and audit reasons, last login
and inactivity notices, objection to optional processing, the legal-request register

`ip` and `reason` stay for rows written before this version: they are read as a
fallback, and the retention task encrypts them into `ip_ct`/`reason_ct` and clears them
on its first run (migrations have no key).

Revision ID: 0012a_privacy_second_pass
Revises: 0011_address_spaces
Create Date: 2026-11-27 11:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0012a_privacy_second_pass'
down_revision: str | None = '0012c_payment_block_height'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_When = gateway.adapters.db.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table('security_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ip_ct', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason_ct', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('last_login_at', _When(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('inactivity_notice_at', _When(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column('optional_processing_objected_at', _When(timezone=True),
                                      nullable=True))
    op.create_table(
        'legal_requests',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('received_at', _When(timezone=True), nullable=False),
        sa.Column('summary_ct', sa.LargeBinary(), nullable=False),
        sa.Column('notify_allowed', sa.Boolean(), nullable=False),
        sa.Column('hold_lifted_at', _When(timezone=True), nullable=True),
        sa.Column('recorded_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', _When(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_legal_requests')),
    )
    op.create_table(
        'legal_request_accounts',
        sa.Column('request_id', sa.String(length=40), nullable=False),
        sa.Column('account_id', sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(['request_id'], ['legal_requests.id'],
                                name=op.f('fk_legal_request_accounts_request_id_legal_requests')),
        sa.PrimaryKeyConstraint('request_id', 'account_id',
                                name=op.f('pk_legal_request_accounts')),
    )
    with op.batch_alter_table('legal_request_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_legal_request_accounts_account_id'),
                              ['account_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('legal_request_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_legal_request_accounts_account_id'))
    op.drop_table('legal_request_accounts')
    op.drop_table('legal_requests')
    # Plain DROP COLUMN (SQLite 3.35+, PostgreSQL): a batch copy of `accounts` would have
    # to drop the table that invoices and sessions reference.
    for table, column in (('accounts', 'optional_processing_objected_at'),
                          ('accounts', 'inactivity_notice_at'),
                          ('accounts', 'last_login_at'),
                          ('audit_log', 'reason_ct'), ('security_log', 'ip_ct')):
        op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')

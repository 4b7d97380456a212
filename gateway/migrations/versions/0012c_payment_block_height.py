"""payments by block height: a new block finds the invoices whose payments just reached
their confirmations by an index, not by reading every open invoice.

Revision ID: 0012c_payment_block_height
Revises: 0011_address_spaces
Create Date: 2026-11-27 11:10:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0012c_payment_block_height'
down_revision: str | None = '0012d_prepaid_time'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_payments_coin_block_height', 'payments', ['coin', 'block_height'])
    op.create_index('ix_payments_coin_lock_height', 'payments', ['coin', 'lock_height'])
    op.create_index('ix_payments_coin_lock_time', 'payments', ['coin', 'lock_time'])


def downgrade() -> None:
    op.drop_index('ix_payments_coin_lock_time', table_name='payments')
    op.drop_index('ix_payments_coin_lock_height', table_name='payments')
    op.drop_index('ix_payments_coin_block_height', table_name='payments')

"""address spaces: derivation counters and invoice indexes per address space, cursors
per feed, payment locks

Derivation counters were keyed by coin; coins sharing a key (ETH and its tokens) must
draw from one counter, so they are keyed by the address space the chain family defines.
Today's only family (UTXO) names each coin's space, and each node's feed, after the coin:
existing rows move over unchanged and every counter carries on where it was.

Revision ID: 0011_address_spaces
Revises: 0010c
Create Date: 2026-11-27 08:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import gateway.adapters.db.types

revision: str = '0011_address_spaces'
down_revision: str | None = '0010c'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('derivation_counters', schema=None) as batch_op:
        batch_op.alter_column('coin', new_column_name='space',
                              existing_type=sa.String(length=10),
                              type_=sa.String(length=100), existing_nullable=False)
    with op.batch_alter_table('chain_cursors', schema=None) as batch_op:
        batch_op.alter_column('coin', new_column_name='feed',
                              existing_type=sa.String(length=10),
                              type_=sa.String(length=100), existing_nullable=False)
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('address_space', sa.String(length=100), nullable=True))
    op.execute("UPDATE invoices SET address_space = coin")
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.alter_column('address_space', existing_type=sa.String(length=100),
                              nullable=False)
        batch_op.drop_constraint('uq_invoices_coin_derivation_index', type_='unique')
        batch_op.create_unique_constraint('uq_invoices_address_space_derivation_index',
                                          ['address_space', 'derivation_index'])
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lock_height', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column(
            'lock_time', gateway.adapters.db.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_column('lock_time')
        batch_op.drop_column('lock_height')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint('uq_invoices_address_space_derivation_index', type_='unique')
        batch_op.create_unique_constraint('uq_invoices_coin_derivation_index',
                                          ['coin', 'derivation_index'])
        batch_op.drop_column('address_space')
    with op.batch_alter_table('chain_cursors', schema=None) as batch_op:
        batch_op.alter_column('feed', new_column_name='coin',
                              existing_type=sa.String(length=100),
                              type_=sa.String(length=10), existing_nullable=False)
    with op.batch_alter_table('derivation_counters', schema=None) as batch_op:
        batch_op.alter_column('space', new_column_name='coin',
                              existing_type=sa.String(length=100),
                              type_=sa.String(length=10), existing_nullable=False)

"""staff_log: the staff console's client addresses were kept in clear (`ip`), every failed
staff login's included. New rows encrypt the address (`ip_ct`, bound to the member's
name, like the security log's); the addresses of existing rows are cleared, not
encrypted: a migration does not hold the field key, and the staff log keeps its rows at
most `[retention] security_log_days` (30) anyway, so at most that much of the admin
page's "From" column is lost. The plain column goes.

Revision ID: 0019s_staff_log_ip
Revises: 0018n_retention_review
Create Date: 2026-12-07 13:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019s_staff_log_ip'
down_revision: str | None = '0018n_retention_review'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Cleared first, in place, so SQLite's secure_delete overwrites the old values before
    # the table is copied without the column. PostgreSQL keeps the old row versions in
    # the table's file until they are vacuumed and the space reused (as for any update);
    # `VACUUM FULL staff_log` after upgrading rewrites it at once (OPERATIONS.md).
    staff_log = sa.table('staff_log', sa.column('ip', sa.String))
    op.execute(staff_log.update().where(staff_log.c.ip.is_not(None)).values(ip=None))
    with op.batch_alter_table('staff_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ip_ct', sa.LargeBinary(), nullable=True))
        batch_op.drop_column('ip')


def downgrade() -> None:
    # The addresses are gone on purpose (the encrypted ones need the field key to read).
    with op.batch_alter_table('staff_log', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ip', sa.String(length=45), nullable=True))
        batch_op.drop_column('ip_ct')

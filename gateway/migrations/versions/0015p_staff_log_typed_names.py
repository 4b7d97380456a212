"""staff_log: failed staff logins kept whatever was typed as the name (a customer's email,
a password typed into the wrong field) in clear for the staff log's retention. Rows of
failed logins at a name that is no current member's keep only the marker of an unknown
name; the hash new rows carry needs the index key, which a migration does not hold.

Revision ID: 0015p_staff_log_typed_names
Revises: 0014y_email_undo_window
Create Date: 2026-12-07 09:45:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015p_staff_log_typed_names'
down_revision: str | None = '0014y_email_undo_window'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# gateway.services.staff.UNKNOWN_NAME, spelled out: a migration must not change when the
# service does.
UNKNOWN_NAME = '?'


def upgrade() -> None:
    staff_log = sa.table('staff_log', sa.column('staff', sa.String),
                         sa.column('action', sa.String))
    members = sa.table('staff_members', sa.column('name', sa.String))
    op.execute(staff_log.update()
               .where(staff_log.c.action == 'login_failed',
                      staff_log.c.staff.not_in(sa.select(members.c.name)))
               .values(staff=UNKNOWN_NAME))


def downgrade() -> None:
    # What was typed is gone on purpose; nothing to restore.
    pass

"""retention: when a ticket's, a message's and a contact's personal data were purged

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.models

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ('contact', 'ticket', 'message'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('purged_at', store.models.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in ('message', 'ticket', 'contact'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('purged_at')

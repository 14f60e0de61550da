"""outbox claims: who claimed a row and when, and since when a send may have reached the provider

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 23:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.models

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch_op.add_column(sa.Column('claimed_at', store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('unsure_since', store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_outbox_claimed_by', ['status', 'claimed_by'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_claimed_by')
        batch_op.drop_column('unsure_since')
        batch_op.drop_column('claimed_at')
        batch_op.drop_column('claimed_by')

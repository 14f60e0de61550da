"""channel memory: longer names and values (a door's memory about one citizen: a thread, held notices)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('channelcursor', schema=None) as batch_op:
        batch_op.alter_column(
            'name',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=64),
            type_=sqlmodel.sql.sqltypes.AutoString(length=255),
            existing_nullable=False,
        )
        batch_op.alter_column(
            'value',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=255),
            type_=sa.Text(),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table('channelcursor', schema=None) as batch_op:
        batch_op.alter_column(
            'value',
            existing_type=sa.Text(),
            type_=sqlmodel.sql.sqltypes.AutoString(length=255),
            existing_nullable=False,
        )
        batch_op.alter_column(
            'name',
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=255),
            type_=sqlmodel.sql.sqltypes.AutoString(length=64),
            existing_nullable=False,
        )

"""routing examples: texts with the department that handled them, for the department model

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.models

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('routingexample',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('department', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('created_at', store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_id')
    )
    with op.batch_alter_table('routingexample', schema=None) as batch_op:
        batch_op.create_index('ix_routingexample_digest', ['digest', 'department'], unique=False)
        batch_op.create_index(batch_op.f('ix_routingexample_department'), ['department'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('routingexample', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_routingexample_department'))
        batch_op.drop_index('ix_routingexample_digest')

    op.drop_table('routingexample')

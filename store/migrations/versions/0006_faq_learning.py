"""faq learning: staff decisions as labels (and learned variants), and thresholds refitted from them

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import store.models

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'faqlabel',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('entry_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column('text', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('language', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('variant', sa.Boolean(), nullable=False),
        sa.Column('ticket_id', sa.Integer(), nullable=True),
        sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('actor_name', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column('created_at', store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('forgotten_at', store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('folded_at', store.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['ticket_id'], ['ticket.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('faqlabel', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_faqlabel_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_faqlabel_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_faqlabel_ticket_id'), ['ticket_id'], unique=False)
    op.create_table(
        'faqfit',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('fitted_at', store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('labels', sa.Integer(), nullable=False),
        sa.Column('confidence', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('faqfit')
    with op.batch_alter_table('faqlabel', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_faqlabel_ticket_id'))
        batch_op.drop_index(batch_op.f('ix_faqlabel_entry_id'))
        batch_op.drop_index(batch_op.f('ix_faqlabel_created_at'))
    op.drop_table('faqlabel')

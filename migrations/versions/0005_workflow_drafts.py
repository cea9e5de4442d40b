"""workflow drafts: the builder's draft per workflow, its undo history, and what each version changed

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 13:40:22.915163

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('workflow_draft_revisions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('workflow_id', sa.String(length=36), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('trigger_type', sa.String(length=64), nullable=False),
    sa.Column('trigger_config', sa.JSON(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('organization_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('workflow_id', 'revision', name='uq_workflow_draft_revision')
    )
    with op.batch_alter_table('workflow_draft_revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workflow_draft_revisions_organization_id'), ['organization_id'],
                              unique=False)

    op.create_table('workflow_drafts',
    sa.Column('workflow_id', sa.String(length=36), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('trigger_type', sa.String(length=64), nullable=False),
    sa.Column('trigger_config', sa.JSON(), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('updated_by', sa.String(length=36), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('organization_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by'], ['users.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['workflow_id'], ['workflows.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('workflow_id')
    )
    with op.batch_alter_table('workflow_drafts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_workflow_drafts_organization_id'), ['organization_id'], unique=False)

    # The builder stores what publishing a version changed, in words, for the version list.
    with op.batch_alter_table('workflow_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('change_summary', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('workflow_versions', schema=None) as batch_op:
        batch_op.drop_column('change_summary')

    with op.batch_alter_table('workflow_drafts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workflow_drafts_organization_id'))

    op.drop_table('workflow_drafts')
    with op.batch_alter_table('workflow_draft_revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_workflow_draft_revisions_organization_id'))

    op.drop_table('workflow_draft_revisions')

"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

Written by `campo migrate` from this plan:

${plan}
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: str | Sequence[str] | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}

#: True when applying this revision loses data: Campo applies it only with --allow-data-loss.
campo_destructive: bool = ${repr(destructive)}


def upgrade() -> None:
    """Bring the schema to this revision."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Campo migrations go forward only."""
    raise RuntimeError(
        "Campo migrations go forward only: restore the previous YAML (git) and run "
        "'campo migrate'; a rename back needs 'renamed_from'."
    )

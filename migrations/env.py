"""Alembic environment of a Campo project, written by `campo migrate` (keep it in git).

`campo migrate` and `campo serve` run the revisions with their own connection
(``config.attributes["connection"]``) inside their transaction. Plain Alembic also works:
``alembic -c alembic.ini upgrade head`` with ``sqlalchemy.url`` set in the ini file.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import context

config = context.config


def run(connection: sa.engine.Connection) -> None:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    run(config.attributes["connection"])
else:
    engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        run(conn)
        conn.commit()

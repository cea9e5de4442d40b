"""The one helper through which organization-owned rows are queried."""
from sqlalchemy import Select, select

from atlas.errors import NotFound
from atlas.extensions import db


def scoped(model, organization_id: str) -> Select:
    """SELECT model rows belonging to one organization."""
    return select(model).where(model.organization_id == organization_id)


def get_scoped(model, organization_id: str, row_id: str, not_found: type[NotFound] = NotFound):
    """One row of the organization, or not_found: another organization's id looks exactly like a missing one."""
    row = db.session.scalar(scoped(model, organization_id).where(model.id == row_id))
    if row is None:
        raise not_found()
    return row

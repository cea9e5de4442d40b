"""One pagination block for every list endpoint."""
import math

from sqlalchemy import Select, func, select

from atlas.extensions import db


def paginate(query: Select, page: int, limit: int, *, tuples: bool = False) -> tuple[list, dict]:
    """Rows of one page (entities, or tuples for a query of several columns) and the pagination block."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    window = query.limit(limit).offset((page - 1) * limit)
    rows = db.session.execute(window).all() if tuples else list(db.session.scalars(window))
    return rows, {"total": total, "page": page, "limit": limit, "total_pages": math.ceil(total / limit) if total else 0}

"""One pagination block for every list endpoint."""
import math

from sqlalchemy import Select, func, select

from atlas.extensions import db


def paginate(query: Select, page: int, limit: int) -> tuple[list, dict]:
    """Rows of one page and the pagination block {total, page, limit, totalPages}."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = list(db.session.scalars(query.limit(limit).offset((page - 1) * limit)))
    return rows, {"total": total, "page": page, "limit": limit, "total_pages": math.ceil(total / limit) if total else 0}

"""Column helpers shared by the models."""
import uuid
from datetime import datetime, timezone

from sqlalchemy import DateTime, ForeignKey, String, TypeDecorator
from sqlalchemy.orm import Mapped, declared_attr, mapped_column


def new_id() -> str:
    """A random UUID in its canonical text form."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        """Normalise to UTC before storing."""
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        """Attach UTC where the database returned a naive value."""
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


def id_column() -> Mapped[str]:
    """The primary key: a UUID string, portable between SQLite and PostgreSQL."""
    return mapped_column(String(36), primary_key=True, default=new_id)


class OrgScoped:
    """Every row that belongs to an organization carries its id; tenancy.scoped() filters on it."""

    @declared_attr
    def organization_id(cls) -> Mapped[str]:
        return mapped_column(String(36), ForeignKey("organizations.id", ondelete="CASCADE"), index=True)

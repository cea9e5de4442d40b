"""Schemas shared by every resource: camelCase keys, trimmed strings, pagination and the error envelope."""
from marshmallow import Schema, ValidationError, fields, validate

from atlas.errors import camelcase

PAGE_LIMIT_MAX = 100
PAGE_MAX = 1_000_000  # keeps the row offset within a 64-bit integer (a database error otherwise)


class CamelSchema(Schema):
    """Python attributes in snake_case, JSON keys in camelCase; unknown keys are rejected."""

    def on_bind_field(self, field_name, field_obj):
        field_obj.data_key = camelcase(field_obj.data_key or field_name)


class Trimmed(fields.String):
    """A string with surrounding white space removed; blank counts as missing content."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise ValidationError("Must not be blank.")
        return text


class PageQuery(CamelSchema):
    """page and limit, as every list endpoint takes them."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=PAGE_MAX,
                                                                 error="page must be between 1 and 1000000."))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=PAGE_LIMIT_MAX,
                                                                   error="limit must be between 1 and 100."))


class PaginationSchema(CamelSchema):
    total = fields.Integer()
    page = fields.Integer()
    limit = fields.Integer()
    total_pages = fields.Integer()


class ValidationErrorItem(CamelSchema):
    field = fields.String(allow_none=True)
    message = fields.String()


class ErrorBody(CamelSchema):
    code = fields.String(metadata={"example": "WORKFLOW_NOT_FOUND"})
    message = fields.String()
    details = fields.Dict()
    timestamp = fields.String()
    request_id = fields.String()


class ApiErrorResponse(CamelSchema):
    """The one error envelope of every /api/v2 failure."""

    error = fields.Nested(ErrorBody)
    validation = fields.List(fields.Dict())

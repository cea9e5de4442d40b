"""/api/v2/contacts: the CRM's leads and members (list with search and tags, create, get, partial update)."""
from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from atlas.api import crm_schemas as s
from atlas.services import contacts as service

blp = Blueprint("contacts", __name__, url_prefix="/api/v2/contacts",
                description="Contacts: the CRM's leads and members")


def _audit(action: str, contact) -> None:
    g.audit_action, g.audit_target = action, ("contact", contact.id)


@blp.route("")
class Contacts(MethodView):
    @blp.arguments(s.ContactListQuery, location="query")
    @blp.response(200, s.ContactListResponse)
    def get(self, query):
        """List the organization's contacts, newest first"""
        rows, pagination = service.list_contacts(g.organization.id, **query)
        return {"contacts": rows, "pagination": pagination}

    @blp.arguments(s.ContactFields)
    @blp.response(201, s.ContactSchema)
    def post(self, body):
        """Create a contact (its tags are reported as tag_added events)"""
        g.audit_action = "contact.create"
        contact = service.create_contact(g.organization.id, body, source="api")
        _audit("contact.create", contact)
        return contact


@blp.route("/<contact_id>")
class ContactById(MethodView):
    @blp.response(200, s.ContactSchema)
    def get(self, contact_id):
        """One contact"""
        return service.get_contact(g.organization.id, contact_id)

    @blp.arguments(s.ContactFields)
    @blp.response(200, s.ContactSchema)
    def put(self, body, contact_id):
        """Update a contact (partial: only the fields sent change; tags replaces the set)"""
        g.audit_action = "contact.update"
        contact = service.update_contact(g.organization.id, contact_id, body, source="api")
        _audit("contact.update", contact)
        return contact

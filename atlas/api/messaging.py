"""/api/v2: Message templates, the outbox, action configuration and inbound SMS."""
from flask import g, make_response
from flask.views import MethodView
from flask_smorest import Blueprint

from atlas.api import messaging_schemas as s
from atlas.api.actions import _catalogue
from atlas.api.context import PUBLIC, access
from atlas.errors import ValidationFailed
from atlas.services import messaging as service
from atlas.services import templates

blp = Blueprint("messaging", __name__, url_prefix="/api/v2",
                description="Message templates, the outbox, action configuration and inbound SMS")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@blp.route("/config/actions")
class ActionConfig(MethodView):
    @blp.response(200, s.ActionConfigResponse)
    def get(self):
        """The step types, the organization's templates and the providers, for the builder"""
        org_id = g.organization.id
        return {"available_actions": _catalogue()["actions"], "custom_actions": [],
                "email_templates": [templates.template_dict(t) for t in templates.list_templates(org_id, "email")],
                "sms_templates": [templates.template_dict(t) for t in templates.list_templates(org_id, "sms")],
                "integrations": service.integrations()}


def _audit(action: str, template) -> None:
    """Name the audit entry and its target."""
    g.audit_action, g.audit_target = action, ("message_template", template.id)


def _template_routes(channel: str, path: str, create_schema, update_schema, prefix: str) -> None:
    """GET/POST on the collection and GET/PUT/DELETE on one template, for one channel."""

    @blp.route(f"/config/{path}", endpoint=f"{prefix}Templates")
    class Collection(MethodView):
        @blp.response(200, s.TemplateListResponse)
        def get(self):
            """The organization's templates on this channel, by name"""
            return {"templates": [templates.template_dict(t) for t in templates.list_templates(g.organization.id,
                                                                                              channel)]}

        @blp.arguments(create_schema)
        @blp.response(201, s.TemplateResponse)
        def post(self, body):
            """Create a template (the name is unique per channel, ignoring case)"""
            template = templates.create_template(g.organization.id, channel, body)
            _audit(f"{channel}_template.create", template)
            return {"template": templates.template_dict(template)}

    @blp.route(f"/config/{path}/<template_id>", endpoint=f"{prefix}TemplateById")
    class Item(MethodView):
        @blp.response(200, s.TemplateResponse)
        def get(self, template_id):
            """One template"""
            return {"template": templates.template_dict(templates.get_template(g.organization.id, channel,
                                                                               template_id))}

        @blp.arguments(update_schema)
        @blp.response(200, s.TemplateResponse)
        def put(self, body, template_id):
            """Update a template (partial: only the fields sent change)"""
            template = templates.update_template(g.organization.id, channel, template_id, body)
            _audit(f"{channel}_template.update", template)
            return {"template": templates.template_dict(template)}

        @blp.response(200, s.DeleteTemplateResponse)
        def delete(self, template_id):
            """Delete a template no workflow uses"""
            template = templates.delete_template(g.organization.id, channel, template_id)
            _audit(f"{channel}_template.delete", template)
            return {"success": True, "deleted_template": {"id": template.id, "name": template.name}}


_template_routes("email", "email-templates", s.EmailTemplateCreate, s.EmailTemplateUpdate, "Email")
_template_routes("sms", "sms-templates", s.SmsTemplateCreate, s.SmsTemplateUpdate, "Sms")


@blp.route("/outbox")
class Outbox(MethodView):
    @blp.arguments(s.OutboxQuery, location="query")
    @blp.response(200, s.OutboxResponse)
    def get(self, query):
        """Messages workflows sent, or could not send, newest first"""
        rows, pagination = service.list_outbox(g.organization.id, **query)
        return {"messages": rows, "pagination": pagination}


@blp.route("/sms/inbound")
@access(PUBLIC)
class SmsInbound(MethodView):
    atlas_form_body = True  # the SMS provider posts a form, not JSON

    @blp.arguments(s.InboundQuery, location="query")
    @blp.arguments(s.InboundSms, location="form")
    @blp.response(200, description="Empty TwiML")
    def post(self, query, form):
        """Replies from phones (Twilio-style form: From, Body, To): STOP opts out of SMS, START back in.

        The URL carries ?org=<organization id>&token=<token>; the messaging settings page shows it.
        """
        service.verify_inbound(query["org"], query["token"])
        if not form["sender"]:
            raise ValidationFailed("From is required.", validation=[{"field": "From", "message": "Required."}])
        service.receive_sms(query["org"], form["sender"], form["body"], form["to"])
        response = make_response(EMPTY_TWIML, 200)
        response.mimetype = "text/xml"
        return response

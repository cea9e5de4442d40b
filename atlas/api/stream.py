"""/api/v2/workflows/{id}/stream: live execution events over Server-Sent Events, and tickets to open it."""
from flask import g, request
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import fields

from atlas.api.context import ORG, STREAM, access
from atlas.api.schemas import CamelSchema
from atlas.realtime.stream import issue_ticket, stream_response
from atlas.services.workflows import get_workflow

blp = Blueprint("stream", __name__, url_prefix="/api/v2/workflows", description="Real-time execution events")


class StreamTicket(CamelSchema):
    ticket = fields.String()
    expires_in = fields.Integer(metadata={"description": "seconds; the ticket opens the stream once"})
    stream_url = fields.String()


@blp.route("/<workflow_id>/stream-tickets")
@access(ORG, safe=("POST",))
class StreamTickets(MethodView):
    @blp.response(201, StreamTicket)
    def post(self, workflow_id):
        """A single-use ticket for EventSource clients, which cannot send an Authorization header"""
        workflow = get_workflow(g.organization.id, workflow_id)
        ticket = issue_ticket(g.user.id, g.organization.id, workflow.id)
        return {**ticket, "stream_url": f"{request.root_path}/api/v2/workflows/{workflow.id}/stream?ticket="
                                        f"{ticket['ticket']}"}


@blp.route("/<workflow_id>/stream")
@access(STREAM)
class Stream(MethodView):
    @blp.response(200, description="text/event-stream: execution_started, step_completed, execution_waiting, "
                                   "execution_completed, execution_failed, workflow_updated, heartbeat")
    def get(self, workflow_id):
        """Live events of the workflow's runs (Bearer + X-Organization-ID, a ?ticket=, or a page's session)"""
        workflow = get_workflow(g.organization.id, workflow_id)
        return stream_response(workflow.id, request.headers.get("Last-Event-ID"))

"""Persistence: one module per aggregate, all imported here so Alembic sees every table."""
from atlas.models.accounts import Membership, Organization, Role, User
from atlas.models.audit import AuditLog
from atlas.models.crm import Contact, ContactStatus, ContactTag, CustomField, Form, FormSubmission, LeadSource
from atlas.models.drafts import WorkflowDraft, WorkflowDraftRevision
from atlas.models.execution import TERMINAL, Execution, ExecutionStatus, ExecutionStep
from atlas.models.gym import Booking, BookingStatus, ClassSession, ContactMembership, Payment, PlanStatus
from atlas.models.messaging import Message, MessageStatus, MessageTemplate, StaffNotification, StaffTask
from atlas.models.triggers import EnrollmentDecision, Event, TriggerFire, WorkflowTrigger
from atlas.models.webhooks import OrganizationSecret, WebhookDelivery, WebhookEndpoint, WebhookMessage
from atlas.models.workflow import Workflow, WorkflowStatus, WorkflowTag, WorkflowVersion

__all__ = ["TERMINAL", "AuditLog", "Booking", "BookingStatus", "ClassSession", "Contact", "ContactMembership",
           "ContactStatus", "ContactTag", "CustomField", "EnrollmentDecision", "Event", "Execution",
           "ExecutionStatus", "ExecutionStep", "Form", "FormSubmission", "LeadSource", "Membership", "Message",
           "MessageStatus", "MessageTemplate", "Organization", "OrganizationSecret", "Payment", "PlanStatus", "Role",
           "StaffNotification", "StaffTask", "TriggerFire", "User", "WebhookDelivery", "WebhookEndpoint",
           "WebhookMessage", "Workflow", "WorkflowDraft", "WorkflowDraftRevision", "WorkflowStatus", "WorkflowTag",
           "WorkflowTrigger", "WorkflowVersion"]

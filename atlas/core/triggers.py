"""Triggers: the catalog of what can start a workflow, each type's config schema, and the matcher.

An event of type X fires triggers of type X (a schedule fires `schedule`, staff fire `manual`). match() says whether
one event fits one trigger's config and, when it does not, why in words a gym's staff can act on. Date-based types
(membership_expiring, birthday) are evaluated daily by the scheduler, which builds their events; `schedule` fires on
its cron expression. Pure Python: croniter and jsonschema only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Mapping

from croniter import croniter
from jsonschema import Draft202012Validator

from atlas.core import conditions

EVENT, DAILY, SCHEDULED, ON_DEMAND = "event", "daily", "scheduled", "on_demand"
SCHEDULE_TYPES = ("immediate", "scheduled", "recurring", "cron")
CRON_SHORTCUTS = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@midnight")
ENVELOPE = ("type", "eventId", "occurredAt")  # added to every run's trigger data besides the payload

CATEGORIES = {
    "leads": ("Leads", "New leads and the forms they fill in."),
    "classes": ("Classes", "Bookings, no-shows and cancellations."),
    "memberships": ("Memberships", "Expiring and cancelled memberships."),
    "payments": ("Payments", "Failed payments."),
    "contacts": ("Contacts", "Tags added to or removed from a contact."),
    "dates": ("Dates & schedules", "Birthdays, and workflows that run on a schedule."),
    "integrations": ("Integrations", "Inbound webhooks, the API and staff starting a run by hand."),
}


@dataclass(frozen=True)
class Match:
    """Whether an event fits a trigger, and why (reason is a sentence; detail holds the values compared)."""

    matched: bool
    reason: str
    detail: dict = field(default_factory=dict)


Matcher = Callable[..., "Match | None"]  # (config, payload, contact, today) -> a mismatch, or None when it fits


@dataclass(frozen=True)
class TriggerType:
    """One entry of the catalog."""

    key: str
    category: str
    name: str
    description: str
    icon: str
    config_schema: dict
    sample_payload: dict
    timing: str = EVENT
    matcher: Matcher | None = None
    defaults: dict = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        """The event that fires it: always its own key."""
        return self.key

    @property
    def provides(self) -> list[str]:
        """The trigger.* data paths a run of this trigger can read."""
        return [f"trigger.{name}" for name in ENVELOPE] + sorted(_paths("trigger", self.sample_payload))

    def describe(self) -> dict:
        """The definition as the API serves it (snake_case; the schema camelCases it)."""
        return {"type": self.key, "key": self.key, "category": self.category, "name": self.name,
                "description": self.description, "icon": self.icon, "config_schema": self.config_schema,
                "sample_payload": self.sample_payload, "event_type": self.event_type,
                "date_based": self.timing == DAILY, "scheduled": self.timing == SCHEDULED,
                "provides": self.provides, "defaults": self.defaults}


def _paths(prefix: str, value: Any) -> set[str]:
    """Every dotted path into a sample payload's objects (lists are leaves)."""
    if not isinstance(value, Mapping):
        return set()
    found = set()
    for key, item in value.items():
        found.add(f"{prefix}.{key}")
        found |= _paths(f"{prefix}.{key}", item)
    return found


def _object(properties: dict | None = None, required: tuple = ()) -> dict:
    return {"type": "object", "properties": properties or {}, "required": list(required),
            "additionalProperties": False}


TEXT = {"type": "string", "minLength": 1, "maxLength": 120}
TEXT_LIST = {"type": "array", "items": TEXT, "minItems": 1, "maxItems": 50, "uniqueItems": True}
CLASS_FILTER = _object({"className": {**TEXT, "title": "Only this class (by name)"},
                        "classSessionId": {**TEXT, "title": "Only this class session"}})
CLASS_SAMPLE = {"bookingId": "bk_2041", "classSessionId": "cs_118", "className": "HIIT 45",
                "startsAt": "2026-11-26T18:00:00Z", "instructor": "Maya Ortiz", "location": "Studio A"}


def _norm(value: Any) -> str:
    return str(value).strip().casefold() if value is not None else ""


def _listed(values) -> str:
    return ", ".join(str(v) for v in values)


# --- matchers: each returns a Match(False, ...) when the config excludes the event, None when it fits ----------

def _lead_created(config, payload, contact, today=None):
    wanted = config.get("leadSources") or []
    source = payload.get("leadSource") or contact.get("lead_source")
    if not wanted or _norm(source) in {_norm(w) for w in wanted}:
        return None
    said = f"Lead source is {source!r}" if source else "The lead has no lead source"
    return Match(False, f"{said}; this trigger only takes {_listed(wanted)}.",
                 {"leadSource": source, "leadSources": wanted})


def _form_submitted(config, payload, contact, today=None):
    form_id = payload.get("formId")
    if _norm(form_id) == _norm(config.get("formId")):
        return None
    name = f" ({payload['formName']!r})" if payload.get("formName") else ""
    return Match(False, f"The form submitted is {form_id!r}{name}; this trigger waits for form {config['formId']!r}.",
                 {"formId": form_id, "expectedFormId": config["formId"]})


def _tag(verb: str) -> Matcher:
    def match(config, payload, contact, today=None):
        tag = payload.get("tag")
        if _norm(tag) == _norm(config.get("tag")):
            return None
        return Match(False, f"The tag {verb} is {tag!r}; this trigger waits for tag {config['tag']!r}.",
                     {"tag": tag, "expectedTag": config["tag"]})
    return match


def _class(config, payload, contact, today=None):
    for key, label in (("className", "class"), ("classSessionId", "class session")):
        wanted, actual = config.get(key), payload.get(key)
        if wanted and _norm(actual) != _norm(wanted):
            return Match(False, f"The {label} is {actual!r}; this trigger only takes {wanted!r}.",
                         {key: actual, "expected": wanted})
    return None


def days_until(payload: Mapping, today: date) -> int | None:
    """Days from today to the membership's expiry: the payload's daysUntilExpiry, else from expiresOn."""
    if isinstance(payload.get("daysUntilExpiry"), int):
        return payload["daysUntilExpiry"]
    try:
        return (date.fromisoformat(str(payload.get("expiresOn"))[:10]) - today).days
    except ValueError:
        return None


def _membership_expiring(config, payload, contact, today=None):
    wanted = config.get("daysBefore", 7)
    days = days_until(payload, today or datetime.now(timezone.utc).date())
    if days == wanted:
        return None
    said = "The event does not say when the membership expires" if days is None else \
        f"The membership expires in {days} day{'s' if days != 1 else ''}"
    return Match(False, f"{said}; this trigger fires {wanted} days before expiry.",
                 {"daysUntilExpiry": days, "daysBefore": wanted})


def _payment_failed(config, payload, contact, today=None):
    floor, amount = config.get("minAmountCents"), payload.get("amountCents")
    if floor is None or (isinstance(amount, (int, float)) and amount >= floor):
        return None
    currency = payload.get("currency") or ""
    said = f"The failed payment is {amount / 100:.2f} {currency}".rstrip() if isinstance(amount, (int, float)) \
        else "The event does not say how much the payment was"
    return Match(False, f"{said}; this trigger only takes payments of {floor / 100:.2f} {currency} or more."
                 .replace("  ", " "), {"amountCents": amount, "minAmountCents": floor})


def listens_on(config: Mapping | None, endpoint_id: str | None) -> bool:
    """Whether a webhook trigger with this config hears deliveries to the endpoint (no endpointId: every one)."""
    wanted = (config or {}).get("endpointId")
    return not wanted or wanted == endpoint_id


def _webhook(config, payload, contact, today=None):
    wanted = config.get("endpointId")
    if listens_on(config, payload.get("endpointId")):
        return None
    return Match(False, f"The webhook came to endpoint {payload.get('endpointId')!r}; this trigger listens on "
                        f"{wanted!r}.", {"endpointId": payload.get("endpointId"), "expected": wanted})


DURATION = {"type": "object", "required": ["amount", "unit"], "additionalProperties": False,
            "properties": {"amount": {"type": "integer", "minimum": 1},
                           "unit": {"enum": ["minutes", "hours", "days", "weeks"]}}}
SCHEDULE_SCHEMA = {
    **_object({"scheduleType": {"enum": ["recurring", "cron"]},
               "cronExpression": {"type": "string", "minLength": 1, "maxLength": 120,
                                  "description": "Five fields: minute hour day-of-month month day-of-week, read in "
                                                 "the organization's timezone."},
               "every": {**DURATION, "title": "Repeat every (recurring)"},
               "startAt": {"type": "string", "maxLength": 40, "description": "ISO 8601; the first recurring run."}},
              ("scheduleType",)),
    "allOf": [{"if": {"properties": {"scheduleType": {"const": "cron"}}}, "then": {"required": ["cronExpression"]}},
              {"if": {"properties": {"scheduleType": {"const": "recurring"}}}, "then": {"required": ["every"]}}],
}

_TYPES = [
    TriggerType("lead_created", "leads", "Lead created", "A new lead is added, optionally only from some lead sources.",
                "user-plus", _object({"leadSources": {**TEXT_LIST, "title": "Only these lead sources"}}),
                {"contactId": "c_5521", "leadSource": "website", "campaign": "spring-trial",
                 "interest": "Personal training", "createdAt": "2026-11-26T09:14:00Z"}, matcher=_lead_created),
    TriggerType("form_submitted", "leads", "Form submitted", "Someone fills in a given form (free trial, contact us).",
                "clipboard", _object({"formId": {**TEXT, "title": "Form"}}, ("formId",)),
                {"formId": "frm_free_trial", "formName": "Free trial pass", "submissionId": "sub_8812",
                 "fields": {"goal": "Lose 5 kg", "preferredTime": "evenings"}}, matcher=_form_submitted),
    TriggerType("tag_added", "contacts", "Tag added", "A tag is added to a contact, by staff or by a workflow.", "tag",
                _object({"tag": {**TEXT, "title": "Tag"}}, ("tag",)), {"tag": "trial-pass", "addedBy": "staff"},
                matcher=_tag("added")),
    TriggerType("tag_removed", "contacts", "Tag removed", "A tag is removed from a contact.", "tag-off",
                _object({"tag": {**TEXT, "title": "Tag"}}, ("tag",)), {"tag": "trial-pass", "removedBy": "workflow"},
                matcher=_tag("removed")),
    TriggerType("class_booked", "classes", "Class booked", "A contact books a class, optionally a given one.",
                "calendar-plus", CLASS_FILTER, CLASS_SAMPLE, matcher=_class),
    TriggerType("class_missed", "classes", "Class missed (no-show)", "A contact booked a class and did not come.",
                "calendar-x", CLASS_FILTER, {**CLASS_SAMPLE, "status": "no_show"}, matcher=_class),
    TriggerType("booking_cancelled", "classes", "Booking cancelled", "A contact cancels a class booking.",
                "calendar-minus", CLASS_FILTER, {**CLASS_SAMPLE, "cancelledAt": "2026-11-26T12:02:00Z",
                                                 "lateCancel": False}, matcher=_class),
    TriggerType("membership_expiring", "memberships", "Membership expiring",
                "A membership expires in N days (checked daily in the organization's timezone).", "hourglass",
                _object({"daysBefore": {"type": "integer", "minimum": 0, "maximum": 365, "default": 7,
                                        "title": "Days before expiry"}}),
                {"membershipId": "mem_301", "planName": "Unlimited Monthly", "expiresOn": "2026-12-03",
                 "daysUntilExpiry": 7, "autoRenew": False}, DAILY, _membership_expiring, {"daysBefore": 7}),
    TriggerType("membership_cancelled", "memberships", "Membership cancelled", "A member cancels their membership.",
                "id-card-off", _object(), {"membershipId": "mem_301", "planName": "Unlimited Monthly",
                                           "reason": "moving away", "endsOn": "2026-12-31"}),
    TriggerType("payment_failed", "payments", "Payment failed",
                "A payment fails, optionally only from a given amount up.", "credit-card-off",
                _object({"minAmountCents": {"type": "integer", "minimum": 0, "title": "Minimum amount (cents)"}}),
                {"paymentId": "pay_7781", "amountCents": 8900, "currency": "USD", "failureReason": "card_declined",
                 "membershipId": "mem_301"}, matcher=_payment_failed),
    TriggerType("birthday", "dates", "Birthday", "It is the contact's birthday (checked daily in their timezone).",
                "cake", _object(), {"birthday": "1994-11-26", "age": 32}, DAILY),
    TriggerType("schedule", "dates", "Schedule", "Runs every N minutes, hours, days or weeks, or on a cron expression.",
                "clock", SCHEDULE_SCHEMA, {"scheduledFor": "2026-11-30T09:00:00Z", "triggerKey": "primary"},
                SCHEDULED),
    TriggerType("webhook", "integrations", "Inbound webhook", "Another system posts to the workflow's webhook.",
                "webhook", _object({"endpointId": {**TEXT, "title": "Only this endpoint"}}),
                {"endpointId": "wh_42", "body": {"event": "lead", "email": "sarah@example.com"}},
                matcher=_webhook),
    TriggerType("manual", "integrations", "Manual", "Staff start the workflow for a contact, or the API does.",
                "hand", _object(), {"startedBy": "staff", "note": "Re-engage after injury"}, ON_DEMAND),
]
_CATALOG: dict[str, TriggerType] = {t.key: t for t in _TYPES}


class UnknownTriggerType(KeyError):
    """No trigger type has this key."""


def get(key: str) -> TriggerType:
    """A trigger type by key, or UnknownTriggerType."""
    try:
        return _CATALOG[key]
    except KeyError:
        raise UnknownTriggerType(key) from None


def all_types() -> list[TriggerType]:
    """The catalog in the builder's order."""
    return list(_TYPES)


def is_known(key: str) -> bool:
    return key in _CATALOG


def event_types() -> frozenset[str]:
    """The event types that can fire a trigger (others only resume waiting runs or reach goals)."""
    return frozenset(_CATALOG)


def categories() -> list[dict]:
    """The categories in use with how many trigger types each holds."""
    return [{"key": key, "name": name, "description": text, "count": sum(t.category == key for t in _TYPES)}
            for key, (name, text) in CATEGORIES.items()]


def with_defaults(key: str, config: Mapping | None) -> dict:
    """The config with the type's defaults filled in."""
    return {**get(key).defaults, **(config or {})}


# --- validation ------------------------------------------------------------------------------------------------

def check_config(key: str, config: Any) -> list[dict]:
    """Every problem of a trigger config, each {"path": "config.leadSources[0]", "message"}; [] when valid."""
    trigger_type = get(key)
    errors = sorted(Draft202012Validator(trigger_type.config_schema).iter_errors(config),
                    key=lambda e: list(e.absolute_path))
    problems = [{"path": _where(_error_path(e)), "message": e.message} for e in errors]
    if not problems and key == "schedule" and config.get("cronExpression"):
        message = check_cron(config["cronExpression"])
        problems += [{"path": "config.cronExpression", "message": message}] if message else []
    return problems


def _error_path(error) -> list:
    """Where the error is; a missing required property is placed at the property itself."""
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, Mapping):
        path += [next((k for k in error.validator_value if k not in error.instance), "")]
    return path


def _where(path) -> str:
    return "config" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def check_cron(expression: Any) -> str | None:
    """What is wrong with a cron expression (five fields, or a shortcut such as @daily), or None."""
    if not isinstance(expression, str) or not expression.strip():
        return "Enter a cron expression such as '0 9 * * 1' (Mondays at 09:00)."
    text = expression.strip()
    if not (text in CRON_SHORTCUTS or len(text.split()) == 5) or not croniter.is_valid(text):
        return (f"{expression!r} is not a valid cron expression; use five fields (minute hour day-of-month month "
                "day-of-week), e.g. '0 9 * * 1' for Mondays at 09:00.")
    return None


# --- matching --------------------------------------------------------------------------------------------------

def label(kind: str) -> str:
    """How staff read an event or trigger type: the catalog's name in quotes ("Class missed (no-show)"), or the
    type in words for events no trigger listens for ("class attended")."""
    return f"“{_CATALOG[kind].name}”" if kind in _CATALOG else f"“{kind.replace('_', ' ')}”"


def match(trigger_type: str, config: Mapping | None, event_type: str, payload: Mapping | None,
          contact: Mapping | None, today: date | None = None) -> Match:
    """Whether an event (type and payload, about this contact) fits a trigger of this type and config."""
    if not is_known(trigger_type):
        return Match(False, f"The trigger type {trigger_type!r} is not in the catalog; choose another trigger.",
                     {"triggerType": trigger_type})
    if event_type != trigger_type:
        return Match(False, f"The event is {label(event_type)}; this trigger waits for {label(trigger_type)}.",
                     {"eventType": event_type, "triggerType": trigger_type})
    trigger, config = get(trigger_type), with_defaults(trigger_type, config)
    miss = trigger.matcher(config, payload or {}, contact or {}, today) if trigger.matcher else None
    return miss or Match(True, f"The event is {label(event_type)} and fits this trigger's settings.",
                         {"eventType": event_type})


def explain_filter(condition: Any, data: Mapping, now: datetime) -> Match:
    """Whether an enrollment filter holds; when not, the first rule that failed and the value it saw."""
    outcome = conditions.explain(condition, data, now)
    if outcome["result"]:
        return Match(True, "The enrollment filter holds.")
    rule = outcome["failed"][0] if outcome["failed"] else None
    if rule is None:  # an empty `any` group: nothing to name
        return Match(False, "The enrollment filter failed: none of its 'any' rules can hold (the group is empty).")
    return Match(False, describe_rule(rule), {"failedRule": rule, "field": rule["field"], "actual": rule["actual"]})


def describe_rule(rule: Mapping) -> str:
    """A failed rule from conditions.explain in words: the rule and the actual value."""
    label = conditions.OPERATORS[rule["operator"]]["label"]
    expected = "" if rule["expected"] is None else f" {rule['expected']!r}"
    said = f"{rule['field']} {label}{expected}"
    if rule.get("negated"):
        said = f"not ({said})"
    actual = "the field is missing" if rule["actual"] is None else f"the actual value is {rule['actual']!r}"
    return f"The enrollment filter failed on {said}: {actual}."


# --- enrollment rules (workflow settings) -----------------------------------------------------------------------

REENROLLMENT = ("never", "always", "after_days")


@dataclass(frozen=True)
class EnrollmentRules:
    """The enrollment keys of a workflow's settings, with their defaults."""

    reenrollment: str = "always"
    reenrollment_days: int = 0
    one_active_run: bool = True
    exit_on_unsubscribe: bool = True
    exit_when_member: bool = False
    enrollment_filter: dict | None = None

    @classmethod
    def from_settings(cls, settings: Mapping | None) -> "EnrollmentRules":
        """Read the rules from settings (camelCase keys); check_settings has vetted them on save."""
        s = settings or {}
        return cls(reenrollment=s.get("reenrollment", "always"), reenrollment_days=s.get("reenrollmentDays") or 0,
                   one_active_run=s.get("oneActiveRunPerContact", True) is not False,
                   exit_on_unsubscribe=s.get("exitOnUnsubscribe", True) is not False,
                   exit_when_member=s.get("exitWhenMember", False) is True,
                   enrollment_filter=s.get("enrollmentFilter") or None)

    def blocks_reenrollment(self, last_enrolled: datetime | None, now: datetime) -> str | None:
        """Why an earlier enrollment (at last_enrolled) keeps the contact out now, or None."""
        if last_enrolled is None or self.reenrollment == "always":
            return None
        when = last_enrolled.strftime("%Y-%m-%d %H:%M UTC")
        if self.reenrollment == "never":
            return f"The contact was already enrolled on {when}; this workflow never re-enrolls a contact."
        days = (now - last_enrolled).total_seconds() / 86400
        if days < self.reenrollment_days:
            return (f"The contact was enrolled on {when}, {days:.1f} days ago; this workflow re-enrolls only after "
                    f"{self.reenrollment_days} days.")
        return None


SETTINGS_SCHEMA = {
    "type": "object",
    "properties": {
        "reenrollment": {"enum": list(REENROLLMENT)},
        "reenrollmentDays": {"type": "integer", "minimum": 1, "maximum": 3650},
        "oneActiveRunPerContact": {"type": "boolean"},
        "exitOnUnsubscribe": {"type": "boolean"},
        "exitWhenMember": {"type": "boolean"},
        "enrollmentFilter": {"type": ["object", "null"]},
    },
    "if": {"properties": {"reenrollment": {"const": "after_days"}}, "required": ["reenrollment"]},
    "then": {"required": ["reenrollmentDays"]},
}


def check_settings(settings: Any) -> list[dict]:
    """Every problem of the enrollment keys of a workflow's settings (other keys are not looked at)."""
    errors = sorted(Draft202012Validator(SETTINGS_SCHEMA).iter_errors(settings), key=lambda e: list(e.absolute_path))
    problems = [{"path": "settings" + _where(_error_path(e))[len("config"):], "message": e.message} for e in errors]
    condition = settings.get("enrollmentFilter") if isinstance(settings, Mapping) else None
    if not problems and condition:
        problems += [{"path": p["path"], "message": p["message"]}
                     for p in conditions.check(condition, path="settings.enrollmentFilter")]
    return problems


def workflow_issues(trigger_type: str | None, config: Any, settings: Any) -> list[dict]:
    """A workflow's trigger and enrollment settings as validation issues (errors block activation)."""
    if not trigger_type:
        return []  # validation already says NO_TRIGGER
    if not is_known(trigger_type):
        return [_issue("UNKNOWN_TRIGGER_TYPE", f"{trigger_type!r} is not a trigger type; choose one of "
                                               f"{', '.join(_CATALOG)}.", "triggerType")]
    issues = [_issue("INVALID_TRIGGER_CONFIG", f"triggerConfig: {p['message']}", "trigger" + p["path"][0].upper()
                     + p["path"][1:]) for p in check_config(trigger_type, config)]
    return issues + [_issue("INVALID_SETTINGS", f"{p['path']}: {p['message']}", p["path"])
                     for p in check_settings(settings)]


def _issue(code: str, message: str, path: str) -> dict:
    return {"severity": "error", "code": code, "message": message, "node_id": None, "path": path}

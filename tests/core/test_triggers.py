"""The trigger catalog, config checks, cron, the matcher's reasons, filters and enrollment rules: no app needed."""
from datetime import date, datetime, timedelta, timezone

import pytest
from jsonschema import Draft202012Validator

from atlas.core import triggers
from atlas.core.triggers import EnrollmentRules

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
KEYS = ["lead_created", "form_submitted", "tag_added", "tag_removed", "class_booked", "class_missed",
        "booking_cancelled", "membership_expiring", "membership_cancelled", "payment_failed", "birthday", "schedule",
        "webhook", "manual"]


def match(kind, config, payload=None, contact=None, event=None, today=None):
    return triggers.match(kind, config, event or kind, payload or {}, contact or {}, today=today)


# --- the catalog -------------------------------------------------------------------------------------------------

def test_the_catalog_holds_every_shared_trigger_type_in_order():
    assert [t.key for t in triggers.all_types()] == KEYS
    assert triggers.event_types() == frozenset(KEYS)


@pytest.mark.parametrize("trigger", triggers.all_types(), ids=lambda t: t.key)
def test_each_definition_is_complete_and_its_sample_fits_it(trigger):
    described = trigger.describe()
    assert described["category"] in triggers.CATEGORIES and described["name"] and described["icon"]
    assert described["event_type"] == trigger.key
    Draft202012Validator.check_schema(trigger.config_schema)
    assert trigger.sample_payload and "trigger.eventId" in trigger.provides
    assert all(f"trigger.{key}" in trigger.provides for key in trigger.sample_payload)


def test_date_based_and_scheduled_types_say_so():
    described = {t.key: t.describe() for t in triggers.all_types()}
    assert [k for k, d in described.items() if d["date_based"]] == ["membership_expiring", "birthday"]
    assert [k for k, d in described.items() if d["scheduled"]] == ["schedule"]
    assert described["membership_expiring"]["defaults"] == {"daysBefore": 7}


def test_categories_count_their_types():
    counts = {c["key"]: c["count"] for c in triggers.categories()}
    assert counts == {"leads": 2, "classes": 3, "memberships": 2, "payments": 1, "contacts": 2, "dates": 2,
                      "integrations": 2}
    assert next(c for c in triggers.categories() if c["key"] == "dates")["name"] == "Dates & schedules"


def test_nested_payload_paths_are_provided():
    assert {"trigger.fields", "trigger.fields.goal"} <= set(triggers.get("form_submitted").provides)


def test_an_unknown_key_is_refused():
    with pytest.raises(triggers.UnknownTriggerType):
        triggers.get("teleport")


# --- config checks ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, config, problem", [
    ("lead_created", {"leadSources": "website"}, ("config.leadSources", "'website' is not of type 'array'")),
    ("lead_created", {"leadSources": []}, ("config.leadSources", "[] should be non-empty")),
    ("lead_created", {"source": "web"}, ("config", "Additional properties are not allowed ('source' was unexpected)")),
    ("form_submitted", {}, ("config.formId", "'formId' is a required property")),
    ("tag_added", {"tag": ""}, ("config.tag", "'' should be non-empty")),
    ("membership_expiring", {"daysBefore": -1}, ("config.daysBefore", "-1 is less than the minimum of 0")),
    ("payment_failed", {"minAmountCents": "50"}, ("config.minAmountCents", "'50' is not of type 'integer'")),
    ("schedule", {"scheduleType": "cron"}, ("config.cronExpression", "'cronExpression' is a required property")),
    ("schedule", {"scheduleType": "recurring"}, ("config.every", "'every' is a required property")),
    ("schedule", {"scheduleType": "recurring", "every": {"amount": 0, "unit": "days"}},
     ("config.every.amount", "0 is less than the minimum of 1")),
])
def test_a_bad_config_names_its_path(kind, config, problem):
    first = triggers.check_config(kind, config)[0]
    assert (first["path"], first["message"]) == problem


@pytest.mark.parametrize("kind, config", [("lead_created", {}), ("lead_created", {"leadSources": ["website"]}),
                                          ("form_submitted", {"formId": "frm_1"}), ("manual", {}),
                                          ("class_missed", {"className": "HIIT 45"}),
                                          ("schedule", {"scheduleType": "cron", "cronExpression": "0 9 * * 1"}),
                                          ("schedule", {"scheduleType": "recurring",
                                                        "every": {"amount": 1, "unit": "days"}})])
def test_good_configs_pass(kind, config):
    assert triggers.check_config(kind, config) == []


def test_a_schedule_s_cron_expression_is_checked_with_croniter():
    problems = triggers.check_config("schedule", {"scheduleType": "cron", "cronExpression": "0 25 * * *"})
    assert problems[0]["path"] == "config.cronExpression" and "not a valid cron expression" in problems[0]["message"]


@pytest.mark.parametrize("expression", ["0 9 * * 1", "*/15 * * * *", "@daily", " 30 6 1 * * "])
def test_valid_cron_expressions(expression):
    assert triggers.check_cron(expression) is None


@pytest.mark.parametrize("expression", ["0 9 * *", "61 9 * * *", "0 0 9 * * 1", "every monday", "", None])
def test_invalid_cron_expressions_are_explained(expression):
    assert triggers.check_cron(expression)


# --- matching: each type's match and each kind of non-match with its reason ---------------------------------------

def test_an_event_of_another_type_does_not_match_and_says_both():
    found = match("class_missed", {}, event="class_booked")
    assert not found.matched
    assert found.reason == "The event is “Class booked”; this trigger waits for “Class missed (no-show)”."


def test_an_unknown_trigger_type_never_matches():
    assert "not in the catalog" in match("teleport", {}).reason


def test_lead_created_by_lead_source():
    wanted = {"leadSources": ["website", "instagram"]}
    assert match("lead_created", wanted, {"leadSource": "Website"}).matched
    assert match("lead_created", {}, {"leadSource": "walk_in"}).matched
    assert match("lead_created", wanted, contact={"lead_source": "instagram"}).matched
    found = match("lead_created", wanted, {"leadSource": "walk_in"})
    assert found.reason == "Lead source is 'walk_in'; this trigger only takes website, instagram."
    assert found.detail == {"leadSource": "walk_in", "leadSources": ["website", "instagram"]}
    assert match("lead_created", wanted).reason == "The lead has no lead source; this trigger only takes website, " \
                                                   "instagram."


def test_form_submitted_by_form():
    assert match("form_submitted", {"formId": "frm_trial"}, {"formId": "frm_trial"}).matched
    found = match("form_submitted", {"formId": "frm_trial"}, {"formId": "frm_contact", "formName": "Contact us"})
    assert found.reason == ("The form submitted is 'frm_contact' ('Contact us'); this trigger waits for form "
                            "'frm_trial'.")


@pytest.mark.parametrize("kind, verb", [("tag_added", "added"), ("tag_removed", "removed")])
def test_tags_match_by_name_ignoring_case(kind, verb):
    assert match(kind, {"tag": "Trial-Pass"}, {"tag": " trial-pass"}).matched
    assert match(kind, {"tag": "trial-pass"}, {"tag": "vip"}).reason == \
        f"The tag {verb} is 'vip'; this trigger waits for tag 'trial-pass'."


@pytest.mark.parametrize("kind", ["class_booked", "class_missed", "booking_cancelled"])
def test_class_triggers_filter_by_class_or_session(kind):
    payload = {"className": "HIIT 45", "classSessionId": "cs_1"}
    assert match(kind, {}, payload).matched
    assert match(kind, {"className": "hiit 45", "classSessionId": "cs_1"}, payload).matched
    assert match(kind, {"className": "Yoga"}, payload).reason == \
        "The class is 'HIIT 45'; this trigger only takes 'Yoga'."
    assert match(kind, {"classSessionId": "cs_2"}, payload).reason == \
        "The class session is 'cs_1'; this trigger only takes 'cs_2'."


def test_membership_expiring_fires_n_days_before():
    assert match("membership_expiring", {}, {"daysUntilExpiry": 7}).matched  # the default is 7 days
    assert match("membership_expiring", {"daysBefore": 3}, {"expiresOn": "2026-11-29"},
                 today=date(2026, 11, 26)).matched
    assert match("membership_expiring", {}, {"daysUntilExpiry": 3}).reason == \
        "The membership expires in 3 days; this trigger fires 7 days before expiry."
    assert match("membership_expiring", {}, {"daysUntilExpiry": 1}).reason.startswith(
        "The membership expires in 1 day;")
    assert match("membership_expiring", {}, {}).reason.startswith("The event does not say when the membership expires")


def test_payment_failed_from_a_minimum_amount():
    assert match("payment_failed", {}, {"amountCents": 100}).matched
    assert match("payment_failed", {"minAmountCents": 5000}, {"amountCents": 8900}).matched
    assert match("payment_failed", {"minAmountCents": 5000}, {"amountCents": 1500, "currency": "USD"}).reason == \
        "The failed payment is 15.00 USD; this trigger only takes payments of 50.00 USD or more."


def test_webhook_by_endpoint():
    assert match("webhook", {}, {"endpointId": "wh_1"}).matched
    assert "listens on 'wh_2'" in match("webhook", {"endpointId": "wh_2"}, {"endpointId": "wh_1"}).reason


@pytest.mark.parametrize("kind", ["membership_cancelled", "birthday", "schedule", "manual"])
def test_types_without_filters_match_their_event(kind):
    found = match(kind, {})
    assert found.matched and found.reason == f"The event is {triggers.label(kind)} and fits this trigger's settings."
    assert not match(kind, {}, event="lead_created").matched


# --- enrollment filter -------------------------------------------------------------------------------------------

def test_a_failing_filter_names_the_rule_and_the_actual_value():
    condition = {"all": [{"field": "contact.email", "operator": "is_not_empty"},
                         {"field": "contact.status", "operator": "equals", "value": "lead"}]}
    data = {"trigger": {}, "contact": {"email": "s@example.com", "status": "member"}, "vars": {}, "steps": {}}
    found = triggers.explain_filter(condition, data, NOW)
    assert not found.matched
    assert found.reason == "The enrollment filter failed on contact.status is 'lead': the actual value is 'member'."
    assert found.detail["field"] == "contact.status" and found.detail["actual"] == "member"


def test_a_missing_field_and_a_negated_rule_are_said_plainly():
    data = {"trigger": {"leadSource": "walk_in"}, "contact": {}, "vars": {}, "steps": {}}
    missing = triggers.explain_filter({"field": "contact.phone", "operator": "starts_with", "value": "+1"}, data, NOW)
    assert missing.reason.endswith("contact.phone starts with '+1': the field is missing.")
    negated = triggers.explain_filter({"not": {"field": "trigger.leadSource", "operator": "equals",
                                               "value": "walk_in"}}, data, NOW)
    assert "not (trigger.leadSource is 'walk_in')" in negated.reason
    assert triggers.explain_filter({"field": "trigger.leadSource", "operator": "is_not_empty"}, data, NOW).matched


# --- enrollment rules ------------------------------------------------------------------------------------------

def test_rules_default_to_always_one_active_run_and_exit_on_unsubscribe():
    rules = EnrollmentRules.from_settings({"timezone": "Europe/London"})
    assert (rules.reenrollment, rules.one_active_run, rules.exit_on_unsubscribe, rules.exit_when_member) == (
        "always", True, True, False)
    assert rules.blocks_reenrollment(NOW - timedelta(minutes=1), NOW) is None


def test_never_blocks_any_second_enrollment():
    rules = EnrollmentRules.from_settings({"reenrollment": "never"})
    assert rules.blocks_reenrollment(None, NOW) is None
    assert rules.blocks_reenrollment(NOW - timedelta(days=400), NOW) == (
        "The contact was already enrolled on 2025-10-22 12:00 UTC; this workflow never re-enrolls a contact.")


def test_after_days_blocks_until_the_days_have_passed():
    rules = EnrollmentRules.from_settings({"reenrollment": "after_days", "reenrollmentDays": 30})
    assert "re-enrolls only after 30 days" in rules.blocks_reenrollment(NOW - timedelta(days=29), NOW)
    assert rules.blocks_reenrollment(NOW - timedelta(days=30), NOW) is None


@pytest.mark.parametrize("settings, problem", [
    ({"reenrollment": "sometimes"}, ("settings.reenrollment",
                                     "'sometimes' is not one of ['never', 'always', 'after_days']")),
    ({"reenrollment": "after_days"}, ("settings.reenrollmentDays", "'reenrollmentDays' is a required property")),
    ({"exitWhenMember": "yes"}, ("settings.exitWhenMember", "'yes' is not of type 'boolean'")),
    ({"enrollmentFilter": {"field": "contact.x", "operator": "is"}}, ("settings.enrollmentFilter.operator", None)),
])
def test_bad_settings_name_their_key(settings, problem):
    found = triggers.check_settings(settings)[0]
    assert found["path"] == problem[0] and (problem[1] is None or found["message"] == problem[1])


def test_other_settings_keys_are_left_alone():
    assert triggers.check_settings({"quietHours": True, "timezone": "Europe/London", "reenrollment": "never"}) == []


def test_workflow_issues_block_activation_with_paths():
    issues = triggers.workflow_issues("form_submitted", {}, {"reenrollment": "x"})
    assert [(i["severity"], i["code"], i["path"]) for i in issues] == [
        ("error", "INVALID_TRIGGER_CONFIG", "triggerConfig.formId"),
        ("error", "INVALID_SETTINGS", "settings.reenrollment")]
    assert triggers.workflow_issues("teleport", {}, {})[0]["code"] == "UNKNOWN_TRIGGER_TYPE"
    assert triggers.workflow_issues("lead_created", {"leadSources": ["website"]}, {}) == []

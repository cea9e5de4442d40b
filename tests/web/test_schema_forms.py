"""The builder's config forms: schemas drawn as fields, the drawn HTML posted back as a browser would, and the ops."""
import copy
import re
from html.parser import HTMLParser

import pytest
from flask import render_template
from jsonschema import Draft202012Validator
from werkzeug.datastructures import MultiDict

from atlas.core import conditions, steps, triggers
from atlas.web import condition_forms
from atlas.web.schema_form_input import apply_op, config_from_form
from atlas.web.schema_forms import fields_for
from atlas.web.variables import earlier_nodes, variables_for

OPTIONS = {
    "email_templates": [{"id": "tpl_welcome", "name": "Welcome"}],
    "sms_templates": [{"id": "tpl_sms", "name": "Trial reminder"}],
    "tags": ["vip", "trial-pass"], "forms": [{"id": "frm_trial", "name": "Free trial"}],
    "lead_sources": [{"key": "website", "name": "Website"}, {"key": "instagram", "name": "Instagram"}],
    "custom_fields": [{"key": "goal", "label": "Goal", "field_type": "text", "options": []},
                      {"key": "visits", "label": "Visits", "field_type": "number", "options": []}],
    "staff": [{"id": "u_maya", "name": "Maya Ortiz", "email": "maya@example.com", "role": "staff"}],
    "workflows": [{"id": "wf_nurture", "name": "Lead nurture"}],
}
VARIABLES = variables_for({"nodes": [], "edges": []}, "n1", "class_booked", custom_fields=OPTIONS["custom_fields"])
RULE = {"field": "contact.email", "operator": "ends_with", "value": "@gmail.com"}

STEP_EXAMPLES = {
    "if_else": [{"condition": {"all": [RULE, {"any": [
        {"field": "trigger.amountCents", "operator": "greater_than", "value": 5000},
        {"not": {"field": "contact.tags", "operator": "contains", "value": "vip"}},
        {"field": "contact.email_opt_out", "operator": "equals", "value": True}]}]}},
        {"condition": {"field": "contact.phone", "operator": "is_empty"}},
        {"condition": {"not": {"any": [RULE]}}}],
    "split": [{"branches": [
        {"name": "Members", "condition": {"field": "contact.status", "operator": "equals", "value": "member"}},
        {"name": "Recent", "condition": {"all": [
            {"field": "contact.created_at", "operator": "within_last", "value": {"amount": 7, "unit": "days"}},
            {"field": "trigger.amountCents", "operator": "between", "value": [100, 500.5]},
            {"field": "trigger.startsAt", "operator": "between", "value": ["2026-01-01", "2026-02-01"]},
            {"field": "contact.birthday", "operator": "before", "value": "2000-01-01"},
            {"field": "contact.custom.visits", "operator": "in", "value": [1, 2, 3]},
            {"field": "contact.custom.visits", "operator": "equals", "value": 10}]}}]}],
    "ab_split": [{"variants": [{"name": "A", "percent": 50}, {"name": "B", "percent": 50}]}],
    "wait": [{"duration": {"amount": 2, "unit": "days"}}, {"duration": {"amount": 0, "unit": "seconds"}}],
    "wait_until": [{"until": "{{ trigger.startsAt }}"}],
    "wait_for_event": [{"event": "class_booked", "timeout": {"amount": 3, "unit": "days"},
                        "match": {"field": "trigger.className", "operator": "in", "value": ["HIIT 45", "Yoga, slow"]}},
                       {"event": "payment_succeeded", "timeout": {"amount": 12, "unit": "hours"}}],
    "goal": [{"event": "membership_started",
              "condition": {"field": "contact.status", "operator": "equals", "value": "member"}}, {"event": "x.y"}],
    "set_variable": [{"name": "trial_day", "value": "{{ trigger.startsAt | date }}"}, {"name": "n", "value": 3},
                     {"name": "flag", "value": False}],
    "end": [{}],
    "send_email": [{"templateId": "tpl_welcome", "to": "{{ contact.email }}", "fromName": "Maya at Iron Temple"},
                   {"subject": "Hi {{ contact.first_name }}", "body": "Line one\nLine two\n\nBye"}],
    "send_sms": [{"body": "See you at {{ trigger.className }}!"}, {"templateId": "tpl_sms", "to": "+15550001"}],
    "notify_staff": [{"message": "New lead {{ contact.name }}", "userId": "u_maya"}, {"message": "Hello"}],
    "create_task": [{"title": "Call {{ contact.first_name }}", "description": "Ask about goals",
                     "dueIn": {"amount": 1, "unit": "days"}, "assignee": "owner"},
                    {"title": "Book a trial", "assignee": "u_maya"}, {"title": "Follow up"}],
    "assign_owner": [{"userId": "round_robin"}, {"userId": "u_maya"}],
    "add_tag": [{"tag": "trial-pass"}],
    "remove_tag": [{"tag": "lead-{{ trigger.className }}"}],
    "update_contact_field": [{"field": "custom.goal", "value": "Lose 5 kg"}, {"field": "email", "value": None},
                             {"field": "custom.visits", "value": 4}],
    "change_lead_status": [{"status": "former_member"}],
    "http_request": [{"method": "POST", "url": "https://example.com/hook", "headers": {"X-Token": "{{ vars.token }}"},
                      "payload": {"email": "{{ contact.email }}", "n": 1}, "timeoutSeconds": 10,
                      "retry": {"maxAttempts": 3}, "sign": True},
                     {"method": "GET", "url": "https://example.com/?q={{ contact.id }}", "payload": "plain text",
                      "timeoutSeconds": 2.5, "sign": False}],
    "run_workflow": [{"workflowId": "wf_nurture", "wait": False}, {"workflowId": "wf_nurture"}],
}
TRIGGER_EXAMPLES = {
    "lead_created": [{"leadSources": ["website", "walk-in"]}, {}], "form_submitted": [{"formId": "frm_trial"}],
    "tag_added": [{"tag": "vip"}], "tag_removed": [{"tag": "trial-pass"}],
    "class_booked": [{"className": "HIIT 45", "classSessionId": "cs_1"}], "class_missed": [{}],
    "booking_cancelled": [{"className": "Yoga"}], "membership_expiring": [{"daysBefore": 14}, {}],
    "membership_cancelled": [{}], "payment_failed": [{"minAmountCents": 5000}], "birthday": [{}],
    "schedule": [{"scheduleType": "cron", "cronExpression": "0 9 * * 1"},
                 {"scheduleType": "recurring", "every": {"amount": 2, "unit": "hours"},
                  "startAt": "2026-12-01T09:00:00Z"}],
    "webhook": [{"endpointId": "wh_42"}], "manual": [{}],
}


class FormReader(HTMLParser):
    """The pairs a browser posts for a form's controls (no button: the submitter is added by the caller)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.pairs, self.select, self.textarea, self.ids, self.labels = [], None, None, [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "label" and "for" in a:
            self.labels.append(a["for"])
        if "disabled" in a:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind not in ("checkbox", "radio") or "checked" in a:
                self.pairs.append((a["name"], a.get("value", "on")))
        elif tag == "select":
            self.select = {"name": a.get("name"), "options": [], "selected": None}
        elif tag == "option" and self.select is not None:
            self.select["options"].append(a.get("value", ""))
            if "selected" in a:
                self.select["selected"] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self.textarea = [a["name"], ""]

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "select" and self.select is not None:
            s, self.select = self.select, None
            value = s["selected"] if s["selected"] is not None else (s["options"][0] if s["options"] else None)
            if s["name"] and value is not None:
                self.pairs.append((s["name"], value))
        elif tag == "textarea" and self.textarea is not None:
            name, text = self.textarea
            self.pairs.append((name, text[1:] if text.startswith("\n") else text))
            self.textarea = None


def render(app, fields, variables=VARIABLES, **context):
    with app.test_request_context():
        return render_template("builder/_form.html", fields=fields, variables=variables, **context)


def posted(page: str, op: str | None = None) -> MultiDict:
    reader = FormReader()
    reader.feed(page)
    pairs = [(k, v.replace("\n", "\r\n")) for k, v in reader.pairs]  # browsers post textarea lines as CRLF
    return MultiDict(pairs + ([("op", op)] if op else []))


def round_trip(app, schema, config, variables=VARIABLES):
    page = render(app, fields_for(schema, config, options=OPTIONS, variables=variables))
    return config_from_form(schema, posted(page))


def all_examples():
    return [pytest.param(steps.get(key).config_schema, config, id=f"{key}-{i}")
            for key, configs in STEP_EXAMPLES.items() for i, config in enumerate(configs)]


# --- round trips --------------------------------------------------------------------------------------------------

def test_every_registered_step_type_has_examples():
    assert {t.key for t in steps.all_types()} <= set(STEP_EXAMPLES)
    assert set(TRIGGER_EXAMPLES) == {t.key for t in triggers.all_types()}


@pytest.mark.parametrize("schema, config", all_examples())
def test_step_config_round_trips_through_the_rendered_form(app, schema, config):
    assert list(Draft202012Validator(schema).iter_errors(config)) == []  # the examples themselves are valid
    assert round_trip(app, schema, copy.deepcopy(config)) == (config, {})


@pytest.mark.parametrize("key, config", [(k, c) for k, cs in TRIGGER_EXAMPLES.items() for c in cs])
def test_trigger_config_round_trips(app, key, config):
    schema = triggers.get(key).config_schema
    assert triggers.check_config(key, config) == []
    assert round_trip(app, schema, config, variables=[]) == (config, {})


# --- widgets ------------------------------------------------------------------------------------------------------

def by_name(fields, name):
    for f in fields:
        if f.name == name:
            return f
        found = by_name(f.children, name)
        if found:
            return found
    return None


def test_widgets_of_the_registered_schemas():
    def widgets(key):
        return {f.name.split(".", 1)[1]: f.widget for f in fields_for(steps.get(key).config_schema, {},
                                                                       options=OPTIONS, variables=VARIABLES)}
    assert widgets("send_email") == {"templateId": "select", "subject": "text", "body": "textarea", "to": "text",
                                     "fromName": "text"}
    assert widgets("wait") == {"duration": "duration"}
    assert widgets("split") == {"branches": "list"}
    assert widgets("if_else") == {"condition": "condition"}
    assert widgets("http_request")["retry"] == "group" and widgets("http_request")["timeoutSeconds"] == "number"
    assert widgets("update_contact_field") == {"field": "select", "value": "typed"}
    assert widgets("run_workflow") == {"workflowId": "select", "wait": "hidden"}


def test_selects_are_filled_from_the_organization_lists():
    sms = fields_for(steps.get("send_sms").config_schema, {}, options=OPTIONS, variables=[])[0]
    email = fields_for(steps.get("send_email").config_schema, {}, options=OPTIONS, variables=[])[0]
    assert [v for _, items in sms.choices for v, _ in items] == ["", "tpl_sms"]
    assert [v for _, items in email.choices for v, _ in items] == ["", "tpl_welcome"]
    owner = fields_for(steps.get("assign_owner").config_schema, {}, options=OPTIONS, variables=[])[0]
    assert [v for _, items in owner.choices for v, _ in items] == ["", "round_robin", "u_maya"]
    field = fields_for(steps.get("update_contact_field").config_schema, {}, options=OPTIONS, variables=[])[0]
    assert ("Custom fields", [("custom.goal", "Goal"), ("custom.visits", "Visits")]) in field.choices
    form = fields_for(triggers.get("form_submitted").config_schema, {"formId": "gone"}, options=OPTIONS,
                      variables=[])[0]
    assert ("gone", "gone (not in the list)") in form.choices[-1][1] and form.value == "gone"


def test_rendered_form_has_a_label_for_every_control_and_marks_optional(app):
    for key, configs in STEP_EXAMPLES.items():
        page = render(app, fields_for(steps.get(key).config_schema, configs[0], options=OPTIONS, variables=VARIABLES))
        reader = FormReader()
        reader.feed(page)
        controls = re.findall(r'<(?:input|select|textarea)\b(?![^>]*type="hidden")[^>]*\bid="([^"]+)"', page)
        assert controls or key == "end"
        assert set(controls) <= set(reader.labels), key
        assert len(reader.ids) == len(set(reader.ids)), f"duplicate ids in {key}"
    page = render(app, fields_for(steps.get("create_task").config_schema, {}, options=OPTIONS, variables=VARIABLES))
    assert re.search(r'<label for="f-config-title">Title</label>', page)
    assert 'Description <span class="optional">(optional)</span>' in page


def test_templated_fields_get_the_insert_variable_picker(app):
    page = render(app, fields_for(steps.get("send_sms").config_schema, {}, options=OPTIONS, variables=VARIABLES))
    assert '<label for="f-config-body-var" class="visually-hidden">Variable to insert into Body</label>' in page
    assert '<option value="trigger.className">Class name</option>' in page
    assert '<optgroup label="Contact: custom fields"><option value="contact.custom.goal">Goal</option>' in page
    assert 'data-insert-from="f-config-body-var"' in page and "{{ \" + select.value + \" }}" in page
    assert "f-config-templateId-var" not in page  # a template picker is not text
    trigger_page = render(app, fields_for(triggers.get("tag_added").config_schema, {}, options=OPTIONS, variables=[]),
                          variables=[])
    assert "<select id=\"f-config-tag-var\"" not in trigger_page and "Insert variable…" not in trigger_page
    assert '<datalist id="f-config-tag-suggestions"><option value="trial-pass">' in trigger_page


# --- parsing errors in plain words ---------------------------------------------------------------------------------

def parse(key, pairs, trigger=False):
    schema = (triggers if trigger else steps).get(key).config_schema
    return config_from_form(schema, MultiDict(pairs))


def test_a_duration_amount_that_is_not_a_whole_number_says_so_in_its_unit():
    config, errors = parse("wait", [("config.duration.amount", "ten"), ("config.duration.unit", "minutes")])
    assert errors == {"config.duration.amount": "Enter a whole number of minutes, such as 10."}
    assert config == {"duration": {"amount": "ten", "unit": "minutes"}}  # kept as typed for the form


@pytest.mark.parametrize("pairs, expected", [
    ([("config.variants.0.name", "A"), ("config.variants.0.percent", "5.5")],
     {"config.variants.0.percent": "Enter a whole number, such as 10.", "config.variants": "Add at least 2."}),
    ([("config.variants.0.name", ""), ("config.variants.0.percent", "150"),
      ("config.variants.1.name", "B"), ("config.variants.1.percent", "-1")],
     {"config.variants.0.name": "Fill this in.", "config.variants.0.percent": "Enter 100 or less.",
      "config.variants.1.percent": "Enter 0 or more."}),
])
def test_list_item_errors_are_placed_on_the_item_field(pairs, expected):
    assert parse("ab_split", pairs)[1] == expected


def test_missing_required_values_and_bad_patterns_read_plainly():
    assert parse("assign_owner", [("config.userId", "")])[1] == {"config.userId": "Choose one."}
    assert parse("notify_staff", [("config.message", "  ")])[1] == {"config.message": "Fill this in."}
    assert parse("set_variable", [("config.name", "Trial Day"), ("config.value", "x")])[1] == {
        "config.name": "Use lower-case letters, digits and underscores, starting with a letter (e.g. trial_day)."}
    assert parse("http_request", [("config.method", "POST"), ("config.url", "https://x.test"),
                                  ("config.timeoutSeconds", "soon")])[1] == {
        "config.timeoutSeconds": "Enter a number, such as 10 or 2.5."}
    assert parse("http_request", [("config.method", "POST"), ("config.url", "https://x.test"),
                                  ("config.headers", "no colon here"), ("config.payload", "{broken")])[1] == {
        "config.headers": "Write each header as Name: value; 'no colon here' has no colon.",
        "config.payload": "This is not valid JSON (expecting property name enclosed in double quotes at line 1); "
                          "fix it, or write plain text."}
    _, errors = parse("schedule", [("config.scheduleType", "recurring")], trigger=True)
    assert errors == {"config.every": "Fill this in."}


def test_step_checks_run_after_the_schema_and_land_on_their_field():
    schema = steps.get("ab_split")
    pairs = [("config.variants.0.name", "A"), ("config.variants.0.percent", "50"),
             ("config.variants.1.name", "B"), ("config.variants.1.percent", "40")]
    _, errors = config_from_form(schema.config_schema, MultiDict(pairs), check=schema.check)
    assert errors == {"config.variants": "The variants' percentages must add up to 100."}


def test_condition_errors_are_mapped_to_the_rule_inputs():
    pairs = [("config.condition.kind", "all"),
             ("config.condition.items.0.kind", "rule"), ("config.condition.items.0.field", ""),
             ("config.condition.items.0.operator", "greater_than"), ("config.condition.items.0.value", "many"),
             ("config.condition.items.1.kind", "rule"), ("config.condition.items.1.field", "contact.created_at"),
             ("config.condition.items.1.operator", "within_last"),
             ("config.condition.items.1.value.amount", "x"), ("config.condition.items.1.value.unit", "days"),
             ("config.condition.items.2.kind", "rule"), ("config.condition.items.2.field", "email"),
             ("config.condition.items.2.operator", "after"), ("config.condition.items.2.value", "tomorrow")]
    _, errors = parse("if_else", pairs)
    assert errors["config.condition.items.0.field"] == "Choose a field for the rule, such as contact.email."
    assert errors["config.condition.items.0.value"] == "Enter a number, such as 10."
    assert errors["config.condition.items.1.value.amount"] == "Enter a whole number of days, such as 10."
    assert errors["config.condition.items.2.field"].startswith("Field 'email' must start with one of")
    assert "ISO 8601" in errors["config.condition.items.2.value"]


def test_field_errors_are_drawn_next_to_their_control(app):
    schema = steps.get("wait").config_schema
    config, errors = config_from_form(schema, MultiDict([("config.duration.amount", "ten"),
                                                         ("config.duration.unit", "minutes")]))
    page = render(app, fields_for(schema, config, options=OPTIONS, variables=[], errors=errors))
    assert 'aria-invalid="true" aria-describedby="f-config-duration-amount-error"' in page
    assert '<p class="field-error" id="f-config-duration-amount-error">Enter a whole number of minutes' in page
    assert 'value="ten"' in page


def test_an_empty_optional_condition_and_duration_are_dropped():
    pairs = [("config.title", "Call"), ("config.dueIn.amount", ""), ("config.dueIn.unit", ""),
             ("config.assignee", ""), ("config.description", "")]
    assert parse("create_task", pairs) == ({"title": "Call"}, {})
    assert parse("goal", [("config.event", "class_booked"), ("config.condition.kind", "all")]) == (
        {"event": "class_booked"}, {})


def test_checkbox_posts_true_or_false():
    schema = {"type": "object", "properties": {"flag": {"type": "boolean"}}}
    assert config_from_form(schema, MultiDict([("config.flag", "false"), ("config.flag", "true")]))[0] == {"flag": True}
    assert config_from_form(schema, MultiDict([("config.flag", "false")]))[0] == {"flag": False}
    fields = fields_for(schema, {"flag": True}, options={}, variables=[])
    assert fields[0].widget == "checkbox" and fields[0].value is True


def test_checkbox_round_trip(app):
    schema = {"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "boolean"}}}
    assert round_trip(app, schema, {"a": True, "b": False}) == ({"a": True, "b": False}, {})


# --- the condition builder's ops -------------------------------------------------------------------------------------

IF_ELSE = steps.get("if_else").config_schema
SPLIT = steps.get("split").config_schema
EMPTY = condition_forms.EMPTY_RULE


def test_add_rule_and_group_at_a_path():
    config = {"condition": {"all": [RULE, {"any": [RULE]}]}}
    assert apply_op(IF_ELSE, config, "add_rule:config.condition") == {"condition": {"all": [RULE, {"any": [RULE]},
                                                                                           EMPTY]}}
    assert apply_op(IF_ELSE, config, "add_rule:config.condition.items.1") == {
        "condition": {"all": [RULE, {"any": [RULE, EMPTY]}]}}
    assert apply_op(IF_ELSE, config, "add_group:config.condition.items.1") == {
        "condition": {"all": [RULE, {"any": [RULE, {"all": [EMPTY]}]}]}}
    assert config == {"condition": {"all": [RULE, {"any": [RULE]}]}}  # the input is left alone


def test_add_rule_to_a_lone_rule_or_a_missing_condition_makes_a_group():
    assert apply_op(IF_ELSE, {"condition": RULE}, "add_rule:config.condition") == {"condition": {"all": [RULE, EMPTY]}}
    assert apply_op(IF_ELSE, {}, "add_rule:config.condition") == {"condition": {"all": [EMPTY]}}


def test_remove_at_a_path():
    config = {"condition": {"all": [RULE, {"any": [RULE, {"not": RULE}]}]}}
    assert apply_op(IF_ELSE, config, "remove:config.condition.items.0") == {
        "condition": {"all": [{"any": [RULE, {"not": RULE}]}]}}
    assert apply_op(IF_ELSE, config, "remove:config.condition.items.1.items.1.not") == {
        "condition": {"all": [RULE, {"any": [RULE]}]}}
    assert apply_op(IF_ELSE, config, "remove:config.condition") == {}


def test_list_items_are_added_and_removed():
    config = {"branches": [{"name": "A", "condition": RULE}]}
    added = apply_op(SPLIT, config, "add_item:config.branches")
    assert added == {"branches": [{"name": "A", "condition": RULE}, {"name": "", "condition": {"all": []}}]}
    assert apply_op(SPLIT, added, "remove:config.branches.0") == {"branches": [{"name": "", "condition": {"all": []}}]}
    assert apply_op(SPLIT, config, "add_rule:config.branches.0.condition") == {
        "branches": [{"name": "A", "condition": {"all": [RULE, EMPTY]}}]}
    assert apply_op(SPLIT, config, "refresh") == config
    assert apply_op(SPLIT, config, "remove:settings.x") == config


def test_an_op_posted_from_the_rendered_form_round_trips_through_it(app):
    config = {"condition": {"any": [RULE]}}
    page = render(app, fields_for(IF_ELSE, config, options=OPTIONS, variables=VARIABLES))
    assert 'name="op" value="add_group:config.condition"' in page
    form = posted(page, "add_group:config.condition")
    parsed, errors = config_from_form(IF_ELSE, form)
    grown = apply_op(IF_ELSE, parsed, form["op"])
    page = render(app, fields_for(IF_ELSE, grown, options=OPTIONS, variables=VARIABLES))
    assert 'name="config.condition.items.1.items.0.field"' in page and "Remove group" in page
    again, errors = config_from_form(IF_ELSE, posted(page))
    assert again == grown and errors == {"config.condition.items.1.items.0.field":
                                         "Choose a field for the rule, such as contact.email."}


def test_operators_are_offered_with_readable_labels_and_values_typed_by_operator(app):
    rules = [{"field": "contact.phone", "operator": "is_empty"},
             {"field": "trigger.amountCents", "operator": "between", "value": [1, 2]},
             {"field": "contact.created_at", "operator": "within_last", "value": {"amount": 2, "unit": "weeks"}},
             {"field": "contact.email_opt_out", "operator": "equals", "value": ""}]
    page = render(app, fields_for(IF_ELSE, {"condition": {"all": rules}}, options=OPTIONS, variables=VARIABLES))
    for key, spec in conditions.OPERATORS.items():
        assert f'<option value="{key}"' in page and f">{spec['label']}</option>" in page
    assert 'name="config.condition.items.0.value' not in page
    assert 'name="config.condition.items.1.value.0"' in page and 'name="config.condition.items.1.value.1"' in page
    assert 'name="config.condition.items.2.value.amount"' in page
    assert '<select id="f-config-condition-items-3-value" name="config.condition.items.3.value"' in page
    assert '<datalist id="sf-variables"><option value="contact.first_name">Contact: First name</option>' in page


# --- variables_for ------------------------------------------------------------------------------------------------

FLOW = {"nodes": [
    {"id": "start", "type": "set_variable", "config": {"name": "first", "value": 1}},
    {"id": "check", "type": "if_else", "name": "Booked?", "config": {"condition": RULE}},
    {"id": "yes_sms", "type": "send_sms", "config": {"body": "hi"}},
    {"id": "no_var", "type": "set_variable", "config": {"name": "other_branch", "value": 2}},
    {"id": "join", "type": "add_tag", "config": {"tag": "x"}},
    {"id": "after", "type": "set_variable", "config": {"name": "later", "value": 3}}],
    "edges": [{"source": "start", "target": "check"}, {"source": "check", "target": "yes_sms", "branch": "true"},
              {"source": "check", "target": "no_var", "branch": "false"}, {"source": "yes_sms", "target": "join"},
              {"source": "no_var", "target": "join"}, {"source": "join", "target": "after"}]}


def paths(found, prefix):
    return [v["path"] for v in found if v["path"].startswith(prefix)]


def test_variables_only_from_steps_before_the_node_on_some_path():
    at_sms = variables_for(FLOW, "yes_sms", "class_booked")
    assert paths(at_sms, "vars.") == ["vars.first"]
    assert paths(at_sms, "steps.") == ["steps.start.output.name", "steps.start.output.value",
                                       "steps.check.output.result"]
    at_join = variables_for(FLOW, "join", "class_booked")
    assert paths(at_join, "vars.") == ["vars.first", "vars.other_branch"]  # either branch may have run
    assert "steps.yes_sms.output.status" in paths(at_join, "steps.") and not paths(at_join, "steps.join")
    assert not paths(at_join, "vars.later") and not paths(at_join, "steps.after")
    assert [n["id"] for n in earlier_nodes(FLOW, "after")] == ["start", "check", "yes_sms", "no_var", "join"]


def test_variables_include_contact_custom_fields_and_the_trigger_data():
    found = variables_for(FLOW, "start", "form_submitted", custom_fields=[{"key": "goal", "label": "Goal"}])
    assert found[0] == {"path": "contact.first_name", "label": "First name", "group": "Contact", "type": "string"}
    assert {"path": "contact.custom.goal", "label": "Goal", "group": "Contact: custom fields",
            "type": "string"} in found
    assert set(triggers.get("form_submitted").provides) <= {v["path"] for v in found}
    assert not paths(found, "steps.") and not paths(found, "vars.")
    group = next(v["group"] for v in found if v["path"] == "trigger.formName")
    assert group == "Trigger: Form submitted"
    assert variables_for({}, "anything", "no_such_trigger")[-1]["path"] == "contact.id"


def test_variables_survive_a_broken_draft():
    broken = {"nodes": [{"id": "a", "type": "mystery"}, "junk", {"id": "b", "type": "send_sms"}],
              "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}, "junk"]}
    found = variables_for(broken, "b", "manual")
    assert paths(found, "steps.") == []  # an unknown step type has no outputs; the cycle does not hang

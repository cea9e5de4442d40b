"""The Run now form: its fields turned into start_execution's arguments, with every problem in words."""
import json
import re

from atlas.core.storable import all_storable

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_TRIGGER_BYTES = 64 * 1024
EXAMPLE = 'such as {"vip": true}'


def read_run_form(form) -> tuple[dict, dict]:
    """(start_execution keyword arguments, {field: problem}) from the posted form."""
    trigger, errors = _trigger_data(form.get("trigger_data", ""))
    name, email = form.get("contact_name", "").strip(), form.get("contact_email", "").strip()
    if len(name) > 120:
        errors["contact_name"] = "Keep the name to 120 characters."
    if email and (len(email) > 254 or not EMAIL.match(email)):
        errors["contact_email"] = "Enter an email address such as sam@example.com, or leave it empty."
    contact = {key: value for key, value in (("name", name), ("email", email)) if value}
    return {"trigger_data": trigger, "input_data": {"contact": contact},
            "test_mode": form.get("test_mode") in ("on", "true", "1")}, errors


def _trigger_data(text: str) -> tuple[dict, dict]:
    """The trigger data textarea: empty, or a JSON object."""
    text = text.strip()
    if not text:
        return {}, {}
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TRIGGER_BYTES:
        return {}, {"trigger_data": "Keep the trigger data under 64 KB."}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, {"trigger_data": f"This is not valid JSON: {exc.msg.lower()} at line {exc.lineno}, column "
                                    f"{exc.colno}. Write an object {EXAMPLE}, or leave it empty."}
    except RecursionError:
        return {}, {"trigger_data": "This JSON is nested too deeply to read."}
    if not isinstance(value, dict):
        return {}, {"trigger_data": f"Trigger data must be a JSON object in braces, {EXAMPLE}."}
    if not all_storable(value):
        return {}, {"trigger_data": "Trigger data cannot contain NUL characters or unpaired surrogates."}
    return value, {}



"""The contact policy's arithmetic: consent, quiet hours in the right time zone, frequency caps."""
from datetime import datetime, timedelta, timezone

import pytest

from atlas.core import policy

UTC = timezone.utc
QUIET = {"quietHours": {"enabled": True, "start": "21:00", "end": "08:00"}}
SARAH = {"id": "c-1", "timezone": "America/New_York", "sms_opt_out": False, "email_opt_out": False}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC) if "+" not in text else datetime.fromisoformat(text)


def test_an_opted_out_contact_is_skipped_on_that_channel_only():
    rules = policy.parse({})
    contact = {**SARAH, "sms_opt_out": True}
    assert policy.evaluate(rules, contact, "sms", at("2024-05-01T15:00:00")) == policy.Verdict(
        "skip", reason="The contact has opted out of SMS.", rule="consent")
    assert policy.evaluate(rules, contact, "email", at("2024-05-01T15:00:00")).action == "send"


def test_no_settings_means_send_at_any_hour():
    assert policy.evaluate(policy.parse(None), SARAH, "sms", at("2024-05-01T03:00:00")).action == "send"


def test_quiet_hours_are_read_in_the_contacts_time_zone():
    rules = policy.parse(QUIET)
    # 02:00 UTC is 22:00 in New York (EDT): quiet until 08:00 EDT = 12:00 UTC.
    verdict = policy.evaluate(rules, SARAH, "sms", at("2024-05-01T02:00:00"), org_tz="UTC")
    assert verdict.action == "defer" and verdict.rule == "quiet_hours"
    assert verdict.until == at("2024-05-01T12:00:00")
    assert "America/New_York" in verdict.reason
    # 14:00 UTC is 10:00 in New York: fine, although it would be quiet nowhere else either.
    assert policy.evaluate(rules, SARAH, "sms", at("2024-05-01T14:00:00")).action == "send"


def test_quiet_hours_fall_back_to_the_organizations_zone_then_utc():
    rules = policy.parse(QUIET)
    no_zone = {"id": "c-2"}
    # 20:30 UTC is 22:30 in Berlin (CEST).
    verdict = policy.evaluate(rules, no_zone, "sms", at("2024-05-01T20:30:00"), org_tz="Europe/Berlin")
    assert verdict.action == "defer" and verdict.until == at("2024-05-02T06:00:00")
    assert policy.evaluate(rules, {"timezone": "Not/AZone"}, "sms", at("2024-05-01T20:30:00")).action == "send"


def test_a_window_that_does_not_wrap_midnight():
    rules = policy.parse({"quietHours": {"enabled": True, "start": "12:00", "end": "14:00"}})
    assert policy.evaluate(rules, {}, "email", at("2024-05-01T13:59:00")).until == at("2024-05-01T14:00:00")
    assert policy.evaluate(rules, {}, "email", at("2024-05-01T14:00:00")).action == "send"
    assert policy.evaluate(rules, {}, "email", at("2024-05-01T11:59:00")).action == "send"


def test_early_morning_inside_a_wrapping_window_ends_the_same_day():
    rules = policy.parse(QUIET)
    assert policy.evaluate(rules, {}, "sms", at("2024-05-01T07:30:00")).until == at("2024-05-01T08:00:00")


def test_disabled_or_malformed_quiet_hours_do_nothing():
    for quiet in ({"enabled": False, "start": "21:00", "end": "08:00"}, {"enabled": True, "start": "9pm", "end": "8"}):
        rules = policy.parse({"quietHours": quiet})
        assert policy.evaluate(rules, {}, "sms", at("2024-05-01T23:00:00")).action == "send"


def test_the_fourth_sms_in_seven_days_is_deferred_until_the_first_leaves_the_window():
    rules = policy.parse({"frequencyCaps": {"sms": {"max": 3, "days": 7}}})
    now = at("2024-05-10T12:00:00")
    sent = [now - timedelta(days=6), now - timedelta(days=2), now - timedelta(hours=1)]
    assert policy.evaluate(rules, SARAH, "sms", now, sent=sent[1:]).action == "send"
    verdict = policy.evaluate(rules, SARAH, "sms", now, sent=sent)
    assert verdict.action == "defer" and verdict.rule == "frequency_cap"
    assert verdict.until == sent[0] + timedelta(days=7)
    assert "3 per 7 days" in verdict.reason
    assert policy.evaluate(rules, SARAH, "email", now, sent=sent).action == "send"  # the cap is per channel


def test_messages_older_than_the_window_do_not_count():
    rules = policy.parse({"frequencyCaps": {"sms": {"max": 1, "days": 7}}})
    now = at("2024-05-10T12:00:00")
    assert policy.evaluate(rules, {}, "sms", now, sent=[now - timedelta(days=7, seconds=1)]).action == "send"


def test_capped_action_skip_drops_the_message():
    rules = policy.parse({"frequencyCaps": {"sms": {"max": 1, "days": 1}}, "cappedAction": "skip"})
    now = at("2024-05-10T12:00:00")
    verdict = policy.evaluate(rules, {}, "sms", now, sent=[now - timedelta(hours=2)])
    assert verdict == policy.Verdict("skip", reason="The SMS frequency cap (1 per 1 days) is reached.",
                                     rule="frequency_cap")


def test_a_cap_that_frees_up_during_quiet_hours_defers_to_their_end():
    rules = policy.parse({**QUIET, "frequencyCaps": {"sms": {"max": 1, "days": 1}}})
    now = at("2024-05-10T12:00:00")
    verdict = policy.evaluate(rules, {}, "sms", now, sent=[now - timedelta(hours=1)])  # frees at 11:00 UTC tomorrow
    assert verdict.until == at("2024-05-11T11:00:00")
    verdict = policy.evaluate(rules, {}, "sms", now, sent=[at("2024-05-09T23:00:00")])  # frees at 23:00: quiet
    assert verdict.until == at("2024-05-10T08:00:00") + timedelta(days=1)


def test_opt_out_wins_over_everything_else():
    rules = policy.parse({**QUIET, "frequencyCaps": {"sms": {"max": 1, "days": 1}}})
    verdict = policy.evaluate(rules, {"sms_opt_out": True}, "sms", at("2024-05-10T23:00:00"),
                              sent=[at("2024-05-10T22:00:00")])
    assert verdict.rule == "consent"


@pytest.mark.parametrize("settings, field", [
    ({"quietHours": {"enabled": True, "start": "25:00", "end": "08:00"}}, "quietHours.start"),
    ({"quietHours": {"enabled": True, "start": "08:00", "end": "08:00"}}, "quietHours.end"),
    ({"quietHours": "evenings"}, "quietHours"),
    ({"frequencyCaps": {"sms": {"max": 0, "days": 7}}}, "frequencyCaps.sms.max"),
    ({"frequencyCaps": {"sms": {"max": 3, "days": 400}}}, "frequencyCaps.sms.days"),
    ({"frequencyCaps": {"push": {"max": 3, "days": 7}}}, "frequencyCaps.push"),
    ({"cappedAction": "drop"}, "cappedAction"),
])
def test_check_names_every_bad_setting(settings, field):
    assert [p["field"] for p in policy.check(settings)] == [field]


def test_check_accepts_good_settings():
    assert policy.check({**QUIET, "frequencyCaps": {"sms": {"max": 3, "days": 7}}, "cappedAction": "skip"}) == []

"""The contact policy's arithmetic: consent, quiet hours and frequency caps, in a bare interpreter.

An organization's settings (Organization.settings, JSON) hold the policy under three keys; every key is optional:

    "quietHours":    {"enabled": true, "start": "21:00", "end": "08:00"}
                     no messages between start and end in the contact's time zone (the organization's when the
                     contact has none); a window that passes midnight wraps. Default: off.
    "frequencyCaps": {"sms": {"max": 3, "days": 7}, "email": {"max": 10, "days": 7}}
                     at most `max` messages per contact per channel in any `days` days, across every workflow.
                     Default: no caps.
    "cappedAction":  "defer" (send when the window allows, the default) or "skip" (drop the message).

Consent needs no setting: a contact's email_opt_out / sms_opt_out always stops that channel.
evaluate() answers a Verdict: send, skip (suppressed) or defer until a moment.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CHANNELS = ("email", "sms")
SEND, SKIP, DEFER = "send", "skip", "defer"
CONSENT, QUIET_HOURS, FREQUENCY_CAP = "consent", "quiet_hours", "frequency_cap"
CAPPED_ACTIONS = ("defer", "skip")
MAX_CAP, MAX_CAP_DAYS = 1000, 365
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_CHANNEL_NAMES = {"email": "email", "sms": "SMS"}


@dataclass(frozen=True)
class Verdict:
    """What the policy says about one message: send it, skip it, or defer it until `until`."""

    action: str
    until: datetime | None = None
    reason: str = ""
    rule: str | None = None

    def to_dict(self) -> dict:
        return {"action": self.action, "until": self.until.isoformat() if self.until else None,
                "reason": self.reason, "rule": self.rule}


SEND_VERDICT = Verdict(SEND)


@dataclass(frozen=True)
class Cap:
    """At most `max` messages in any `days` days."""

    max: int
    days: int


@dataclass(frozen=True)
class Policy:
    """An organization's contact policy, parsed from its settings."""

    quiet_start: time | None = None  # None: no quiet hours
    quiet_end: time | None = None
    caps: dict = field(default_factory=dict)  # channel -> Cap
    capped_action: str = "defer"


def _clock(text) -> time | None:
    """'21:00' -> time(21, 0); None for anything else."""
    match = _CLOCK.match(text) if isinstance(text, str) else None
    return time(int(match.group(1)), int(match.group(2))) if match else None


def parse(settings: Mapping | None) -> Policy:
    """The policy in these settings, leniently: a malformed part counts as unset (check() reports it on save)."""
    settings = settings or {}
    quiet = settings.get("quietHours") or {}
    start, end = _clock(quiet.get("start")), _clock(quiet.get("end"))
    on = bool(quiet.get("enabled")) and start is not None and end is not None and start != end
    caps = {}
    for channel, cap in (settings.get("frequencyCaps") or {}).items():
        if channel in CHANNELS and isinstance(cap, Mapping) and _whole(cap.get("max"), 1, MAX_CAP) \
                and _whole(cap.get("days"), 1, MAX_CAP_DAYS):
            caps[channel] = Cap(cap["max"], cap["days"])
    action = settings.get("cappedAction") if settings.get("cappedAction") in CAPPED_ACTIONS else "defer"
    return Policy(start if on else None, end if on else None, caps, action)


def _whole(value, low: int, high: int) -> bool:
    """An int (not a bool) within [low, high]."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check(settings: Mapping) -> list[dict]:
    """Every problem with the policy keys of these settings, as {field, message}."""
    problems = []
    quiet = settings.get("quietHours")
    if quiet is not None:
        if not isinstance(quiet, Mapping):
            return [{"field": "quietHours", "message": "quietHours must be an object {enabled, start, end}."}]
        for key in ("start", "end"):
            if quiet.get("enabled") and _clock(quiet.get(key)) is None:
                problems.append({"field": f"quietHours.{key}", "message": f"{key} must be a time of day as HH:MM."})
        if quiet.get("enabled") and quiet.get("start") == quiet.get("end") and not problems:
            problems.append({"field": "quietHours.end",
                             "message": "Quiet hours must end at another time than they start."})
    for channel, cap in (settings.get("frequencyCaps") or {}).items():
        problems += _cap_problems(channel, cap)
    if settings.get("cappedAction") not in (None, *CAPPED_ACTIONS):
        problems.append({"field": "cappedAction", "message": "cappedAction must be 'defer' or 'skip'."})
    return problems


def _cap_problems(channel, cap) -> list[dict]:
    """What is wrong with one frequency cap."""
    if channel not in CHANNELS:
        return [{"field": f"frequencyCaps.{channel}", "message": "Frequency caps exist for email and sms only."}]
    if not isinstance(cap, Mapping):
        return [{"field": f"frequencyCaps.{channel}", "message": "A cap is an object {max, days}."}]
    problems = []
    if not _whole(cap.get("max"), 1, MAX_CAP):
        problems.append({"field": f"frequencyCaps.{channel}.max", "message": f"max must be 1 to {MAX_CAP}."})
    if not _whole(cap.get("days"), 1, MAX_CAP_DAYS):
        problems.append({"field": f"frequencyCaps.{channel}.days", "message": f"days must be 1 to {MAX_CAP_DAYS}."})
    return problems


def zone(contact_tz: str | None, org_tz: str | None) -> ZoneInfo:
    """The contact's time zone, else the organization's, else UTC (an unknown name counts as none)."""
    for name in (contact_tz, org_tz):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_until(policy: Policy, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When the quiet hours that hold `now` end (UTC), or None outside them."""
    if policy.quiet_start is None:
        return None
    local = now.astimezone(tz)
    start, end, clock = policy.quiet_start, policy.quiet_end, local.time()
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return _at(day, end, tz)


def _at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """That wall-clock moment in tz, in UTC (a time skipped by a DST change lands just after it)."""
    moment = datetime.combine(day, clock, tzinfo=tz)
    return moment.astimezone(timezone.utc)


def cap_until(cap: Cap, sent: Sequence[datetime], now: datetime) -> datetime | None:
    """When another message fits under the cap (UTC), or None if one fits now; `sent` are earlier send times."""
    window = timedelta(days=cap.days)
    recent = sorted(moment for moment in sent if now - window < moment <= now)
    if len(recent) < cap.max:
        return None
    return recent[len(recent) - cap.max] + window  # the oldest message that must drop out of the window


def evaluate(policy: Policy, contact: Mapping, channel: str, now: datetime, *, sent: Sequence[datetime] = (),
             org_tz: str | None = None) -> Verdict:
    """The verdict for one message on `channel` to this contact now; `sent` are the contact's recent sends."""
    name = _CHANNEL_NAMES.get(channel, channel)
    if contact.get(f"{channel}_opt_out"):
        return Verdict(SKIP, reason=f"The contact has opted out of {name}.", rule=CONSENT)
    tz = zone(contact.get("timezone"), org_tz)
    cap = policy.caps.get(channel)
    free_at = cap_until(cap, sent, now) if cap else None
    if free_at is not None:
        text = f"The {name} frequency cap ({cap.max} per {cap.days} days) is reached."
        if policy.capped_action == "skip":
            return Verdict(SKIP, reason=text, rule=FREQUENCY_CAP)
        until = quiet_until(policy, free_at, tz) or free_at
        return Verdict(DEFER, until, f"{text} Deferred until {_local(until, tz)}.", FREQUENCY_CAP)
    ends = quiet_until(policy, now, tz)
    if ends is not None:
        hours = f"{policy.quiet_start:%H:%M}-{policy.quiet_end:%H:%M}"
        return Verdict(DEFER, ends, f"Quiet hours ({hours}, {tz.key}) until {_local(ends, tz)}.", QUIET_HOURS)
    return SEND_VERDICT


def _local(moment: datetime, tz: ZoneInfo) -> str:
    """A moment as the contact's wall clock, for reasons staff read."""
    return moment.astimezone(tz).strftime("%a %d %b %H:%M")

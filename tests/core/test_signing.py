"""atlas.core.signing against the standardwebhooks package, both ways: whsec secrets, several signatures, rotation,
the timestamp window and every SignatureError code."""
import base64
import time
from datetime import datetime, timezone

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from atlas.core import signing
from atlas.core.signing import SignatureError

BODY = b'{"type":"lead.created","email":"jane@example.com","name":"Ren\xc3\xa9e"}'
NOW = 1_760_000_000


def library_headers(secret: str, msg_id: str, when: int, body: bytes) -> dict:
    stamp = datetime.fromtimestamp(when, timezone.utc)
    return {"webhook-id": msg_id, "webhook-timestamp": str(when),
            "webhook-signature": Webhook(secret).sign(msg_id, stamp, body.decode())}


def verify(secrets, headers, body=BODY, now=NOW):
    return signing.verify(secrets, headers.get("webhook-id"), headers.get("webhook-timestamp"),
                          headers.get("webhook-signature"), body, now)


def test_new_secrets_are_whsec_base64_of_24_random_bytes():
    one, two = signing.new_secret(), signing.new_secret()
    assert one.startswith("whsec_") and one != two
    assert len(signing.key_of(one)) == signing.KEY_BYTES
    Webhook(one)  # the library takes it


def test_we_verify_what_the_library_signs():
    secret = signing.new_secret()
    assert verify([secret], library_headers(secret, "msg_1", NOW, BODY)) == NOW


def test_the_library_verifies_what_we_sign():
    secret = signing.new_secret()
    now = int(time.time())  # the library checks its window against the real clock
    headers = signing.headers(secret, "msg_2", now, BODY)
    assert Webhook(secret).verify(BODY, headers) is not None


def test_both_sign_the_same_bytes_identically():
    secret = signing.new_secret()
    assert signing.sign(secret, "msg_3", NOW, BODY) == library_headers(secret, "msg_3", NOW, BODY)["webhook-signature"]


def test_whsec_parsing_with_or_without_prefix_and_padding():
    key = bytes(range(24))
    plain = base64.b64encode(key).decode()
    assert signing.key_of("whsec_" + plain) == key == signing.key_of(plain)
    assert signing.key_of("whsec_" + base64.b64encode(b"12345").decode().rstrip("=")) == b"12345"
    for bad in ("whsec_not base64!", "whsec_"):
        with pytest.raises(ValueError):
            signing.key_of(bad)


def test_any_of_several_signatures_verifies_and_unknown_versions_are_ignored():
    old, new = signing.new_secret(), signing.new_secret()
    header = " ".join(["v2,ignored", signing.sign(old, "msg_4", NOW, BODY), signing.sign(new, "msg_4", NOW, BODY)])
    headers = {"webhook-id": "msg_4", "webhook-timestamp": str(NOW), "webhook-signature": header}

    assert verify([new], headers) == NOW and verify([old], headers) == NOW
    assert Webhook(new).verify(BODY, {**headers, "webhook-timestamp": str(int(time.time())),
                                      "webhook-signature": " ".join(
                                          signing.sign(s, "msg_4", int(time.time()), BODY) for s in (old, new))})


def test_rotation_either_secret_in_the_list_verifies():
    old, new = signing.new_secret(), signing.new_secret()
    assert verify([new, old], library_headers(old, "msg_5", NOW, BODY)) == NOW
    assert verify([new, old], library_headers(new, "msg_5", NOW, BODY)) == NOW
    with pytest.raises(SignatureError) as refused:
        verify([new], library_headers(old, "msg_5", NOW, BODY))
    assert refused.value.code == "WEBHOOK_SIGNATURE_INVALID"


def test_the_library_refuses_our_signature_with_another_secret():
    now = int(time.time())
    headers = signing.headers(signing.new_secret(), "msg_6", now, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(BODY, headers)


CASES = {
    "no id": ({"webhook-id": None}, "WEBHOOK_SIGNATURE_MISSING"),
    "no timestamp": ({"webhook-timestamp": None}, "WEBHOOK_SIGNATURE_MISSING"),
    "no signature": ({"webhook-signature": None}, "WEBHOOK_SIGNATURE_MISSING"),
    "empty signature": ({"webhook-signature": ""}, "WEBHOOK_SIGNATURE_MISSING"),
    "text timestamp": ({"webhook-timestamp": "yesterday"}, "WEBHOOK_TIMESTAMP_INVALID"),
    "fractional timestamp": ({"webhook-timestamp": f"{NOW}.5"}, "WEBHOOK_TIMESTAMP_INVALID"),
    "too old": ({"webhook-timestamp": str(NOW - 301)}, "WEBHOOK_TIMESTAMP_STALE"),
    "too new": ({"webhook-timestamp": str(NOW + 301)}, "WEBHOOK_TIMESTAMP_STALE"),
    "wrong signature": ({"webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()},
                        "WEBHOOK_SIGNATURE_INVALID"),
    "no v1 signature": ({"webhook-signature": "v1a,abc"}, "WEBHOOK_SIGNATURE_INVALID"),
    "another id": ({"webhook-id": "msg_other"}, "WEBHOOK_SIGNATURE_INVALID"),
}


@pytest.mark.parametrize("change, code", CASES.values(), ids=CASES.keys())
def test_every_refusal_has_its_code_and_a_message(change, code):
    secret = signing.new_secret()
    headers = {**library_headers(secret, "msg_7", NOW, BODY), **change}
    with pytest.raises(SignatureError) as refused:
        verify([secret], {k: v for k, v in headers.items() if v is not None})
    assert refused.value.code == code and refused.value.message


def test_the_window_is_five_minutes_inclusive_and_a_changed_body_fails():
    secret = signing.new_secret()
    for when in (NOW - 300, NOW + 300):
        assert verify([secret], library_headers(secret, "msg_8", when, BODY)) == when
    with pytest.raises(SignatureError) as refused:
        verify([secret], library_headers(secret, "msg_8", NOW, BODY), body=BODY + b" ")
    assert refused.value.code == "WEBHOOK_SIGNATURE_INVALID"

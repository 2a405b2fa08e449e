"""Every rule of the seed: one valid case and at least one invalid case, against
the pure validation (no HTTP, no Kafka). Invalid cases check the exact field
path reported, since that is what a client reads to fix its request."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.gateway.rules import InvalidParameter
from services.gateway.schema import MAX_WORKFLOW_MESSAGES, DispatchRequest
from services.gateway.validation import validate_dispatch


def item(
    channel: str,
    content: dict[str, Any],
    *,
    failover: dict[str, Any] | None = None,
    to: dict[str, Any] | None = None,
    frm: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    default_to = {"type": channel, "number": "447700900000"}
    default_from = {"type": channel, "number": "447700900001"}
    if channel == "messenger":
        default_to = {"type": channel, "id": "user-1"}
        default_from = {"type": channel, "id": "page-1"}
    if channel == "viber_service_msg":
        default_from = {"type": channel, "id": "service-1"}
    result: dict[str, Any] = {
        "from": frm or default_from,
        "to": to or default_to,
        "message": {"content": content, **options},
    }
    if failover is not None:
        result["failover"] = failover
    return result


FAILOVER = {"expiry_time": 600, "condition_status": "delivered"}
SMS_LAST = item("sms", {"type": "text", "text": "fallback"})


def dispatch(*items: dict[str, Any], template: Any = "failover") -> dict[str, Any]:
    return {"template": template, "workflow": list(items)}


def single(message: dict[str, Any]) -> dict[str, Any]:
    """``message`` as the first step, failing over to an SMS."""
    first = copy.deepcopy(message)
    first["failover"] = FAILOVER
    return dispatch(first, SMS_LAST)


def errors(body: Any) -> dict[str, str]:
    result = validate_dispatch(body)
    assert isinstance(result, list), "expected the request to be refused"
    return {p.name: p.reason for p in result}


def assert_valid(body: Any) -> DispatchRequest:
    result = validate_dispatch(body)
    assert isinstance(result, DispatchRequest), result
    return result


# -- template ----------------------------------------------------------------------
def test_template_failover_is_accepted_and_others_refused() -> None:
    assert_valid(dispatch(SMS_LAST))
    assert "template" in errors(dispatch(SMS_LAST, template="broadcast"))
    assert "template" in errors({"workflow": [SMS_LAST]})


# -- number of messages ------------------------------------------------------------
def test_workflow_needs_one_to_max_messages() -> None:
    many = [item("sms", {"type": "text", "text": "x"}, failover=FAILOVER)] * (
        MAX_WORKFLOW_MESSAGES - 1
    )
    assert_valid(dispatch(*many, SMS_LAST))
    assert errors(dispatch())["workflow"] == "must contain at least one message"
    too_many = [*many, item("sms", {"type": "text", "text": "x"}, failover=FAILOVER), SMS_LAST]
    assert "at most" in errors(dispatch(*too_many))["workflow"]


# -- channels ----------------------------------------------------------------------
@pytest.mark.parametrize("channel", ["sms", "whatsapp", "viber_service_msg", "messenger"])
def test_each_text_channel_is_accepted(channel: str) -> None:
    assert_valid(single(item(channel, {"type": "text", "text": "hi"})))


def test_mms_is_accepted() -> None:
    assert_valid(single(item("mms", {"type": "image", "image": {"url": "https://x.io/a.gif"}})))


def test_unknown_channel_is_refused() -> None:
    bad = item("sms", {"type": "text", "text": "hi"})
    bad["to"]["type"] = "telegram"
    assert "workflow[0].to.type" in errors(dispatch(bad))


def test_from_and_to_must_use_the_same_channel() -> None:
    bad = item("sms", {"type": "text", "text": "hi"}, frm={"type": "mms", "number": "447700900001"})
    assert "workflow[0].from.type" in errors(dispatch(bad))


# -- addresses ---------------------------------------------------------------------
def test_messenger_needs_ids_not_numbers() -> None:
    assert_valid(dispatch(item("messenger", {"type": "text", "text": "hi"})))
    bad = item(
        "messenger",
        {"type": "text", "text": "hi"},
        to={"type": "messenger", "number": "447700900000"},
        frm={"type": "messenger"},
    )
    found = errors(dispatch(bad))
    assert found["workflow[0].to.id"] == "is required for channel messenger"
    assert found["workflow[0].from.id"] == "is required for channel messenger"


def test_viber_sends_from_a_service_id_to_a_number() -> None:
    assert_valid(dispatch(item("viber_service_msg", {"type": "text", "text": "hi"})))
    bad = item(
        "viber_service_msg",
        {"type": "text", "text": "hi"},
        to={"type": "viber_service_msg", "id": "u"},
        frm={"type": "viber_service_msg", "number": "447700900001"},
    )
    found = errors(dispatch(bad))
    assert "workflow[0].to.number" in found
    assert "workflow[0].from.id" in found


@pytest.mark.parametrize("channel", ["sms", "mms", "whatsapp"])
def test_number_channels_need_a_sender_number(channel: str) -> None:
    content = {"type": "image", "image": {"url": "https://x.io/a.png"}}
    if channel != "mms":
        content = {"type": "text", "text": "hi"}
    bad = item(channel, content, frm={"type": channel, "id": "x"})
    assert errors(dispatch(bad))["workflow[0].from.number"] == f"is required for channel {channel}"


@pytest.mark.parametrize(
    "number", ["+447700900000", "00447700900000", "4477", "44-7700", "0447700900000"]
)
def test_numbers_are_e164_without_plus_or_00(number: str) -> None:
    bad = item("sms", {"type": "text", "text": "hi"}, to={"type": "sms", "number": number})
    assert "E.164" in errors(dispatch(bad))["workflow[0].to.number"]


# -- message types per channel -----------------------------------------------------
@pytest.mark.parametrize(
    ("channel", "refused"),
    [
        ("sms", {"type": "image", "image": {"url": "https://x.io/a.png"}}),
        ("mms", {"type": "text", "text": "hi"}),
        ("viber_service_msg", {"type": "audio", "audio": {"url": "https://x.io/a.mp3"}}),
        ("messenger", {"type": "template", "template": {"name": "t"}}),
    ],
)
def test_message_types_allowed_per_channel(channel: str, refused: dict[str, Any]) -> None:
    assert (
        "supports only"
        in errors(dispatch(item(channel, refused)))["workflow[0].message.content.type"]
    )


def test_whatsapp_takes_every_listed_type() -> None:
    for content in (
        {"type": "audio", "audio": {"url": "https://x.io/a.opus"}},
        {"type": "video", "video": {"url": "https://x.io/a.3gpp"}},
        {"type": "file", "file": {"url": "https://x.io/a.docx", "caption": "contract"}},
        {"type": "image", "image": {"url": "https://x.io/a.JPG", "caption": "look"}},
    ):
        assert_valid(dispatch(item("whatsapp", content)))


def test_content_object_must_match_type() -> None:
    found = errors(dispatch(item("sms", {"type": "text", "image": {"url": "https://x.io/a.png"}})))
    assert found["workflow[0].message.content.text"] == "is required when type is 'text'"
    assert "only allowed" in found["workflow[0].message.content.image"]


# -- text limits -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("channel", "limit"),
    [("messenger", 640), ("sms", 1000), ("viber_service_msg", 1000), ("whatsapp", 4096)],
)
def test_text_limits(channel: str, limit: int) -> None:
    assert_valid(dispatch(item(channel, {"type": "text", "text": "a" * limit})))
    found = errors(dispatch(item(channel, {"type": "text", "text": "a" * (limit + 1)})))
    assert f"at most {limit}" in found["workflow[0].message.content.text"]


def test_text_must_not_be_empty() -> None:
    assert "workflow[0].message.content.text" in errors(
        dispatch(item("sms", {"type": "text", "text": "  "}))
    )


# -- attachments -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("channel", "kind", "good", "bad"),
    [
        ("messenger", "image", "a.gif", "a.bmp"),
        ("mms", "image", "a.jpeg", "a.webp"),
        ("viber_service_msg", "image", "a.png", "a.gif"),
        ("whatsapp", "image", "a.jpg", "a.gif"),
        ("messenger", "audio", "a.mp3", "a.aac"),
        ("whatsapp", "audio", "a.amr", "a.wav"),
        ("messenger", "video", "a.mp4", "a.3gpp"),
        ("whatsapp", "video", "a.3gpp", "a.mov"),
        ("whatsapp", "file", "a.xlsx", "a.zip"),
    ],
)
def test_attachment_extensions_per_channel(channel: str, kind: str, good: str, bad: str) -> None:
    def body(name: str) -> dict[str, Any]:
        return dispatch(item(channel, {"type": kind, kind: {"url": f"https://x.io/m/{name}?v=1"}}))

    assert_valid(body(good))
    assert "must end in" in errors(body(bad))[f"workflow[0].message.content.{kind}.url"]


def test_messenger_files_take_any_extension_but_need_a_url() -> None:
    assert_valid(
        dispatch(item("messenger", {"type": "file", "file": {"url": "https://x.io/a.zip"}}))
    )
    found = errors(dispatch(item("messenger", {"type": "file", "file": {"url": "a.zip"}})))
    assert found["workflow[0].message.content.file.url"] == "must be an absolute http(s) URL"


def test_caption_only_on_whatsapp_and_mms() -> None:
    assert_valid(
        dispatch(
            item("mms", {"type": "image", "image": {"url": "https://x.io/a.png", "caption": "c"}})
        )
    )
    bad = item(
        "messenger", {"type": "image", "image": {"url": "https://x.io/a.png", "caption": "c"}}
    )
    assert "workflow[0].message.content.image.caption" in errors(dispatch(bad))


# -- Viber -------------------------------------------------------------------------
def test_viber_category_and_ttl() -> None:
    ok = item(
        "viber_service_msg",
        {"type": "text", "text": "hi"},
        viber_service_msg={"category": "promotion", "ttl": 600},
    )
    assert_valid(dispatch(ok))
    bad = item(
        "viber_service_msg",
        {"type": "text", "text": "hi"},
        viber_service_msg={"category": "marketing", "ttl": 5},
    )
    found = errors(dispatch(bad))
    assert "workflow[0].message.viber_service_msg.category" in found
    assert "between" in found["workflow[0].message.viber_service_msg.ttl"]


def test_viber_options_only_on_viber() -> None:
    bad = item("sms", {"type": "text", "text": "hi"}, viber_service_msg={"ttl": 600})
    assert "only valid" in errors(dispatch(bad))["workflow[0].message.viber_service_msg"]


# -- Messenger ---------------------------------------------------------------------
def test_messenger_category_and_tag() -> None:
    for options in ({"category": "update"}, {"category": "message_tag", "tag": "ACCOUNT_UPDATE"}):
        assert_valid(dispatch(item("messenger", {"type": "text", "text": "hi"}, messenger=options)))
    found = errors(
        dispatch(
            item("messenger", {"type": "text", "text": "hi"}, messenger={"category": "message_tag"})
        )
    )
    assert found["workflow[0].message.messenger.tag"] == "is required when category is message_tag"
    found = errors(
        dispatch(item("messenger", {"type": "text", "text": "hi"}, messenger={"category": "promo"}))
    )
    assert "workflow[0].message.messenger.category" in found


def test_messenger_tag_without_message_tag_category_is_refused() -> None:
    bad = item(
        "messenger", {"type": "text", "text": "hi"}, messenger={"category": "response", "tag": "X"}
    )
    assert "workflow[0].message.messenger.tag" in errors(dispatch(bad))


# -- WhatsApp template -------------------------------------------------------------
def test_whatsapp_template_with_policy_and_locale() -> None:
    ok = item(
        "whatsapp",
        {"type": "template", "template": {"name": "otp", "parameters": [{"default": "1234"}, "x"]}},
        whatsapp={"policy": "deterministic", "locale": "en-GB"},
    )
    assert_valid(dispatch(ok))


def test_whatsapp_template_errors_are_all_reported() -> None:
    bad = item(
        "whatsapp",
        {"type": "template", "template": {"name": "", "parameters": [{"value": 1}]}},
        whatsapp={"policy": "sometimes", "locale": "en_GB"},
    )
    found = errors(dispatch(bad))
    assert set(found) >= {
        "workflow[0].message.content.template.name",
        "workflow[0].message.content.template.parameters[0]",
        "workflow[0].message.whatsapp.policy",
        "workflow[0].message.whatsapp.locale",
    }


def test_whatsapp_template_needs_a_locale() -> None:
    bad = item("whatsapp", {"type": "template", "template": {"name": "otp"}})
    assert "workflow[0].message.whatsapp.locale" in errors(dispatch(bad))


# -- failover ----------------------------------------------------------------------
def test_failover_on_every_message_but_the_last() -> None:
    first = item("sms", {"type": "text", "text": "a"})
    found = errors(dispatch(first, item("sms", {"type": "text", "text": "b"}, failover=FAILOVER)))
    assert found["workflow[0].failover"] == "is required on every message but the last"
    assert found["workflow[1].failover"] == "must not be set on the last message"


@pytest.mark.parametrize("expiry", [15, 86_400])
def test_expiry_time_bounds_are_inclusive(expiry: int) -> None:
    first = item("sms", {"type": "text", "text": "a"}, failover={**FAILOVER, "expiry_time": expiry})
    assert_valid(dispatch(first, SMS_LAST))


@pytest.mark.parametrize("expiry", [14, 86_401, "600", 60.5])
def test_expiry_time_out_of_range_or_not_an_integer(expiry: Any) -> None:
    first = item("sms", {"type": "text", "text": "a"}, failover={**FAILOVER, "expiry_time": expiry})
    assert "workflow[0].failover.expiry_time" in errors(dispatch(first, SMS_LAST))


@pytest.mark.parametrize(
    ("status", "ok"), [("delivered", True), ("read", True), ("submitted", False)]
)
def test_condition_status(status: str, ok: bool) -> None:
    first = item(
        "sms", {"type": "text", "text": "a"}, failover={**FAILOVER, "condition_status": status}
    )
    body = dispatch(first, SMS_LAST)
    if ok:
        assert_valid(body)
    else:
        assert "workflow[0].failover.condition_status" in errors(body)


# -- shape -------------------------------------------------------------------------
def test_unknown_fields_are_named() -> None:
    bad = copy.deepcopy(SMS_LAST)
    bad["message"]["priority"] = "high"
    assert errors(dispatch(bad))["workflow[0].message.priority"] == "is not a recognised field"


def test_body_must_be_an_object() -> None:
    assert errors([1, 2])["body"] == "must be a JSON object"


def test_every_error_is_reported_not_just_the_first() -> None:
    bad_first = item(
        "sms", {"type": "text", "text": "a" * 1001}, to={"type": "sms", "number": "+1"}
    )
    bad_last = item("messenger", {"type": "video", "video": {"url": "https://x.io/v.mov"}})
    found = errors(dispatch(bad_first, bad_last))
    assert set(found) == {
        "workflow[0].to.number",
        "workflow[0].message.content.text",
        "workflow[0].failover",
        "workflow[1].message.content.video.url",
    }


def test_the_stored_workflow_is_what_the_client_sent() -> None:
    body = single(
        item("viber_service_msg", {"type": "text", "text": "hi"}, viber_service_msg={"ttl": 60})
    )
    assert assert_valid(body).workflow_as_sent() == body["workflow"]


def test_invalid_parameter_dict_shape() -> None:
    assert InvalidParameter("a.b", "why").as_dict() == {"name": "a.b", "reason": "why"}

"""The seed's rules for one message's content: which types a channel takes, text
limits, attachments and their extensions, templates, channel options.

Pure functions over the parsed JSON body, like :mod:`services.gateway.rules`
(which checks the dispatch and each item and calls :func:`check_message`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

# Message types per channel. The seed lists ``custom`` as a type but no channel
# list names it; the Messages API v0.1 accepts custom payloads on WhatsApp,
# Messenger and Viber, so those three take it. MMS carries images.
CONTENT_TYPES = {
    "sms": ("text",),
    "mms": ("image",),
    "whatsapp": ("template", "text", "image", "audio", "video", "file", "custom"),
    "viber_service_msg": ("text", "image", "custom"),
    "messenger": ("text", "image", "audio", "video", "file", "custom"),
}

TEXT_LIMITS = {"messenger": 640, "sms": 1000, "viber_service_msg": 1000, "whatsapp": 4096}

# Allowed attachment extensions per (content type, channel). ``None``: any
# extension (Messenger files: "a wide range of attachments").
EXTENSIONS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "image": {
        "messenger": ("jpg", "jpeg", "png", "gif"),
        "mms": ("jpg", "jpeg", "png", "gif"),
        "viber_service_msg": ("jpg", "jpeg", "png"),
        "whatsapp": ("jpg", "jpeg", "png"),
    },
    "audio": {"messenger": ("mp3",), "whatsapp": ("aac", "m4a", "amr", "mp3", "opus")},
    "video": {"messenger": ("mp4",), "whatsapp": ("mp4", "3gpp")},
    "file": {"messenger": None, "whatsapp": ("pdf", "doc", "docx", "ppt", "pptx", "xls", "xlsx")},
}
CAPTION_CHANNELS = ("whatsapp", "mms")
CONTENT_OBJECTS = ("text", "image", "audio", "video", "file", "template", "custom")
# Viber's own bounds for a service message's time to live (the seed gives none).
VIBER_TTL_MIN, VIBER_TTL_MAX = 30, 259_200
# BCP 47 language tag: language, optional script, optional region, variants.
BCP47 = re.compile(
    r"[a-zA-Z]{2,3}(-[a-zA-Z]{4})?(-(?:[a-zA-Z]{2}|[0-9]{3}))?(-(?:[a-zA-Z0-9]{5,8}|[0-9][a-zA-Z0-9]{3}))*"
)


@dataclass(frozen=True)
class InvalidParameter:
    name: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "reason": self.reason}


def object_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def check_message(message: dict[str, Any], path: str, channel: str) -> list[InvalidParameter]:
    problems: list[InvalidParameter] = []
    content = message.get("content")
    if isinstance(content, dict):
        problems += _check_content(content, f"{path}.content", channel)
        if content.get("type") == "template" and channel == "whatsapp":
            locale = object_or_empty(message.get("whatsapp")).get("locale")
            if locale is None:
                problems.append(
                    InvalidParameter(
                        f"{path}.whatsapp.locale", "is required for WhatsApp template messages"
                    )
                )
    problems += _check_channel_options(message, path, channel)
    return problems


def _check_content(content: dict[str, Any], path: str, channel: str) -> list[InvalidParameter]:
    problems: list[InvalidParameter] = []
    kind = content.get("type")
    if not isinstance(kind, str) or kind not in CONTENT_OBJECTS:
        return problems  # the model reports the enumeration
    allowed = CONTENT_TYPES[channel]
    if kind not in allowed:
        problems.append(
            InvalidParameter(
                f"{path}.type", f"channel {channel} supports only: {', '.join(allowed)}"
            )
        )
    if content.get(kind) is None:
        problems.append(InvalidParameter(f"{path}.{kind}", f"is required when type is {kind!r}"))
    for other in CONTENT_OBJECTS:
        if other != kind and content.get(other) is not None:
            problems.append(
                InvalidParameter(f"{path}.{other}", f"is only allowed when type is {other!r}")
            )
    if kind not in allowed:
        return problems
    value = content.get(kind)
    if kind == "text" and isinstance(value, str):
        problems += _check_text(value, f"{path}.text", channel)
    elif kind in EXTENSIONS and isinstance(value, dict):
        problems += _check_attachment(value, f"{path}.{kind}", kind, channel)
    elif kind == "template" and isinstance(value, dict):
        problems += _check_template(value, f"{path}.template")
    return problems


def _check_text(text: str, path: str, channel: str) -> list[InvalidParameter]:
    limit = TEXT_LIMITS[channel]
    if not text.strip():
        return [InvalidParameter(path, "must not be empty")]
    if len(text) > limit:
        return [
            InvalidParameter(path, f"is {len(text)} characters; {channel} allows at most {limit}")
        ]
    return []


def _check_attachment(
    attachment: dict[str, Any], path: str, kind: str, channel: str
) -> list[InvalidParameter]:
    problems: list[InvalidParameter] = []
    url = attachment.get("url")
    if isinstance(url, str):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(InvalidParameter(f"{path}.url", "must be an absolute http(s) URL"))
        else:
            allowed = EXTENSIONS[kind].get(channel)
            name = parts.path.rsplit("/", 1)[-1]
            extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            if allowed is not None and extension not in allowed:
                problems.append(
                    InvalidParameter(
                        f"{path}.url",
                        f"{channel} {kind} must end in one of: "
                        + ", ".join(f".{e}" for e in allowed),
                    )
                )
    if attachment.get("caption") is not None and channel not in CAPTION_CHANNELS:
        problems.append(
            InvalidParameter(f"{path}.caption", "is supported only by whatsapp and mms")
        )
    return problems


def _check_template(template: dict[str, Any], path: str) -> list[InvalidParameter]:
    problems: list[InvalidParameter] = []
    name = template.get("name")
    if isinstance(name, str) and not name.strip():
        problems.append(InvalidParameter(f"{path}.name", "must not be empty"))
    parameters = template.get("parameters")
    if isinstance(parameters, list):
        for index, parameter in enumerate(parameters):
            ok = isinstance(parameter, str) or (
                isinstance(parameter, dict)
                and set(parameter) == {"default"}
                and isinstance(parameter["default"], str)
            )
            if not ok:
                problems.append(
                    InvalidParameter(
                        f"{path}.parameters[{index}]",
                        'must be a string or {"default": string}',
                    )
                )
    return problems


def _check_channel_options(
    message: dict[str, Any], path: str, channel: str
) -> list[InvalidParameter]:
    problems: list[InvalidParameter] = []
    for option in ("viber_service_msg", "messenger", "whatsapp"):
        if message.get(option) is not None and channel != option:
            problems.append(
                InvalidParameter(f"{path}.{option}", f"is only valid for channel {option}")
            )
    if channel == "viber_service_msg":
        ttl = object_or_empty(message.get("viber_service_msg")).get("ttl")
        if isinstance(ttl, int) and not VIBER_TTL_MIN <= ttl <= VIBER_TTL_MAX:
            problems.append(
                InvalidParameter(
                    f"{path}.viber_service_msg.ttl",
                    f"must be between {VIBER_TTL_MIN} and {VIBER_TTL_MAX} seconds",
                )
            )
    if channel == "messenger":
        options = object_or_empty(message.get("messenger"))
        category, tag = options.get("category"), options.get("tag")
        if category == "message_tag" and (not isinstance(tag, str) or not tag.strip()):
            problems.append(
                InvalidParameter(
                    f"{path}.messenger.tag", "is required when category is message_tag"
                )
            )
        if tag is not None and category != "message_tag":
            problems.append(
                InvalidParameter(
                    f"{path}.messenger.tag", "is only valid when category is message_tag"
                )
            )
    if channel == "whatsapp":
        locale = object_or_empty(message.get("whatsapp")).get("locale")
        if isinstance(locale, str) and not BCP47.fullmatch(locale):
            problems.append(
                InvalidParameter(
                    f"{path}.whatsapp.locale", "must be a BCP 47 language tag such as en-GB"
                )
            )
    return problems

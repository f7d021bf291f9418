"""The flow a service number runs until an admin saves one: greet, or say when we open, then voicemail.

A number that was just added must already answer properly: the caller hears a greeting (or the
closed/holiday message and the next opening) and can leave a message; nobody hears dead air.
"""

from __future__ import annotations

from cti.ivr.flow import Flow, parse_flow

DEFAULT_FLOW: Flow = parse_flow({
    "start": "hours",
    "nodes": {
        "hours": {"type": "hours", "open": "welcome", "closed": "closed", "holiday": "holiday",
                  "override_closed": "exceptional-closure"},
        "welcome": {"type": "play", "prompts": ["welcome"], "next": "message"},
        "message": {"type": "voicemail", "reason": "request"},
        "closed": {"type": "play", "prompts": ["closed"], "say_next_opening": True, "next": "closed-message"},
        "holiday": {"type": "play", "prompts": ["holiday"], "say_next_opening": True, "next": "closed-message"},
        "exceptional-closure": {"type": "play", "prompts": ["exceptional-closure"], "say_next_opening": True,
                                "next": "closed-message"},
        "closed-message": {"type": "voicemail", "reason": "closed"},
    },
})

from __future__ import annotations

import json

from polymodal.describe.description import Description, FrameDescription, Segment, clock


def test_clock_formats_minutes_and_hours() -> None:
    assert clock(0) == "0:00"
    assert clock(75.9) == "1:15"
    assert clock(3 * 3600 + 62) == "3:01:02"


def test_as_text_puts_each_part_on_its_own_line() -> None:
    d = Description(
        "talk.mp4",
        "video",
        ocr_text="OPEN",
        segments=[Segment(0.0, 2.5, "hello there"), Segment(65.0, 67.0, "goodbye")],
        frames=[FrameDescription(3.0, "a dog", "OPEN\nDAILY"), FrameDescription(6.0)],
        tags=[("dog barking", 0.4)],
    )
    assert d.as_text().splitlines() == [
        "Text: OPEN",
        '[0:03] a dog; text "OPEN / DAILY"',
        "Speech:",
        "[0:00] hello there",
        "[1:05] goodbye",
        "Sounds: dog barking",
    ]


def test_empty_description_has_no_text_and_serialises() -> None:
    d = Description("x.wav", "audio", outcome="empty", notes=["silent audio"])
    assert d.as_text() == ""
    data = json.loads(json.dumps(d.to_dict()))
    assert data["outcome"] == "empty" and data["notes"] == ["silent audio"]
    assert data["segments"] == [] and data["tags"] == []


def test_tags_serialise_as_rounded_pairs() -> None:
    d = Description("x.wav", "audio", tags=[("gong", 0.123456)])
    assert d.to_dict()["tags"] == [["gong", 0.1235]]

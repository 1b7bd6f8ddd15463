"""Auto mode's candidate list and the leaderboard as printed."""

from __future__ import annotations

from polymodal.fusion.base import SlotSpec
from polymodal.modality import Modality
from polymodal.predict.auto import candidates, format_leaderboard

PHOTO = SlotSpec("photo", Modality.IMAGE, 8, 8)
BACK = SlotSpec("back", Modality.IMAGE, 8, 8)
TAB = SlotSpec("tabular", Modality.NUMERIC, 4, 4)


def test_auto_tries_each_modality_group_alone_then_every_fusion() -> None:
    cands = candidates("auto", [PHOTO, BACK, TAB])
    names = ["image only", "tabular only", "early", "late", "hybrid", "linear"]
    assert [c.name for c in cands] == names
    assert cands[0].slots == (PHOTO, BACK) and cands[0].kind == "early"
    assert all(c.slots == (PHOTO, BACK, TAB) for c in cands[2:])


def test_one_group_needs_no_single_modality_baseline() -> None:
    fusions = ["early", "late", "hybrid", "linear"]
    assert [c.name for c in candidates("auto", [PHOTO, BACK])] == fusions
    assert [c.name for c in candidates("late", [PHOTO, TAB])] == ["late"]


def test_leaderboard_marks_the_kept_model_and_formats_errors_in_label_units() -> None:
    rows = [
        {"candidate": "tabular only", "val_score": 194377.9, "test_score": 123234.4,
         "fit_seconds": 0.8, "chosen": True, "metric": "mae"},
        {"candidate": "early", "val_score": 266173.1, "test_score": None,
         "fit_seconds": 12.25, "chosen": False, "metric": "mae"},
    ]  # fmt: skip
    lines = format_leaderboard(rows).splitlines()
    assert lines[0].split() == ["candidate", "val", "mae", "test", "mae", "seconds"]
    assert lines[1].split() == ["*", "tabular", "only", "194,378", "123,234", "0.8"]
    assert lines[2].split() == ["early", "266,173", "-", "12.2"]
    assert len(lines) == 3  # no refit score: nothing more
    rows[0]["final_test_score"] = 120000.0
    last = format_leaderboard(rows).splitlines()[-1]
    assert last.startswith("saved model (the kept candidate retrained") and last.endswith("120,000")

"""``polymodal align``, ``classify``, ``eval zeroshot`` and ``eval retrieval`` end to end.

The table is real: scikit-learn's handwritten digits saved as PNG files beside their words. The
encoders are the two towers of a tiny random CLIP checkpoint saved to a folder, the same code
path as a real checkpoint, so the test needs no weights package.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.cli.test_cli import run
from tests.encoders.test_huggingface import clip_folder

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
N = 240


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("digits")
    (folder / "img").mkdir()
    pixels, labels = load_digits(return_X_y=True)
    rows = []
    for i in range(N):
        img = np.kron(pixels[i].reshape(8, 8) * 255 / 16, np.ones((4, 4))).astype(np.uint8)
        Image.fromarray(img).convert("RGB").save(folder / "img" / f"{i}.png")
        rows.append(
            {"image": f"img/{i}.png", "caption": WORDS[labels[i]], "digit": WORDS[labels[i]]}
        )
    rows[5]["caption"] = None  # one side missing: skipped and counted
    rows[7]["image"] = "img/gone.png"  # the file does not exist: skipped and counted
    pd.DataFrame(rows).to_csv(folder / "pairs.csv", index=False)
    return folder / "pairs.csv"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return clip_folder(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def aligned(table: Path, clip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("run") / "aligned"
    res = run(
        "align", str(table), "--a", "image", "--b", "caption", "-o", str(out),
        "--a-encoder", str(clip), "--b-encoder", str(clip), "--lock", "none",
        "--epochs", "30", "--patience", "30", "--lr", "0.01", "--batch-size", "256",
        "--cache-dir", str(out.parent / "cache"), "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return out, res.stdout + res.stderr


def test_align_trains_saves_and_counts_skipped_pairs(aligned: tuple[Path, str]) -> None:
    out, log = aligned
    config = json.loads((out / "config.json").read_text())
    assert config["format"] == "polymodal-alignment"
    assert config["sides"]["a"]["column"] == "image" and config["sides"]["b"]["column"] == "caption"
    assert config["record"]["pairs_skipped"] == 2
    assert config["record"]["pairs_train"] + config["record"]["pairs_val"] == N - 2
    assert "2 of 240 pairs skipped" in log
    assert "row 5: column 'caption': empty" in log and "row 7: column 'image'" in log
    assert re.search(r"image -> caption: R@1 \d+\.\d% \[", log)
    skipped = pd.read_csv(out / "skipped.csv")
    assert skipped["row"].tolist() == [5, 7]
    assert "file not found" in skipped["problem"].iloc[1]


def test_classify_with_the_trained_alignment(aligned: tuple[Path, str], table: Path) -> None:
    out, _ = aligned
    files = [str(table.parent / "img" / f"{i}.png") for i in range(3)]
    res = run(
        "classify", *files, str(table.parent / "missing.png"), "--labels", ",".join(WORDS),
        "--template", "{}", "--alignment", str(out), "--top", "2", "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 3
    for line, f in zip(lines, files, strict=True):
        cells = line.split("\t")
        assert cells[0] == f and cells[1] in WORDS and cells[3] in WORDS
        assert 0 <= float(cells[2]) <= 1 and float(cells[2]) >= float(cells[4])
    assert "skipped" in res.stderr and "missing.png" in res.stderr


def test_classify_with_a_clip_checkpoint_as_json(clip: Path, table: Path) -> None:
    res = run(
        "classify", str(table.parent / "img"), "--labels", "cat,dog", "--clip", str(clip),
        "--json", "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    records = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(records) == N  # every PNG in the folder
    assert all(len(r["labels"]) == 1 and set(r["labels"]) <= {"cat", "dog"} for r in records)
    assert all(0.5 <= next(iter(r["labels"].values())) <= 1 for r in records)


def test_eval_zeroshot_prints_accuracy_with_an_interval(
    aligned: tuple[Path, str], table: Path
) -> None:
    out, _ = aligned
    res = run(
        "eval", "zeroshot", str(table), "--label", "digit", "--column", "image",
        "--template", "{}", "--alignment", str(out), "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    m = re.search(
        r"zero-shot accuracy on (\d+) rows \(10 classes\): ([\d.]+)% \[([\d.]+), ([\d.]+)\]",
        res.stdout,
    )
    assert m, res.stdout
    n, acc, low, high = int(m[1]), float(m[2]), float(m[3]), float(m[4])
    assert n == N - 1 and low <= acc <= high
    assert acc > 20.0  # chance is 10%; these are mostly training rows
    assert "1 of 240 rows skipped" in res.stderr and "img/gone.png: file not found" in res.stderr


def test_eval_zeroshot_whole_number_labels_with_a_blank(
    aligned: tuple[Path, str], table: Path, tmp_path: Path
) -> None:
    """pandas reads an integer column with a blank as floats: the classes stay "3", not "3.0"."""
    out, _ = aligned
    frame = pd.read_csv(table).head(40)
    frame["image"] = [str(table.parent / p) for p in frame["image"]]
    frame["number"] = [WORDS.index(w) for w in frame["digit"]]
    frame.loc[3, "number"] = None
    frame.to_csv(tmp_path / "numbers.csv", index=False)
    res = run(
        "eval", "zeroshot", str(tmp_path / "numbers.csv"), "--label", "number", "--column",
        "image", "--alignment", str(out), "--base", "/", "--transductive", "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "zero-shot accuracy on 38 rows (10 classes)" in res.stdout  # a blank, a missing file
    assert re.search(r"^  3 +[\d.]+%", res.stdout, re.M) and ".0 " not in res.stdout
    # 38 rows are too few to transduce over 10 labels: the headline must not claim it did
    assert "transductive zero-shot accuracy" not in res.stdout
    assert "inputs per label" in res.stderr
    assert "row 3: no label" not in res.stderr and ": no label" in res.stderr


def test_eval_retrieval_prints_recall_both_ways(aligned: tuple[Path, str], table: Path) -> None:
    out, _ = aligned
    res = run(
        "eval", "retrieval", str(table), "--a", "image", "--b", "caption",
        "--alignment", str(out), "-k", "1", "-k", "5", "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert f"{N - 2} pairs" in res.stdout and "held-out" not in res.stdout
    assert re.search(r"image -> caption: R@1 [\d.]+% \[[\d.]+, [\d.]+\], R@5", res.stdout)
    assert re.search(r"caption -> image: R@1", res.stdout)
    assert "2 of 240 pairs skipped" in res.stderr and "row 7: column 'image'" in res.stderr


def test_eval_retrieval_refuses_k_below_one_and_leaves_out_trivial_k(
    aligned: tuple[Path, str], table: Path
) -> None:
    out, _ = aligned
    res = run("eval", "retrieval", str(table), "--a", "image", "--b", "caption", "-k", "0")
    assert res.returncode == 2 and "-k must be at least 1" in res.stderr
    res = run(
        "eval", "retrieval", str(table), "--a", "image", "--b", "caption",
        "--alignment", str(out), "-k", "1", "-k", "10", "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    # ten digit words are ten answers: every caption is within the first ten
    assert "R@10 left out: with 10 distinct answers" in res.stdout
    assert not re.search(r"R@10 [\d.]+%", res.stdout)


def test_classify_fails_when_no_file_can_be_read(table: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    res = run("classify", str(bad), "--labels", "cat,dog", "-q")
    assert res.returncode == 1
    assert "skipped" in res.stderr and "none of the 1 files could be read" in res.stderr


def test_classify_refuses_two_spaces(clip: Path, table: Path) -> None:
    res = run(
        "classify", str(table.parent / "img" / "0.png"), "--labels", "a,b",
        "--clip", str(clip), "--alignment", "conse",
    )  # fmt: skip
    assert res.returncode == 2 and "give one of them" in res.stderr


def test_align_checks_options_and_output_before_any_work(table: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    res = run("align", str(table), "--a", "image", "--b", "caption", "-o", str(a_file))
    assert res.returncode == 2 and "is a file" in res.stderr
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    res = run("align", str(table), "--a", "image", "--b", "caption", "-o", str(foreign))
    assert res.returncode == 2 and "is not a saved alignment" in res.stderr
    assert (foreign / "notes.txt").read_text() == "keep me"
    for option, message in ((["--loss", "foo"], "siglip"), (["--lock", "x"], "--lock must be")):
        res = run(
            "align", str(table), "--a", "image", "--b", "caption", "-o", str(tmp_path / "o"),
            *option,
        )  # fmt: skip
        assert res.returncode == 2 and message in res.stderr, res.stderr
        assert "embed" not in res.stderr  # refused before any embedding


def test_align_lists_every_skipped_row_when_none_is_left(table: Path, tmp_path: Path) -> None:
    frame = pd.DataFrame({"image": [f"img/gone{i}.png" for i in range(8)], "caption": ["x"] * 8})
    frame.to_csv(table.parent / "allgone.csv", index=False)
    out = tmp_path / "o"
    res = run("align", str(table.parent / "allgone.csv"), "--a", "image", "--b", "caption",
              "-o", str(out), "-q")  # fmt: skip
    assert res.returncode == 2 and "at least 2 training pairs" in res.stderr
    assert pd.read_csv(out / "skipped.csv")["row"].tolist() == list(range(8))


def test_eval_retrieval_through_a_fine_tuned_side(table: Path, clip: Path, tmp_path: Path) -> None:
    """An alignment that fine-tuned an encoder embeds the cells through it (cached vectors are
    the frozen encoder's)."""
    out = tmp_path / "tuned"
    res = run(
        "align", str(table), "--a", "image", "--b", "caption", "-o", str(out),
        "--a-encoder", str(clip), "--b-encoder", str(clip), "--unfreeze", "1",
        "--epochs", "2", "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    res = run(
        "eval", "retrieval", str(table), "--a", "image", "--b", "caption",
        "--alignment", str(out), "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert re.search(r"image -> caption: R@1 [\d.]+%", res.stdout)


def test_align_text_with_text(table: Path, clip: Path, tmp_path: Path) -> None:
    """Two text columns: one encoder on both sides, a head trained into the other's space."""
    out = tmp_path / "tt"
    res = run(
        "align", str(table), "--a", "caption", "--b", "digit", "-o", str(out),
        "--a-encoder", str(clip), "--b-encoder", str(clip), "--epochs", "20", "--lr", "0.01",
        "--cache-dir", str(tmp_path / "cache"), "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["sides"]["a"]["modality"] == config["sides"]["b"]["modality"] == "text"
    # equal words are one group: chance is 1 in 10 digit words
    r1 = re.search(r"caption -> digit: R@1 ([\d.]+)%", res.stdout)
    assert r1 and float(r1.group(1)) > 50.0, res.stdout
    assert pd.read_csv(out / "skipped.csv")["row"].tolist() == [5]  # its caption is empty


def test_align_images_with_speech(table: Path, clip: Path, tmp_path: Path) -> None:
    """Image <-> audio, neither side text: both heads train. Real spoken digits (FSDD)."""
    from tests.conftest import require_shared

    fsdd = require_shared("fsdd")
    frame = pd.read_csv(table).head(60)
    clips = sorted(fsdd.glob("*.wav"))
    frame["speech"] = [
        next(str(p) for p in clips if p.name.startswith(f"{WORDS.index(w)}_")) if w == w else None
        for w in frame["digit"]
    ]
    pairs = tmp_path / "pairs.csv"
    frame.assign(image=[str(table.parent / p) for p in frame["image"]]).to_csv(pairs, index=False)
    out = tmp_path / "ia"
    res = run(
        "align", str(pairs), "--a", "image", "--b", "speech", "-o", str(out), "--base", "/",
        "--a-encoder", str(clip), "--epochs", "3", "--cache-dir", str(tmp_path / "cache"), "-q",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["sides"]["b"]["modality"] == "audio"
    assert re.search(r"speech -> image: R@1 [\d.]+%", res.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # Label lists are checked in tests/align/test_zeroshot.py; here, that the CLI says so.
        (["--labels", "cat,Cat"], "duplicated labels: 'Cat'"),
        (["--labels", "a,b", "--alignment", "/nonexistent/x"], "is not 'default', 'conse'"),
    ],
)
def test_classify_bad_input_is_one_clear_line(table: Path, args: list[str], message: str) -> None:
    res = run("classify", str(table.parent / "img" / "0.png"), *args)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr


def test_align_bad_input_is_one_clear_line(table: Path, tmp_path: Path) -> None:
    res = run("align", str(table), "--a", "image", "--b", "nope", "-o", str(tmp_path / "o"))
    assert res.returncode == 2 and "column 'nope' is not in the table" in res.stderr
    res = run("align", str(table), "--a", "image", "--b", "image", "-o", str(tmp_path / "o"))
    assert res.returncode == 2 and "same column" in res.stderr
    res = run(
        "align", str(table), "--a", "image", "--b", "caption", "-o", str(tmp_path / "o"),
        "--a-encoder", "nosuchencoder",
    )  # fmt: skip
    assert res.returncode == 2 and "unknown encoder 'nosuchencoder'" in res.stderr
    assert "Traceback" not in res.stderr

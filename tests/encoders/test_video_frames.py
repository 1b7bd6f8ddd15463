"""The frame-based video encoder on a real clip assembled from real photos."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from polymodal.encoders.registry import build_encoder, default_encoder_name
from polymodal.errors import InputError
from polymodal.modality import Modality


def _photo(name: str) -> Image.Image:
    from sklearn.datasets import load_sample_image

    return Image.fromarray(load_sample_image(name)).resize((320, 240))


def _slideshow(path: Path, photos: list[Image.Image], seconds_each: float) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.time_base = stream.codec_context.time_base = Fraction(1, 10)
        pts = 0
        for photo in photos:
            for _ in range(int(seconds_each * 10)):
                frame = av.VideoFrame.from_ndarray(np.asarray(photo), format="rgb24")
                frame.pts = pts
                pts += 1
                container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def test_default_video_encoder_is_registered() -> None:
    assert default_encoder_name(Modality.VIDEO) == "video-frames"


@pytest.mark.real_weights
def test_video_embedding_is_the_mean_of_its_frames(tmp_path: Path) -> None:
    china, flower = _photo("china.jpg"), _photo("flower.jpg")
    video = _slideshow(tmp_path / "show.mp4", [china, flower], seconds_each=2.0)
    enc = build_encoder("video-frames")
    decoded = enc.decode(str(video))
    assert len(decoded.frames) == 4  # 1 frame per second over 4 seconds
    emb = enc.encode([decoded], tokens=True)[0]
    assert emb.tokens.shape == (4, 1280) and emb.pooled.shape == (1280,)
    image = enc.image
    photos = np.stack(
        [e.pooled for e in image.encode([image.preprocess(china), image.preprocess(flower)])]
    )

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    # Early frames look like the first photo, late frames like the second (after H.264 coding).
    tokens = emb.tokens.astype(np.float32)
    assert cos(tokens[0], photos[0]) > 0.9 > cos(tokens[0], photos[1])
    assert cos(tokens[3], photos[1]) > 0.9 > cos(tokens[3], photos[0])
    assert cos(emb.pooled, photos.mean(0)) > 0.95


def test_corrupt_video_is_an_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    with pytest.raises(InputError):
        build_encoder("video-frames", tiny=True).decode(str(bad))

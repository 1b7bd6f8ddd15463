"""Shared image preprocessing: geometry, normalisation and argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from polymodal.encoders.image_preprocess import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    normalize,
    pixels_chw,
    preprocess_image,
    resize_and_crop,
    stack_batch,
)


def _gradient(width: int, height: int) -> Image.Image:
    """Red rises left to right, green rises top to bottom, blue constant."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    rgb = np.stack([x, y, np.full_like(x, 40.0)], axis=-1)
    return Image.fromarray(rgb.round().astype(np.uint8), "RGB")


def test_shape_dtype_and_layout_for_a_portrait_image() -> None:
    out = preprocess_image(_gradient(300, 500), size=64, crop=56)
    assert out.shape == (3, 56, 56)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    # Channels first, rows then columns: red grows along W, green along H, blue is flat.
    assert np.all(np.diff(out[0].mean(axis=0)) > 0)
    assert np.all(np.diff(out[1].mean(axis=1)) > 0)
    assert np.ptp(out[2]) < 1e-6


def test_normalisation_is_x_over_255_minus_mean_over_std() -> None:
    image = Image.new("RGB", (40, 30), (255, 0, 128))
    out = preprocess_image(image, size=20, crop=20, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    expected = (np.array([255, 0, 128]) / 255.0 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(out.reshape(3, -1).mean(axis=1), expected, atol=1e-5)
    np.testing.assert_allclose(out.reshape(3, -1).std(axis=1), 0.0, atol=1e-5)


def test_efficientnet_scaling_maps_0_and_255_to_about_minus_and_plus_one() -> None:
    pixels = np.zeros((2, 2, 3), dtype=np.uint8)
    pixels[0, 0] = 255
    out = normalize(pixels, mean=127 / 255, std=128 / 255)
    assert out[:, 0, 0] == pytest.approx([128 / 128] * 3)
    assert out[:, 1, 1] == pytest.approx([-127 / 128] * 3)


def test_crop_from_source_matches_resize_then_centre_crop() -> None:
    # 512x768 -> shorter side 256 (scale 1/2) -> 256x384, centre crop 224: integer geometry.
    image = _gradient(512, 768)
    ours = np.asarray(resize_and_crop(image, size=256, crop=224, resample="bilinear"), np.float32)
    resized = image.resize((256, 384), Image.Resampling.BILINEAR)
    top, left = (384 - 224) // 2, (256 - 224) // 2
    reference = np.asarray(resized.crop((left, top, left + 224, top + 224)), np.float32)
    assert ours.shape == reference.shape == (224, 224, 3)
    assert np.abs(ours - reference).max() <= 2.0  # rounding of the two resampling paths


def test_centre_crop_keeps_the_centre() -> None:
    image = Image.new("RGB", (400, 200), (0, 0, 0))
    image.paste((255, 255, 255), (190, 90, 210, 110))  # a white square in the middle
    out = np.asarray(resize_and_crop(image, size=100, crop=50, resample="nearest"))
    white = np.argwhere(out[..., 0] > 128)
    assert white.size > 0
    assert white.mean(axis=0) == pytest.approx([24.5, 24.5], abs=1.0)


def test_no_crop_keeps_the_aspect_ratio() -> None:
    out = preprocess_image(_gradient(400, 600), size=200)
    assert out.shape == (3, 300, 200)


def test_greyscale_and_rgba_inputs_become_three_channels() -> None:
    grey = Image.new("L", (50, 50), 200)
    out = preprocess_image(grey, size=32, crop=32)
    assert out.shape == (3, 32, 32)
    assert np.allclose(out, 200 / 255)


def test_resample_by_name_or_enum_gives_the_same_result() -> None:
    image = _gradient(123, 77)
    by_name = preprocess_image(image, size=40, crop=40, resample="bicubic")
    by_enum = preprocess_image(image, size=40, crop=40, resample=Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(by_name, by_enum)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 0}, "size must be positive"),
        ({"size": 32, "crop": 33}, "crop must be in"),
        ({"size": 32, "mean": (0.1, 0.2)}, "mean must be one number or three"),
        ({"size": 32, "std": 0.0}, "std must be non-zero"),
        ({"size": 32, "resample": "cubic"}, "unknown resample filter"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        preprocess_image(_gradient(40, 40), **kwargs)


def test_pixels_chw_is_uint8_channels_first_and_matches_normalize() -> None:
    image = _gradient(30, 20)
    chw = pixels_chw(image)
    assert chw.dtype == np.uint8 and chw.shape == (3, 20, 30) and chw.flags.c_contiguous
    np.testing.assert_array_equal(chw.transpose(1, 2, 0), np.asarray(image))
    np.testing.assert_allclose(
        (chw.astype(np.float32) - 127) / 128,
        normalize(np.asarray(image), mean=127 / 255, std=128 / 255),
        atol=1e-6,
    )
    assert pixels_chw(Image.new("L", (4, 4), 9)).shape == (3, 4, 4)


def test_stack_batch() -> None:
    items = [np.zeros((3, 8, 8), np.float32), np.ones((3, 8, 8), np.float32)]
    batch = stack_batch(items)
    assert batch.shape == (2, 3, 8, 8)
    assert batch.dtype == np.float32
    assert batch[1].sum() == 3 * 8 * 8
    with pytest.raises(ValueError, match="empty batch"):
        stack_batch([])

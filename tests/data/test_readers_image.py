from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polymodal.data.readers.image import DEFAULT_MAX_PIXELS, read_image
from polymodal.errors import InputError
from tests.conftest import require_shared

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def _noise_jpeg(path: Path, size: tuple[int, int], **save: object) -> Path:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (size[1] // 16 + 1, size[0] // 16 + 1, 3), dtype=np.uint8)
    # Smooth noise: compresses like a photo and still has detail at every scale.
    img = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    img.save(path, "JPEG", quality=90, **save)
    return path


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width x height`` but holds a few bytes of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )
    return path


def _pixel(img: Image.Image, x: int, y: int) -> np.ndarray:
    return np.asarray(img)[y, x].astype(int)


# --- bad input -------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jpg"
    with pytest.raises(InputError, match="file not found") as err:
        read_image(path)
    assert str(path) in str(err.value)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="zero-byte file") as err:
        read_image(path)
    assert err.value.path == str(path)


def test_truncated_jpeg_is_an_error_not_a_grey_bottom(tmp_path: Path) -> None:
    full = _noise_jpeg(tmp_path / "full.jpg", (256, 256)).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(full[: len(full) * 6 // 10])
    with pytest.raises(InputError, match="truncated JPEG") as err:
        read_image(path)
    assert str(path) in str(err.value)


def test_jpg_that_is_really_text(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    path.write_text("<html><body>404 Not Found</body></html>\n")
    with pytest.raises(InputError, match="not an image: the file starts with text"):
        read_image(path)


def test_unknown_binary_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "blob.png"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match="not an image: unrecognised format"):
        read_image(path)


def test_decompression_bomb_refused_before_decoding(tmp_path: Path) -> None:
    # 9000 x 8000 = 72M pixels, with no real pixel data: decoding would fail differently.
    path = _png_header_only(tmp_path / "bomb.png", 9000, 8000)
    with pytest.raises(InputError) as err:
        read_image(path)
    assert err.value.problem == "image has 72,000,000 pixels, more than the limit of 64,000,000"
    assert DEFAULT_MAX_PIXELS == 64_000_000


def test_bomb_beyond_pillows_own_guard_gets_the_same_message(tmp_path: Path) -> None:
    # Over 2 x PIL.Image.MAX_IMAGE_PIXELS Pillow raises inside Image.open, before our check.
    path = _png_header_only(tmp_path / "huge.png", 15_200, 15_200)
    with pytest.raises(InputError) as err:
        read_image(path)
    assert err.value.problem == "image has 231,040,000 pixels, more than the limit of 64,000,000"


def test_max_pixels_is_a_parameter(tmp_path: Path) -> None:
    path = _noise_jpeg(tmp_path / "a.jpg", (100, 80))
    with pytest.raises(InputError, match="image has 8,000 pixels, more than the limit of 7,999"):
        read_image(path, max_pixels=7_999)
    assert read_image(path, max_pixels=8_000).size == (100, 80)


def test_corrupt_png_data(tmp_path: Path) -> None:
    path = tmp_path / "bad.png"
    Image.new("RGB", (64, 64), RED).save(path)
    raw = bytearray(path.read_bytes())
    idat = raw.index(b"IDAT")
    raw[idat + 6 : idat + 30] = b"\xff" * 24  # inside the zlib stream
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="PNG") as err:
        read_image(path)
    assert str(path) in str(err.value)


def test_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"):
        read_image(tmp_path)


# --- modes and orientation -------------------------------------------------------------------


def test_exif_orientation_rotates(tmp_path: Path) -> None:
    img = Image.new("RGB", (40, 20), RED)
    img.paste(BLUE, (20, 0, 40, 20))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be turned 90 degrees clockwise for display
    path = tmp_path / "rotated.jpg"
    img.save(path, quality=95, exif=exif)
    out = read_image(path)
    assert out.size == (20, 40)
    top, bottom = _pixel(out, 10, 5), _pixel(out, 10, 35)
    assert top[0] > 200 and top[2] < 60, top  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_rgb_without_rotation_is_returned_as_decoded(tmp_path: Path) -> None:
    path = _noise_jpeg(tmp_path / "a.jpg", (64, 48))
    out = read_image(path)
    assert out.mode == "RGB" and out.size == (64, 48)
    with Image.open(path) as ref:
        np.testing.assert_array_equal(np.asarray(out), np.asarray(ref.convert("RGB")))


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (32, 32), (0, 255, 255, 0)).save(path, quality=95)  # pure red in CMYK
    out = read_image(path)
    assert out.mode == "RGB"
    arr = np.asarray(out)
    assert arr.dtype == np.uint8
    np.testing.assert_allclose(arr.reshape(-1, 3).mean(0), RED, atol=8)


def test_16_bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 16_384, 32_768, 65_535]], dtype=np.uint16).repeat(4, axis=0)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # really a 16-bit image on disk
    arr = np.asarray(read_image(path))
    assert arr.shape == (4, 4, 3) and arr.dtype == np.uint8
    np.testing.assert_array_equal(arr[0, :, 0], [0, 64, 128, 255])
    assert (arr[..., 0] == arr[..., 2]).all()


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    img = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 10, 10))
    path = tmp_path / "alpha.png"
    img.save(path)
    out = read_image(path)
    assert out.mode == "RGB"
    assert tuple(_pixel(out, 2, 2)) == RED
    assert tuple(_pixel(out, 15, 2)) == WHITE  # transparent black shows as white, not black


def test_palette_with_transparency_and_greyscale(tmp_path: Path) -> None:
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(0, (0, 0, 4, 8))
    path = tmp_path / "pal.gif"
    pal.save(path, transparency=0)
    out = read_image(path)
    assert out.mode == "RGB"
    assert tuple(_pixel(out, 1, 1)) == WHITE and tuple(_pixel(out, 6, 1)) == BLUE

    grey = tmp_path / "grey.png"
    Image.new("L", (8, 8), 77).save(grey)
    out = read_image(grey)
    assert out.mode == "RGB" and tuple(_pixel(out, 3, 3)) == (77, 77, 77)


# --- draft decoding --------------------------------------------------------------------------


def test_draft_decodes_a_reduced_jpeg(tmp_path: Path) -> None:
    path = _noise_jpeg(tmp_path / "big.jpg", (1600, 1200))
    full = read_image(path)
    small = read_image(path, draft_size=224)
    assert full.size == (1600, 1200)
    assert min(small.size) >= 224
    assert small.size == (400, 300)  # 1/4 scale: 1/8 would give a 150-pixel side
    ref = full.resize(small.size, Image.Resampling.BOX)
    diff = np.abs(np.asarray(small, dtype=int) - np.asarray(ref, dtype=int))
    assert diff.mean() < 6  # the same picture, just decoded smaller


def test_draft_keeps_orientation_and_ignores_non_jpeg(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    path = _noise_jpeg(tmp_path / "r.jpg", (1600, 800), exif=exif)
    out = read_image(path, draft_size=100)
    assert out.size == (100, 200)  # 1/8 scale, then turned upright
    png = tmp_path / "p.png"
    Image.new("RGB", (300, 200), RED).save(png)
    assert read_image(png, draft_size=50).size == (300, 200)


@pytest.mark.shared_data
def test_real_clothing_photos_decode_with_draft() -> None:
    folder = require_shared("clothing")
    paths = sorted((folder / "train" / "shoes").glob("*.jpg"))[:5]
    assert paths
    for path in paths:
        full = read_image(path)
        small = read_image(path, draft_size=100)
        assert full.mode == small.mode == "RGB"
        assert min(small.size) >= 100 and small.width * small.height * 4 <= full.width * full.height

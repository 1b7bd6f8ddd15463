from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from polymodal.cache.store import EmbeddingCache
from polymodal.encoders.base import Embedding
from polymodal.errors import PolymodalError


def test_put_get_with_and_without_tokens(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite3")
    a = Embedding(np.arange(4, dtype=np.float32), np.ones((3, 2), dtype=np.float16))
    b = Embedding(np.ones(4, dtype=np.float32))
    cache.put_many("enc@1", {"ka": a, "kb": b})
    got = cache.get_many("enc@1", ["ka", "kb", "kc"])
    assert set(got) == {"ka", "kb"}
    np.testing.assert_array_equal(got["ka"].pooled, a.pooled)
    assert got["ka"].tokens is None  # not asked for
    with_tokens = cache.get_many("enc@1", ["ka", "kb"], tokens=True)
    assert set(with_tokens) == {"ka"}  # kb never kept its tokens
    assert with_tokens["ka"].tokens.shape == (3, 2)
    assert cache.get_many("enc@2", ["ka"]) == {}  # another encoder never sees these
    # Storing pooled-only later must not erase tokens stored earlier.
    cache.put_many("enc@1", {"ka": Embedding(a.pooled)})
    assert cache.get_many("enc@1", ["ka"], tokens=True)["ka"].tokens is not None


def test_file_key_follows_content_not_name(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "c.sqlite3")
    (tmp_path / "a.bin").write_bytes(b"same")
    (tmp_path / "b.bin").write_bytes(b"same")
    (tmp_path / "c.bin").write_bytes(b"other")
    ka, kb, kc = (cache.file_key(tmp_path / n) for n in ("a.bin", "b.bin", "c.bin"))
    assert ka == kb != kc
    assert cache.known_file_keys([tmp_path / "a.bin"]) == {tmp_path / "a.bin": ka}
    time.sleep(0.01)
    (tmp_path / "a.bin").write_bytes(b"changed!")
    assert cache.known_file_keys([tmp_path / "a.bin"]) == {}  # stale memo is not trusted
    assert cache.file_key(tmp_path / "a.bin") != ka


def test_newer_or_corrupt_cache_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    EmbeddingCache(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(PolymodalError, match="newer polymodal"):
        EmbeddingCache(path)
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(PolymodalError, match="unreadable"):
        EmbeddingCache(bad)


_WRITER = """
import sys, numpy as np
from polymodal.cache.store import EmbeddingCache
from polymodal.encoders.base import Embedding
cache = EmbeddingCache(sys.argv[1])
i = 0
while True:
    batch = {f"k{i}-{j}": Embedding(np.full(64, i, np.float32), np.full((49, 64), i, np.float16))
             for j in range(32)}
    cache.put_many("enc", batch)
    i += 1
    print(i, flush=True)
"""


def test_kill_at_any_moment_leaves_whole_batches(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    for delay in (0.3, 0.55, 0.8):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE)
        proc.stdout.readline()  # at least one batch committed
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        cache = EmbeddingCache(path)
        n = cache.count("enc")
        assert n > 0 and n % 32 == 0  # only whole batches, never a torn one
        got = cache.get_many("enc", [f"k0-{j}" for j in range(32)], tokens=True)
        assert len(got) == 32 and all(e.tokens.shape == (49, 64) for e in got.values())
        cache.close()


def test_a_cache_folder_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    from polymodal.errors import ConfigError

    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match=r"cannot use .*afile for the embedding cache"):
        EmbeddingCache(tmp_path / "afile" / "embeddings.sqlite3")


def test_file_names_that_are_not_utf8_are_memoised(tmp_path: Path) -> None:
    import os

    odd = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"caf\xe9.bin")))
    odd.write_bytes(b"content")
    cache = EmbeddingCache(tmp_path / "c.sqlite3")
    key = cache.file_key(odd)
    assert cache.known_file_keys([odd]) == {odd: key}

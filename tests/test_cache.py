"""The cache never hands out a corrupt, partial or stale file."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mlpp.data import CorruptCacheError, build, load
from mlpp.data.cache import read_manifest, sha256_of, verify, write_atomic


def test_write_atomic_records_the_hash(tmp_path):
    target = tmp_path / "x.bin"
    digest = write_atomic(target, lambda tmp: tmp.write_bytes(b"jets"), meta={"card": "x"})
    assert digest == sha256_of(target)
    assert read_manifest(tmp_path)["x.bin"]["card"] == "x"
    assert verify(target, "hint")["sha256"] == digest


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    def explode(tmp):
        tmp.write_bytes(b"half a file")
        raise RuntimeError("worker died")

    with pytest.raises(RuntimeError, match="worker died"):
        write_atomic(tmp_path / "x.bin", explode)
    assert list(tmp_path.iterdir()) == []


def test_a_file_missing_from_the_manifest_is_refused(tmp_path):
    (tmp_path / "stray.h5").write_bytes(b"copied by hand")
    with pytest.raises(CorruptCacheError, match="not in the cache manifest.*do this"):
        verify(tmp_path / "stray.h5", "do this")


def test_an_unreadable_manifest_says_what_to_do(tmp_path):
    (tmp_path / "manifest.json").write_text("{ not json")
    with pytest.raises(CorruptCacheError, match="not valid JSON.*mlpp data generate"):
        read_manifest(tmp_path)


@pytest.mark.slow
def test_load_refuses_a_corrupted_dataset_and_names_the_fix(tiny_cards):
    path = build("tiny", "fast", workers=1, quiet=True)
    good = load("tiny", "fast")
    assert len(good) == 80
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptCacheError) as err:
        load("tiny", "fast")
    message = str(err.value)
    assert "sha256 mismatch" in message and "mlpp data generate tiny --tier fast --force" in message
    assert "\n" not in message
    # the advertised fix works
    build("tiny", "fast", workers=1, quiet=True, force=True)
    np.testing.assert_array_equal(load("tiny", "fast").features, good.features)


@pytest.mark.slow
def test_a_truncated_file_is_detected(tiny_cards):
    path = build("tiny", "fast", workers=1, quiet=True)
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CorruptCacheError, match="corrupt or incomplete"):
        load("tiny", "fast")


@pytest.mark.slow
def test_an_edited_card_triggers_regeneration(tiny_cards):
    import yaml

    build("tiny", "fast", workers=1, quiet=True)
    raw = yaml.safe_load((tiny_cards / "tiny.yml").read_text())
    raw["sizes"]["fast"] = 20
    (tiny_cards / "tiny.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(CorruptCacheError, match="another version of the tiny card"):
        load("tiny", "fast", generate=False)
    assert len(load("tiny", "fast")) == 40
    manifest = json.loads((build("tiny", "fast", quiet=True).parent / "manifest.json").read_text())
    assert manifest["tiny-fast.h5"]["jets"] == 40

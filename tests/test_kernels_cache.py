"""Whether the rounding kernels are in numba's disk cache: the GUI loads them before its
first paint only then (compiling them on a fresh install would delay the window)."""

from __future__ import annotations

from squeezelens.engine.quant.kernels import compiled_on_disk


def test_kernels_count_as_compiled_only_with_their_index_files(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert not compiled_on_disk()
    (tmp_path / "deep" / "quant").mkdir(parents=True)
    (tmp_path / "deep" / "quant" / "other.nearest-1.py311.nbi").write_bytes(b"")
    assert not compiled_on_disk()  # another module's kernels
    (tmp_path / "deep" / "quant" / "_jit.nearest-62.py311.nbi").write_bytes(b"")
    assert compiled_on_disk()

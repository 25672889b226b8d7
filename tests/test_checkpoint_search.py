"""The checkpoint folder search: pruned at its depth limit, bounded, and refusing a huge root in
one line (a root such as `/` typed into the sidebar must not walk the disk)."""
import time

import pytest

from mmaux.checkpoint import CONFIG, OUTPUTS, SearchTooLarge, find_checkpoints


def _checkpoint(folder):
    folder.mkdir(parents=True)
    (folder / CONFIG).write_text("{}")
    (folder / OUTPUTS).write_bytes(b"")
    return folder


def _deep_tree(root, levels: int = 40, width: int = 30):
    """A chain `levels` folders deep, each level with `width` empty side folders."""
    folder = root
    for level in range(levels):
        folder = folder / f"d{level}"
        for i in range(width):
            (folder / f"side{i}").mkdir(parents=True)
    return folder


def test_finds_checkpoints_down_to_the_depth_limit_only(tmp_path):
    near = _checkpoint(tmp_path / "a" / "b" / "run1")
    at_limit = _checkpoint(tmp_path / "1" / "2" / "3" / "run2")
    _checkpoint(tmp_path / "1" / "2" / "3" / "4" / "too-deep")
    _checkpoint(tmp_path / ".hidden" / "run3")
    assert find_checkpoints(tmp_path, max_depth=4) == sorted([near, at_limit])
    assert find_checkpoints(at_limit) == [at_limit]  # the root itself can be a checkpoint
    assert find_checkpoints(tmp_path / "missing") == []


def test_deep_tree_is_pruned_not_walked(tmp_path):
    """Past the depth limit nothing is listed: 40 × 30 folders, yet a budget of 200 entries is
    enough, and the search takes milliseconds."""
    _deep_tree(tmp_path)
    run = _checkpoint(tmp_path / "d0" / "side3" / "run")
    start = time.perf_counter()
    assert find_checkpoints(tmp_path, max_depth=4, max_entries=200) == [run]
    assert time.perf_counter() - start < 1.0


def test_a_root_with_too_many_entries_stops_with_one_line(tmp_path):
    for i in range(50):
        (tmp_path / f"folder{i}").mkdir()
    with pytest.raises(SearchTooLarge) as err:
        find_checkpoints(tmp_path, max_entries=20)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path) in message and "more than 20" in message


def test_links_to_folders_are_not_followed(tmp_path):
    _checkpoint(tmp_path / "elsewhere" / "run")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "loop").symlink_to(tmp_path / "root")
    (tmp_path / "root" / "link").symlink_to(tmp_path / "elsewhere")
    assert find_checkpoints(tmp_path / "root") == []

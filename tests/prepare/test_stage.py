"""stage.py's reading ahead: the next chunk normalized by a second thread while this one checks the last."""

from __future__ import annotations

import threading

import pytest

from importer.prepare.stage import _one_ahead


def test_each_item_comes_in_order_with_its_work_done_by_another_thread_one_item_ahead():
    read: list[int] = []
    workers: set[str] = set()

    def items():
        for n in range(6):
            read.append(n)
            yield n

    def work(n: int) -> int:
        workers.add(threading.current_thread().name)
        return n * n

    seen = []
    for item, result in _one_ahead(work, items()):
        # When an item comes, the next one at most has been read: one chunk more held at a time.
        assert read[-1] <= item + 1
        seen.append((item, result))
    assert seen == [(n, n * n) for n in range(6)]
    assert threading.current_thread().name not in workers


def test_an_error_of_the_work_is_raised_at_its_items_turn_and_nothing_after_it_is_handed_out():
    def work(n: int) -> int:
        if n == 2:
            raise ValueError("row 2: bad")
        return n

    seen: list[int] = []
    with pytest.raises(ValueError, match="row 2: bad"):
        seen.extend(item for item, _ in _one_ahead(work, iter(range(5))))
    assert seen == [0, 1]


def test_nothing_to_read_gives_nothing():
    assert list(_one_ahead(lambda n: n, iter([]))) == []

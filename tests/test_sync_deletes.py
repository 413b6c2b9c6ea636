"""The mass-deletion guard's verdicts (adapter.sync.deletes), on a real state file."""

from __future__ import annotations

import pytest

from adapter.sync import deletes
from adapter.sync.state import StateStore


def ids(n: int, start: int = 0) -> list[tuple[str, str]]:
    return [(f"urn:ngsi-ld:T:{i}", "T") for i in range(start, start + n)]


@pytest.fixture
def store(tmp_path):
    state = StateStore(tmp_path / "state.sqlite3")
    yield state
    state.close()


@pytest.mark.parametrize("wanted, total, share, held", [
    (2, 10, 0.2, False),  # 20 %: not more than the share
    (3, 10, 0.2, True),
    (1, 4, 0.2, True),  # 25 %
    (1, 1, 0.2, True),  # all of them always counts
    (5, 5, 1.0, True),  # even with a share of 100 %
    (4, 5, 1.0, False),
    (1, 100, 0.0, True),  # a share of 0 holds every deletion
])
def test_a_share_above_the_limit_or_everything_is_held(store, wanted, total, share, held):
    outcome = deletes.review(store, "", "s", ids(wanted), total, max_share=share)
    assert (outcome.held, outcome.send) == ((ids(wanted), []) if held else ([], ids(wanted)))
    assert (outcome.reason is not None) == held


def test_the_next_complete_fetch_confirms_only_the_same_entities(store):
    first = deletes.review(store, "", "s", ids(10), 10)
    deletes.remember(store, "", "s", first)
    assert deletes.held_counts(store) == {("", "s"): 10}

    # 6 of the 10 still missing: confirmed and sent; 4 came back and are forgotten.
    second = deletes.review(store, "", "s", ids(6), 10)
    assert second.send == ids(6) and second.held == [] and second.released == 6
    deletes.remember(store, "", "s", second)
    assert deletes.held_counts(store) == {}


def test_new_missing_entities_beside_confirmed_ones_are_judged_on_their_own(store):
    deletes.remember(store, "", "s", deletes.review(store, "", "s", ids(5), 10))
    outcome = deletes.review(store, "", "s", ids(5) + ids(4, start=5), 10)  # 4 more: 40 %, held
    assert outcome.send == ids(5) and outcome.held == ids(4, start=5)


def test_allowed_deletions_are_all_sent_and_tenants_are_apart(store):
    deletes.remember(store, "t1", "s", deletes.review(store, "t1", "s", ids(3), 3))
    assert deletes.held_ids(store, "t2", "s") == set()
    outcome = deletes.review(store, "t1", "s", ids(3), 3, allowed=True)
    assert outcome.send == ids(3) and outcome.held == [] and outcome.released == 3

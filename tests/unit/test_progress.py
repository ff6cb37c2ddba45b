"""The one driver of core progress generators."""

from keyshift.core.progress import run_to_completion


def _counting(n: int):
    for i in range(n):
        yield i
    return "done"


def test_run_to_completion_returns_the_generators_value_and_hands_on_every_item():
    seen: list[int] = []
    assert run_to_completion(_counting(3), seen.append) == "done"
    assert seen == [0, 1, 2]
    assert run_to_completion(_counting(2)) == "done"

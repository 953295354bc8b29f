"""The covering set the workflow tests render really covers the answers."""

from __future__ import annotations

from tests.support.combos import PAIRED, combos, stack_rows, uncovered_pairs, unused_values, values


def test_every_value_of_every_delivery_question_is_rendered() -> None:
    assert unused_values(combos()) == []


def test_every_pair_of_registry_cluster_strategy_runner_is_rendered() -> None:
    assert uncovered_pairs(combos()) == []


def test_the_set_is_pairwise_not_exhaustive() -> None:
    # Pairwise is what keeps the suite fast: far fewer renders than the product.
    product = 1
    for question in PAIRED:
        product *= len(values(question))
    # (The rows that render each further stack come on top: stack_rows.)
    assert len(combos()) - len(stack_rows()) < product / 2


def test_traffic_router_is_only_answered_for_canary() -> None:
    for answers in combos():
        assert ("traffic_router" in answers) == (answers["deploy_strategy"] == "canary")


def test_the_checks_notice_a_gap() -> None:
    # Without the rows that hold ghcr, its pairs and its value are reported.
    rest = tuple(a for a in combos() if a["registry"] != "ghcr")
    assert ("registry", "ghcr") in unused_values(rest)
    assert any(p[:2] == ("registry", "ghcr") for p in uncovered_pairs(rest))

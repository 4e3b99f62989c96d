from hyperhive.sendpolicy import may_send, refusal


def test_an_empty_list_allows_everyone_and_broadcast() -> None:
    assert may_send("bob", [], "manager")
    assert may_send("*", [], "manager")


def test_a_whitelist_allows_its_names_and_the_manager_but_not_broadcast() -> None:
    assert may_send("bob", ["bob"], "manager")
    assert may_send("manager", ["bob"], "manager")
    assert not may_send("carol", ["bob"], "manager")
    assert not may_send("*", ["bob", "*"], "manager")


def test_the_refusal_names_who_may_be_messaged_and_the_way_round() -> None:
    text = refusal("alice", "carol", ["bob"], "boss")
    assert "alice may only message bob, boss" in text
    assert "'carol'" in text


def test_the_operator_is_always_allowed() -> None:
    assert may_send("operator", ["bob"], "manager")

"""Template mining for logs without an event id: messages of one type share a template and an
id, variable values become wildcards, and ids come from content, so they survive a restart
through plain JSON state and agree between replicas whose states are merged. A place becomes a
wildcard on evidence (a value seen there, or many words), never because two messages differ in
one word: FAILED and SUCCEEDED stay two statements."""

from __future__ import annotations

import random

import pytest

from sidecar.templates import drain
from sidecar.templates.drain import WILDCARD, OutdatedMinerState, TemplateMiner, template_id

LOGONS = [
    "Invalid user webmaster from 173.234.31.186",
    "Invalid user test9 from 52.80.34.196",
    "Invalid user admin from 10.0.0.7",
]
CLOSED = [
    "Connection closed by 10.0.0.1 [preauth]",
    "Connection closed by 10.9.8.7 [preauth]",
]
ACCEPTED = [
    "Accepted password for root from 10.0.0.1 port 22 ssh2",
    "Accepted password for root from 10.0.0.2 port 2222 ssh2",
]
SESSIONS = [
    "pam_unix(sshd:session): session opened for user root by (uid=0)",
    "pam_unix(sshd:session): session opened for user fred by (uid=0)",
    "pam_unix(sshd:session): session closed for user root",
]


def mined(miner: TemplateMiner, messages: list[str]) -> dict[str, str]:
    return {m: miner.add(m).id for m in messages}


def test_messages_of_one_type_share_a_cluster_and_values_become_wildcards() -> None:
    miner = TemplateMiner()
    ids = {miner.add(m).id for m in LOGONS}
    assert len(ids) == 1
    (cluster,) = miner.clusters.values()
    assert cluster.template == f"Invalid user {WILDCARD} from {WILDCARD}"
    assert cluster.size == 3


def test_different_messages_get_different_templates() -> None:
    miner = TemplateMiner()
    a = miner.add(ACCEPTED[0])
    b = miner.add(CLOSED[0])
    c = miner.add("Received disconnect from 10.0.0.1: 11: Bye Bye [preauth]")
    assert len({a.id, b.id, c.id}) == 3


def test_a_cluster_id_is_a_short_hash_of_the_masked_tokens_it_was_created_with() -> None:
    miner = TemplateMiner()
    first = miner.add(LOGONS[0])
    miner.add(LOGONS[1])  # generalises the template ...
    assert first.template == f"Invalid user {WILDCARD} from {WILDCARD}"
    # ... but the id stays the one its first message gave it.
    assert first.id == template_id(miner.tokens(LOGONS[0]))
    assert first.id == template_id(["Invalid", "user", "webmaster", "from", WILDCARD])
    assert len(first.id) == 12 and int(first.id, 16) >= 0


def test_match_does_not_learn_and_finds_nothing_for_an_unknown_shape() -> None:
    miner = TemplateMiner()
    ids = mined(miner, LOGONS)
    matched = miner.match("Invalid user root from 1.2.3.4")
    assert matched is not None and matched.id == ids[LOGONS[0]]
    assert miner.match("kernel: Out of memory: Kill process 42") is None
    assert len(miner.clusters) == 1 and miner.clusters[matched.id].size == 3


def test_ids_and_templates_survive_a_restart_through_json_state() -> None:
    miner = TemplateMiner()
    ids = mined(miner, [*LOGONS, *CLOSED])
    state = miner.to_json()

    reloaded = TemplateMiner.from_json(state)

    assert state.startswith(b"{")  # plain JSON, no pickle
    assert {c.id: c.template for c in reloaded.clusters.values()} == {
        c.id: c.template for c in miner.clusters.values()
    }
    assert reloaded.add("Invalid user guest from 8.8.8.8").id == ids[LOGONS[0]]
    new = reloaded.add("A brand new kind of message")
    assert new.id not in ids.values() and new.id == template_id(new.tokens)


def test_a_replayed_message_gets_the_id_it_got_the_first_time() -> None:
    # A failed cycle is redone from the saved state: every message is added a second time.
    messages = [*LOGONS, *CLOSED, *ACCEPTED, *SESSIONS]
    miner = TemplateMiner()
    first = mined(miner, messages)
    replayed = TemplateMiner.from_json(miner.to_json())
    assert mined(replayed, messages) == first


def test_two_miners_agree_on_ids_whatever_the_order_after_each_cluster_s_first_message() -> None:
    groups = [LOGONS, CLOSED, ACCEPTED, SESSIONS]
    firsts = [g[0] for g in groups]
    rest = [m for g in groups for m in g[1:]]
    shuffled = rest[:]
    random.Random(7).shuffle(shuffled)

    a, b = TemplateMiner(), TemplateMiner()
    mined(a, [*firsts, *rest])
    mined(b, [*reversed(firsts), *shuffled])

    # Ids as the miners give them once they have seen the same messages: a template merged
    # on the way (a name that then turned out to vary) leads to the same id in both.
    messages = [*firsts, *rest]
    assert {m: a.match(m).id for m in messages} == {m: b.match(m).id for m in messages}  # type: ignore[union-attr]
    assert {c.id: c.template for c in a.clusters.values()} == {
        c.id: c.template for c in b.clusters.values()
    }


def _replicas() -> tuple[TemplateMiner, TemplateMiner]:
    """Two replicas: one type each alone, and one type both met (from the same message)."""
    a, b = TemplateMiner(), TemplateMiner()
    mined(a, [LOGONS[0], LOGONS[1], *CLOSED])
    mined(b, [LOGONS[0], "Invalid user user1 from 10.0.0.8", *ACCEPTED])
    return a, b


def test_merging_keeps_every_id_of_both_and_generalises_a_shared_one() -> None:
    a, b = _replicas()
    ids_before = set(a.clusters) | set(b.clusters)
    shared = template_id(a.tokens(LOGONS[0]))
    assert a.clusters[shared].template == f"Invalid user {WILDCARD} from {WILDCARD}"
    assert b.clusters[shared].template == f"Invalid user {WILDCARD} from {WILDCARD}"

    a.merge(b)

    assert set(a.clusters) == ids_before
    assert len(a.clusters) == 3
    for message in [*LOGONS, *CLOSED, *ACCEPTED]:
        found_a, found_b = a.match(message), b.match(message)
        assert found_a is not None
        if found_b is not None:  # everything b knew, the merged miner labels alike
            assert found_a.id == found_b.id


def test_merging_the_same_state_twice_changes_nothing() -> None:
    a, b = _replicas()
    a.merge(b)
    once = a.to_json()
    revision = a.revision

    a.merge(b)
    a.merge(TemplateMiner.from_json(once))

    assert a.to_json() == once and a.revision == revision


def test_states_merged_in_either_order_label_every_message_alike() -> None:
    a, b = _replicas()
    ab = TemplateMiner.from_json(a.to_json())
    ab.merge(b)
    ba = TemplateMiner.from_json(b.to_json())
    ba.merge(a)
    for message in [*LOGONS, *CLOSED, *ACCEPTED, *SESSIONS]:
        x, y = ab.match(message), ba.match(message)
        assert (x and (x.id, x.template)) == (y and (y.id, y.template))


def test_a_template_both_replicas_generalised_differently_covers_both_after_a_merge() -> None:
    a, b = TemplateMiner(), TemplateMiner()
    first = "session opened for user root by sshd"
    a.add(first)
    a.add("session opened for user u1001 by sshd")  # a: the user varies
    b.add(first)
    b.add("session opened for user root by cron2")  # b: the program varies
    a.merge(b)
    (cluster,) = a.clusters.values()
    assert cluster.template == f"session opened for user {WILDCARD} by {WILDCARD}"


def test_merging_a_state_with_other_settings_is_refused() -> None:
    with pytest.raises(ValueError, match="settings"):
        TemplateMiner().merge(TemplateMiner(min_values=4))


def test_two_templates_whose_hashes_collide_still_get_distinct_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(drain, "ID_HEX_CHARS", 2)  # 256 possible ids
    messages = [" ".join(["word"] * n) for n in range(1, 41)]  # 40 lengths, 40 templates
    miner = TemplateMiner()
    clusters = [miner.add(m) for m in messages]
    salted = [c for c in clusters if c.id != template_id(c.tokens)]
    assert salted  # some hashes did collide ...
    assert len({c.id for c in clusters}) == 40  # ... and every template still has its own id
    reloaded = TemplateMiner.from_json(miner.to_json())
    assert [reloaded.add(m).id for m in messages] == [c.id for c in clusters]


def test_state_of_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        TemplateMiner.from_json(b'{"format": 99}')


def test_state_of_an_older_miner_is_refused_with_a_message_to_retrain() -> None:
    old = b'{"format": 2, "depth": 4, "similarity": 0.7, "max_children": 100, "clusters": []}'
    with pytest.raises(OutdatedMinerState, match=r"format 2.*retrain"):
        TemplateMiner.from_json(old)


# -- masking and evidence ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "tokens"),
    [
        # hex without 0x when it holds a digit; eight hex letters (a mask); with 0x
        ("mask ffffffff id cbf2a9e0 at 0x3e7 deadbeef", ["mask", "<*>", "id", "<*>", "at", "<*>"]),
        # an address with its port is one value; key=value splits at `=`
        ("rhost=10.0.0.1:22 uid=0 user=root", ["rhost", "<*>", "uid", "<*>", "user", "root"]),
        # paths and URLs, uuids, identifiers with digits (blk_, ssh2), a date with its time
        (
            "GET /v2/servers?all=True from http://a.b/c for 54fadb41-2c4e-40cd-baed-9335e4c35a9e",
            ["GET", "<*>", "from", "<*>", "for", "<*>"],
        ),
        (
            "blk_-42 via ssh2 at Sun Jul 10 03:55:21 2005 done",
            ["<*>", "via", "<*>", "at", "<*>", "done"],
        ),
        # a quantity with its unit; a word with one slash is a word
        ("read 1.20 KB in 5 ms and/or TCP/IP", ["read", "<*>", "in", "<*>", "and/or", "TCP/IP"]),
    ],
)
def test_values_are_masked_by_their_form(message: str, tokens: list[str]) -> None:
    assert TemplateMiner().tokens(message) == tokens


def test_state_words_stay_constants_and_name_different_statements() -> None:
    miner = TemplateMiner()
    states = ["FAILED", "SUCCEEDED", "RUNNING"] * 20  # three states, each recurring
    ids = {s: miner.add(f"Job {i} transitioned from NEW to {s}").id for i, s in enumerate(states)}
    assert len(set(ids.values())) == 3
    assert miner.match("Job 7 transitioned from NEW to FAILED").template == (  # type: ignore[union-attr]
        "Job <*> transitioned from NEW to FAILED"
    )


def test_a_rare_word_beside_a_frequent_one_is_another_statement() -> None:
    # The frequent client took most messages: a template's wildcard never agrees with a
    # constant it has not learned, so the rare one is not swallowed.
    miner = TemplateMiner()
    for i in range(50):
        miner.add(f"Session: {i}_1 initialized by client WindowsUpdateAgent.")
    spp = miner.add("Session: 9_1 initialized by client SPP.")
    assert spp.template == "Session: <*> initialized by client SPP."
    assert len(miner.clusters) == 2


def test_names_that_keep_changing_become_a_wildcard() -> None:
    miner = TemplateMiner()
    users = ["cyrus", "news", "oracle", "guest", "support", "ftp", "git"]
    for i, user in enumerate(users):
        miner.add(f"session closed for user {user} after {i} s")
    (cluster,) = {miner.match(f"session closed for user {u} after 1 s").id for u in users}  # type: ignore[union-attr]
    assert miner.clusters[cluster].template == "session closed for user <*> after <*>"
    assert miner.match("session closed for user zed after 5 s").id == cluster  # type: ignore[union-attr]


def test_clusters_grow_with_statements_not_lines() -> None:
    rng = random.Random(3)
    miner = TemplateMiner()

    def word() -> str:
        return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))

    for i in range(2_000):
        miner.add(f"Accepted password for {word()} from 10.{i % 250}.0.{i % 7} port {i} ssh2")
        miner.add(f"Received block blk_{rng.getrandbits(60)} of size {i * 7} from /10.0.0.{i % 9}")
        miner.add(f"lock acquired tag={word()} name={word()}.{word()} ws=null uid={i}")
    assert len(miner.clusters) <= 6  # three statements (the first few lines of each aside)


def test_a_full_miner_keys_new_statements_by_one_overflow_template_and_counts_them() -> None:
    miner = TemplateMiner(max_clusters=2)
    a = miner.add("alpha happened here")
    b = miner.add("beta happened there")
    c = miner.add("gamma is something else")
    d = miner.add("delta is yet another one")
    assert len({a.id, b.id}) == 2 and c.id == d.id and miner.overflowed == 2
    assert miner.add("alpha happened here").id == a.id  # known statements keep their ids


def test_parse_gives_the_key_the_template_and_the_values_with_their_classes() -> None:
    miner = TemplateMiner()
    for message in LOGONS:
        miner.add(message)
    parsed = miner.parse("Invalid user oracle from 10.1.2.3")
    assert parsed is not None
    assert parsed.cluster_id == miner.match(LOGONS[0]).id  # type: ignore[union-attr]
    assert parsed.template == "Invalid user <*> from <*>"
    assert parsed.variables == [("10.1.2.3", "ip"), ("oracle", "word")]


def test_template_text_keeps_the_message_s_punctuation() -> None:
    miner = TemplateMiner()
    cluster = miner.add(
        "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
        "rhost=10.0.0.1  user=root"
    )
    assert cluster.template == (
        "pam_unix(sshd:auth): authentication failure; logname= uid=<*> euid=<*> tty=ssh "
        "ruser= rhost=<*>  user=root"
    )

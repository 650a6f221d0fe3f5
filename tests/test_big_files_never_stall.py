"""A big file never stalls the daemon: a file that is no mapping is refused from its head, and a big
mapping is parsed in a child process, while pings every 50 ms go on being answered (issue 23, fault 1).

Against the version before, the 80 MB list held the GIL for 0.4 s on an idle machine here (3.0 s
then 1.6 s on a busy one) and the 15 MB mapping of 100k examples for 60 ms (seconds busy)."""

from __future__ import annotations

import json
import sys
import time
from collections import deque

import pytest

from tests.conftest import REPO
from tests.osc_peer import OscPeer
from tests.test_hostile_files import start

sys.path.insert(0, str(REPO / "benchmarks"))
from soak import write_big_mapping  # noqa: E402

PING_EVERY_S = 0.05
# The acceptance is 100 ms (measured: see the CHANGELOG). Asserted here: a bound a shared
# two-core machine running other test suites still meets, far below the stalls of the old reader.
WORST_PING_S = 0.5


def ping_while(peer: OscPeer, done, timeout: float = 120.0) -> float:
    """Ping every PING_EVERY_S until `done(seen)` is true; every ping must be answered. The worst delay."""
    sent: deque[float] = deque()
    worst = 0.0
    seen: list[tuple[str, list]] = []
    deadline = time.monotonic() + timeout
    next_ping = time.monotonic()
    peer.sock.settimeout(0.002)  # a receive returns within 5 ms, so pings go out on time
    try:
        while not (done(seen) and not sent):
            now = time.monotonic()
            assert now < deadline, f"not done within {timeout} s; {len(sent)} pings unanswered, saw {seen[-10:]}"
            if now >= next_ping and not done(seen):
                peer.send("/ravemap/ping", peer.port)
                sent.append(now)
                next_ping += PING_EVERY_S
            for address, args in peer.receive(0.005):
                if address == "/ravemap/pong":
                    worst = max(worst, time.monotonic() - sent.popleft())
                else:
                    seen.append((address, args))
            if sent:
                assert time.monotonic() - sent[0] < 10.0, "a ping went unanswered for 10 s"
    finally:
        peer.sock.settimeout(0.2)
    return worst


@pytest.mark.alone  # pings timed and underruns counted against audio: no other test beside it
def test_a_huge_file_that_is_no_mapping_and_a_big_mapping_load_while_pings_are_answered(tmp_path, tiny_model,
                                                                                         loop_file):
    folder = tmp_path / "mappings"
    folder.mkdir()
    with open(folder / "numbers.json", "w") as f:  # 80 MB: a list of numbers, no mapping
        f.write(json.dumps([i * 0.123456789 for i in range(4_500_000)]))
    write_big_mapping(folder, "big", 100_000)  # 15 MB, as ravemap writes it
    daemon, peer = start(tmp_path, tiny_model, loop_file, "--mapping", "live")
    try:
        underruns = peer.status()["underruns"]
        peer.drain()
        peer.send("/ravemap/mapping/load", "numbers")
        worst_refusal = ping_while(peer, lambda seen: any(a == "/ravemap/error" for a, _ in seen))
        error = peer.last("/ravemap/error")[0]
        assert "numbers.json: not a ravemap mapping file" in error and '"format": "ravemap-mapping"' in error, error
        assert peer.status()["mapping"] == "live"

        peer.drain()
        peer.send("/ravemap/mapping/load", "big")
        worst_load = ping_while(peer, lambda seen: any(a == "/ravemap/error" or (a, args) == ("/ravemap/examples",
                                                                                              [100_000])
                                                       for a, args in seen))
        status = peer.status()
        assert (status["mapping"], status["examples"]) == ("big", 100_000), status
        assert status["underruns"] == underruns
        print(f"worst ping delay: refusing 80 MB {worst_refusal * 1e3:.0f} ms, loading 100k {worst_load * 1e3:.0f} ms")
        assert worst_refusal < WORST_PING_S and worst_load < WORST_PING_S, (worst_refusal, worst_load)
    finally:
        assert daemon.stop(timeout=120) == 0, daemon.stderr()[-2000:]
        peer.close()

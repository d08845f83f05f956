"""Block-chain reassembly against the pairwise reference, on scattered images with a truth file:
the same joins where the reference is right, no wrong join where it is not, a join only where the
chain order is unambiguous, and a number of validated pairs that grows with the image, not its square."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from test_pieces import carve_all, file_bytes, pgline, scatter, synthetic_log
from test_reassemble import assert_nothing_dropped

from logsalvage.carve.chains import ChainStats, reassemble_chains
from logsalvage.carve.pieces import Piece
from logsalvage.carve.reassemble import reassemble
from logsalvage.carve.scan import Scanner
from logsalvage.demo.scattered import build_scattered_image
from logsalvage.errors import UsageError
from logsalvage.parsing.formats import log_formats

BS = 512
BLOCK = 4096


@pytest.fixture(scope="module")
def sc():
    return Scanner(log_formats())


def joins(joined) -> set[tuple[bytes, tuple]]:
    return {(p.data, tuple(p.spans)) for p in joined if p.joined}


@pytest.mark.parametrize("seed", range(4))
def test_same_joins_as_the_reference_on_a_friendly_image(sc, seed):
    lines = synthetic_log(700, seed=seed)
    image, _ = scatter(file_bytes(lines), BS, seed=seed)
    got = carve_all(image, 8 * BS, sc, BS)
    ref, ref_left = reassemble(got.heads, got.tails, block_size=BS, scanner=sc)
    new, new_left = reassemble_chains(got.heads, got.tails, block_size=BS, scanner=sc)
    assert_nothing_dropped(got, new, new_left)
    # on a single log the reference's greedy choice is right; the chains make no join it does not
    # make, and leave out only the few whose candidates would give different records (tiny 512-byte
    # blocks of lines that differ only in numbers)
    assert joins(new) <= joins(ref)
    assert len(joins(new)) >= 0.9 * len(joins(ref))
    assert all(p.data in set(lines) for p in new)


def test_two_tails_that_give_different_records_are_not_guessed_between(sc):
    # a head whose record could end in either of two tails of the same time: no join
    head_line = pgline(100, 7)
    cut = 60
    head = Piece(BS - cut, head_line[:cut], "syslog", "head", neighbour=pgline(95, 6))
    rest = head_line[cut:]
    other = rest.replace(b"46118", b"46119")
    tails = [Piece(BS * 4, rest, None, "tail", neighbour=pgline(101, 8), follow="header:syslog"),
             Piece(BS * 8, other, None, "tail", neighbour=pgline(101, 9), follow="header:syslog")]
    stats = ChainStats()
    joined, leftover = reassemble_chains([head], tails, block_size=BS, scanner=sc, stats=stats)
    assert joined == [] and len(leftover) == 3 and stats.ambiguous == 1
    # the pairwise reference takes one of them
    ref, _ = reassemble([head], tails, block_size=BS, scanner=sc)
    assert len(ref) == 1


def test_copies_of_the_same_blocks_join_once_each(sc):
    # an older copy of a file leaves the same head and tail twice: every candidate gives the same
    # record, so each head joins one tail
    head_line = pgline(100, 7)
    cut = 60
    heads = [Piece(BS * k - cut, head_line[:cut], "syslog", "head", neighbour=pgline(95, 6)) for k in (1, 20)]
    tails = [Piece(BS * k, head_line[cut:], None, "tail", neighbour=pgline(101, 8), follow="header:syslog")
             for k in (5, 30)]
    joined, leftover = reassemble_chains(heads, tails, block_size=BS, scanner=sc)
    assert [p.data for p in joined] == [head_line, head_line] and leftover == []
    assert sorted(p.spans[1][0] for p in joined) == [BS * 5, BS * 30]


def test_chain_order_picks_the_next_block_of_one_log(sc):
    # two tails validate, but the farther one's block begins after the whole of the nearer one's:
    # in one log's chain only the nearer can follow the head
    head_line = pgline(100, 7)
    cut = 60
    head = Piece(BS - cut, head_line[:cut], "syslog", "head", neighbour=pgline(95, 6))
    near = Piece(BS * 4, head_line[cut:], None, "tail", neighbour=pgline(104, 8) + b"\n" + pgline(110, 9),
                 follow="header:syslog")
    far = Piece(BS * 8, head_line[cut:].replace(b"46118", b"46119"), None, "tail",
                neighbour=pgline(120, 10) + b"\n" + pgline(125, 11), follow="header:syslog")
    joined, _ = reassemble_chains([head], [near, far], block_size=BS, scanner=sc)
    assert [p.data for p in joined] == [head_line]
    assert joined[0].spans[1][0] == BS * 4


def carve_scattered(path, sc):
    image = path.read_bytes()
    got = carve_all(image, 8 << 20, sc, BLOCK, max_record=64 << 10)
    stats = ChainStats()
    joined, leftover = reassemble_chains(got.heads, got.tails, block_size=BLOCK, scanner=sc, stats=stats)
    assert_nothing_dropped(got, joined, leftover)
    return got, joined, stats


def accuracy(path, got, joined) -> dict:
    truth = pq.read_table(str(path) + ".truth.parquet").to_pydict()
    planted = set(truth["data"])
    present = {d for d, p in zip(truth["data"], truth["present"]) if p}
    split = {d for d, p, s in zip(truth["data"], truth["present"], truth["split"]) if p and s}
    out = list(got.records.data) + [p.data for p in joined]
    found = set(out)
    return {"present": len(present), "recall": len(present & found) / len(present),
            "split": len(split), "split_recovered": len(split & found),
            "precision": sum(d in planted for d in found) / len(found),
            "wrong_joins": sum(p.data not in planted for p in joined if p.joined)}


def test_all_formats_and_a_second_generation_are_recovered_without_a_wrong_join(sc, tmp_path):
    path = tmp_path / "scattered.dd"
    summary = build_scattered_image(path, 48 << 20, seed=5)
    assert summary["copies"] > 0 and summary["split"] > 300
    got, joined, stats = carve_scattered(path, sc)
    acc = accuracy(path, got, joined)
    print("\nscattered 48 MiB, four formats, two generations:", acc, stats.as_dict())
    assert acc["wrong_joins"] == 0, acc
    assert acc["recall"] >= 0.999, acc
    assert acc["precision"] >= 0.9999, acc
    assert acc["split_recovered"] >= 0.97 * acc["split"], acc
    assert {p.format_id for p in joined if p.joined} == {"syslog", "apache-access", "apache-error", "vsftpd"}


def test_validated_pairs_grow_linearly_with_the_image(sc, tmp_path):
    per_head = []
    for mib in (8, 32):
        path = tmp_path / f"s{mib}.dd"
        build_scattered_image(path, mib << 20, seed=2, formats=("syslog",))
        _, _, stats = carve_scattered(path, sc)
        per_head.append(stats.evaluated / stats.heads)
    # a head is validated against the few tails that can follow it in time, whatever the image size
    assert per_head[1] <= 1.5 * per_head[0] + 1, per_head
    assert per_head[1] < 10, per_head


def test_generator_truth_matches_the_image(tmp_path):
    path = tmp_path / "g.dd"
    summary = build_scattered_image(path, 8 << 20, seed=3, hole_days=0.2)
    image = path.read_bytes()
    truth = pq.read_table(str(path) + ".truth.parquet").to_pydict()
    assert len(truth["data"]) == summary["records"] and sum(truth["present"]) == summary["present"]
    assert summary["present"] < summary["records"]        # the hole's records are not there
    for data, present, split, off in zip(truth["data"], truth["present"], truth["split"], truth["image_offset"]):
        if present and not split:
            assert image[off:off + len(data) + 1] == data + b"\n"
    assert build_scattered_image(tmp_path / "g2.dd", 8 << 20, seed=3, hole_days=0.2) == summary
    assert (tmp_path / "g2.dd").read_bytes() == image


@pytest.mark.parametrize("kwargs", [{"formats": ("nginx",)}, {"formats": ()}])
def test_generator_rejects_bad_arguments(tmp_path, kwargs):
    with pytest.raises(UsageError):
        build_scattered_image(tmp_path / "x.dd", 8 << 20, **kwargs)

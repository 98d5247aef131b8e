"""Tests for the ``pap-rec data info`` / ``pap-rec data export`` subcommands (pap_rec_core.cli)."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pap_rec_core.cli import main

MALFORMED_P5 = "".join(f"{u} {u} {u + 1}\n" for u in range(1, 7)) + "7 8 x9 10\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# ---- data info --------------------------------------------------------------------------------------


def test_info_ml100k(capsys) -> None:
    rc, out, err = run(capsys, "data", "info", "--dataset", "ml-100k")
    assert rc == 0
    lines = out.splitlines()
    for label, value in (("dataset", "ml-100k"), ("users", "943"), ("items", "1,682"),
                         ("interactions", "100,000"), ("users with < 3 interactions", "0")):
        pattern = re.compile(rf"^\s*{re.escape(label)}\s+{re.escape(value)}$")
        assert any(pattern.match(line) for line in lines), f"no row {label!r} = {value!r} in:\n{out}"


def test_info_default_dataset_is_ml100k(capsys) -> None:
    rc, out, _ = run(capsys, "data", "info", "--json")
    assert rc == 0 and json.loads(out)["name"] == "ml-100k"


def test_info_json(capsys) -> None:
    rc, out, _ = run(capsys, "data", "info", "--dataset", "ml-100k", "--json")
    assert rc == 0
    stats = json.loads(out)
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1682, 100_000)
    assert stats["has_item_titles"] is True and stats["users_under_3"] == 0


@pytest.mark.p5data
def test_info_p5_beauty(capsys, p5_beauty_dir) -> None:
    rc, out, _ = run(capsys, "data", "info", "--p5-dir", str(p5_beauty_dir))
    assert rc == 0
    for number in ("22,363", "12,101", "198,502"):
        assert number in out
    assert "p5_beauty" in out


def test_info_openp5_file(capsys, write_file) -> None:
    path = write_file("sports/user_sequence.txt", "1 1 2 3\n2 2 4\n3 5 1 2 6\n")
    rc, out, _ = run(capsys, "data", "info", "--openp5-file", str(path), "--json")
    assert rc == 0
    stats = json.loads(out)
    assert (stats["name"], stats["users"], stats["items"], stats["interactions"]) == ("sports", 3, 6, 9)
    assert stats["users_under_3"] == 1 and stats["has_timestamps"] is False


def test_info_csv_with_column_mapping(capsys, make_table) -> None:
    path = make_table("uid,iid,when,stars\nx,a,3,5\nx,b,1,4\ny,a,2,1\ny,c,5,2\n")
    rc, out, _ = run(capsys, "data", "info", "--csv", str(path), "--user-col", "uid", "--item-col", "iid",
                     "--time-col", "when", "--rating-col", "stars", "--name", "mine", "--json")
    assert rc == 0
    stats = json.loads(out)
    assert (stats["name"], stats["users"], stats["items"], stats["interactions"]) == ("mine", 2, 3, 4)
    assert stats["has_timestamps"] is True and stats["has_ratings"] is True


def test_info_prints_notes(capsys, make_table) -> None:
    path = make_table("user_id,item_id\n1,a\n1,b\n")
    rc, out, _ = run(capsys, "data", "info", "--csv", str(path))
    assert rc == 0
    assert "note: no timestamp column: file order is taken as time order" in out


def test_info_malformed_p5_exits_2_with_file_and_line(capsys, make_p5_dir) -> None:
    d = make_p5_dir(MALFORMED_P5, datamaps=False)
    rc, out, err = run(capsys, "data", "info", "--p5-dir", str(d))
    assert rc == 2
    assert out == ""
    assert str(d / "sequential_data.txt") in err and ":7:" in err
    assert "field 'item_id'" in err and "Traceback" not in err
    assert err.startswith("pap-rec: error: ")


def test_info_malformed_csv_exits_2(capsys, make_table) -> None:
    path = make_table("user_id,item_id,timestamp\n1,a,1\n\n1,b,later\n")
    rc, _, err = run(capsys, "data", "info", "--csv", str(path))
    assert rc == 2 and f"{path}:4:" in err and "'timestamp'" in err


def test_info_unknown_dataset_exits_2(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    rc, out, err = run(capsys, "data", "info", "--dataset", "ml-1b")
    assert rc == 2 and out == ""
    assert "'ml-1b'" in err and "ml-100k" in err and "Traceback" not in err


def test_info_missing_p5_dir_exits_2(capsys, tmp_path) -> None:
    rc, _, err = run(capsys, "data", "info", "--p5-dir", str(tmp_path / "nope"))
    assert rc == 2 and "does not exist" in err


def test_sources_are_mutually_exclusive(capsys, tmp_path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["data", "info", "--dataset", "ml-100k", "--p5-dir", str(tmp_path)])
    assert exc.value.code == 2
    assert "not allowed with" in capsys.readouterr().err


def test_missing_action_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["data"])
    assert exc.value.code == 2


# ---- data export ------------------------------------------------------------------------------------


def test_export_writes_files(capsys, make_p5_dir, tmp_path) -> None:
    seqs = {1: [1, 2, 3, 4], 2: [5, 6, 7], 3: [2, 8], 4: [9, 10, 11, 12, 1]}
    d = make_p5_dir(seqs)
    out_dir = tmp_path / "out"
    rc, out, err = run(capsys, "data", "export", "--p5-dir", str(d), "--out", str(out_dir), "--negatives", "3",
                       "--seed", "5")
    assert rc == 0, err
    printed = [Path(p) for p in out.splitlines()]
    target = out_dir / "p5tiny"
    assert {p.name for p in printed} == {"p5tiny.train.inter", "p5tiny.valid.inter", "p5tiny.test.inter",
                                         "p5tiny.item", "item_index.json", "split.json", "p5tiny.negatives.tsv"}
    assert all(p.parent == target and p.is_file() for p in printed)
    meta = json.loads((target / "split.json").read_text())
    assert meta["counts"] == {"train": 2 + 1 + 2 + 3, "valid": 3, "test": 3}
    assert meta["split"]["n_negatives"] == 3 and meta["split"]["seed"] == 5
    assert meta["item_index"] == {"mode": "random", "seed": 5, "leaky": False}
    index = json.loads((target / "item_index.json").read_text())
    assert sorted(index["texts"], key=int) == [str(i) for i in range(1, 13)]
    negs = (target / "p5tiny.negatives.tsv").read_text().splitlines()
    assert [len(line.split("\t")[1].split()) for line in negs] == [3, 3, 3]


def test_export_sequential_index_warns_and_name(capsys, caplog, make_table, tmp_path) -> None:
    path = make_table("user_id,item_id,timestamp\n1,a,1\n1,b,2\n1,c,3\n2,d,1\n2,e,2\n2,a,3\n")
    with caplog.at_level(logging.WARNING, logger="pap_rec_core.cli"):
        rc, out, err = run(capsys, "data", "export", "--csv", str(path), "--out", str(tmp_path / "o"),
                           "--item-index", "sequential", "--negatives", "1", "--name", "named")
    assert rc == 0, err
    assert any("leaks" in r.getMessage() for r in caplog.records)
    meta = json.loads((tmp_path / "o" / "named" / "split.json").read_text())
    assert meta["item_index"]["leaky"] is True and meta["dataset"] == "named"
    train = (tmp_path / "o" / "named" / "named.train.inter").read_text().splitlines()[1:]
    assert [line.split("\t")[1] for line in train] == ["1", "4"]  # a -> 1, d -> 4 (P5-style numbering)


def test_export_requires_out(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["data", "export", "--dataset", "ml-100k"])
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_export_malformed_input_exits_2(capsys, make_p5_dir, tmp_path) -> None:
    d = make_p5_dir(MALFORMED_P5, datamaps=False)
    rc, _, err = run(capsys, "data", "export", "--p5-dir", str(d), "--out", str(tmp_path / "o"))
    assert rc == 2 and ":7:" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("negatives, message", [("99", "only 2 unseen items; 99 negatives"),
                                                  ("-1", "n_negatives must be >= 0")])
def test_export_impossible_negatives_exits_2(capsys, make_table, tmp_path, negatives, message) -> None:
    path = make_table("user_id,item_id\n1,a\n1,b\n1,c\n2,d\n2,e\n")
    rc, out, err = run(capsys, "data", "export", "--csv", str(path), "--out", str(tmp_path / "o"),
                       "--negatives", negatives)
    assert rc == 2 and out == ""
    assert message in err and "Traceback" not in err


# ---- the installed console script --------------------------------------------------------------------


def test_console_script_reports_line_of_malformed_file(make_p5_dir, tmp_path) -> None:
    script = Path(sys.executable).parent / "pap-rec"
    if not script.is_file():
        pytest.skip(f"console script not installed next to {sys.executable} (pip install -e .)")
    d = make_p5_dir(MALFORMED_P5, datamaps=False)
    proc = subprocess.run([str(script), "data", "info", "--p5-dir", str(d)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert f"{d / 'sequential_data.txt'}:7:" in proc.stderr
    assert "Traceback" not in proc.stderr

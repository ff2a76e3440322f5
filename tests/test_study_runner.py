"""The resumable study runner: finished cells are never recomputed, protocols never mixed."""

from __future__ import annotations

import pytest

from latentstudio.errors import RunExistsError
from latentstudio.studies.runner import Study, markdown_table


def test_cells_are_computed_once_and_resume_after_interruption(tmp_path):
    calls = []

    def compute(v):
        def fn():
            calls.append(v)
            if v == "boom":
                raise KeyboardInterrupt  # simulated interruption in the middle of the grid
            return {"value": v * 2}
        return fn

    s = Study(tmp_path / "st", "demo", {"data": "x", "seeds": [0, 1]})
    assert s.cell("a", compute(1), n=1)["value"] == 2
    with pytest.raises(KeyboardInterrupt):
        s.cell("b", compute("boom"))
    # a new process: same folder, same protocol
    s2 = Study(tmp_path / "st", "demo", {"data": "x", "seeds": (0, 1)})
    assert s2.cell("a", compute(100))["value"] == 2  # not recomputed
    assert s2.cell("b", compute(3))["value"] == 6
    assert calls == [1, "boom", 3]
    recs = s2.records()
    assert [r["cell"] for r in recs] == ["a", "b"] and recs[0]["n"] == 1 and "seconds" in recs[0]


def test_torn_last_line_is_ignored_and_recomputed(tmp_path):
    s = Study(tmp_path, "demo", {})
    s.cell("a", lambda: {"v": 1})
    with open(s.results_path, "a") as f:
        f.write('{"cell": "b", "v"')  # the process died while writing
    assert list(s.done()) == ["a"]
    with open(s.results_path, "a") as f:
        f.write("\n")
    assert s.cell("b", lambda: {"v": 2})["v"] == 2


def test_other_protocol_is_refused_unless_overwrite(tmp_path):
    Study(tmp_path, "demo", {"extractor": "classifier"}).cell("a", lambda: {"v": 1})
    with pytest.raises(RunExistsError, match=r"differs in \['extractor'\].*--overwrite"):
        Study(tmp_path, "demo", {"extractor": "inception"})
    s = Study(tmp_path, "demo", {"extractor": "inception"}, overwrite=True)
    assert s.records() == []


def test_stamp_and_table():
    s_lines = markdown_table(["k", "fid"], [[2, 8.4123], [4, None]]).splitlines()
    assert s_lines == ["| k | fid |", "|---|---|", "| 2 | 8.412 |", "| 4 |  |"]


def test_stamp_names_protocol_and_versions(tmp_path):
    lines = Study(tmp_path, "demo", {"dataset": "mnist", "seeds": [0]}).stamp(["budget: 1 epoch"])
    text = "\n".join(lines)
    assert "- dataset: mnist" in text and '- seeds: `[0]`' in text and "budget: 1 epoch" in text
    assert "torch" in lines[-1]

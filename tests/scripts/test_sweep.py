from scripts.launch.sweep import parse_variants, table, write_md


def fake(r1, seed):
    return {"seed": seed, "metrics": {"a": {"R1": r1, "mAP": r1 / 2}, "b": {"R1": r1 + 10, "mAP": 1.0}},
            "summary": {"average": {"R1": r1 + 5, "mAP": 2.0}, "worst": {"R1": r1, "mAP": 1.0}}}


def test_table_mean_std_and_markers(tmp_path):
    results = {"x": [fake(10.0, 0), fake(20.0, 1)]}
    t = table(results, ["R1", "mAP"])
    assert "| x | 2 | 15.0 ± 7.1 | 7.5 ± 3.5 | 25.0 ± 7.1 |" in t
    md = tmp_path / "r.md"
    md.write_text("# Title\n\nhand-written text\n")
    write_md(md, "t1", "Table", "python cmd", t)
    write_md(md, "t1", "Table", "python cmd2", t)  # replaced, not appended
    text = md.read_text()
    assert text.count("sweep:t1:begin") == 1 and "cmd2" in text and "hand-written text" in text


def test_parse_variants():
    assert parse_variants(['a=--x 1 --y "two words"', "b="]) == {"a": ["--x", "1", "--y", "two words"], "b": []}

"""The benchmark runs both pipelines on the same model and records what it measured."""

import json

from mnist_lite.cli import main


def test_bench_times_both_pipelines_and_keeps_other_machines(tmp_path, capsys):
    out = tmp_path / "bench.json"
    out.write_text(json.dumps([{"device_name": "Some GPU", "pipelines": {}}]))
    assert main(["bench", "--step", "5", "--repeats", "2", "--train-limit", "1024", "--out", str(out)]) == 0
    runs = json.loads(out.read_text())
    assert [r["device_name"] for r in runs][0] == "Some GPU" and len(runs) == 2
    run = runs[1]
    assert run["train_images"] == 1024 and run["repeats"] == 2
    for name in ("torchvision", "fast"):
        row = run["pipelines"][name]
        assert len(row["seconds"]) == 2 and all(s > 0 for s in row["seconds"])
        assert row["images_per_second"] == round(1024 / row["median_seconds"], 1)
    ratio = run["pipelines"]["torchvision"]["median_seconds"] / run["pipelines"]["fast"]["median_seconds"]
    assert run["speedup"] == round(ratio, 2)
    printed = capsys.readouterr().out
    assert "fast is" in printed and "torchvision" in printed

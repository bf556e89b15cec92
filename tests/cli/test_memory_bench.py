"""pjai bench recall, graph, autolink and ingest: small runs that check what they report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pjai.bench.recall import Answer, Conversation, Question
from pjai.bench.recallfolds import _cross_validate
from pjai.cli import app
from pjai.memory.search import Tuning

runner = CliRunner()

SHARED_LOCOMO = Path(__file__).resolve().parents[3] / "shared" / "data" / "locomo"
METHOD_KEYS = {"recall@5", "recall@10", "hit@5", "hit@10", "by_category", "p50_ms", "p95_ms"}


def conversation() -> dict[str, object]:
    def turn(speaker: str, dia_id: str, text: str) -> dict[str, str]:
        return {"speaker": speaker, "dia_id": dia_id, "text": text}

    return {
        "speaker_a": "Ana",
        "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            turn("Ana", "D1:1", "I went hiking at Mount Rainier last weekend."),
            turn("Ben", "D1:2", "Nice! Did you see any marmots?"),
        ],
        "session_2_date_time": "10:00 am on 20 June, 2023",
        "session_2": [
            turn("Ana", "D2:1", "My sister adopted a grey kitten called Pepper."),
            {**turn("Ben", "D2:2", "Cute."), "blip_caption": "a photo of a violin"},
        ],
        "qa": [
            {"question": "Where did Ana go hiking?", "category": 4, "evidence": ["D1:1"]},
            {"question": "What is the kitten called?", "category": 1, "evidence": ["D2:1"]},
            {"question": "Which instrument?", "category": 2, "evidence": ["D2:2", "D9:9"]},
            {"question": "Unanswerable", "category": 5, "evidence": []},
        ],
    }


def test_recall_bench_reports_every_figure(tmp_path: Path) -> None:
    data = tmp_path / "conversations"
    data.mkdir()
    (data / "tiny.json").write_text(json.dumps(conversation()))
    args = ["bench", "recall", "--data", str(data), "--data-dir", str(tmp_path / "work")]
    result = runner.invoke(app, [*args, "--json", "--latency-memories", "50", "--no-semantic"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["conversations"] == ["tiny"]
    assert (report["memories"], report["questions"], report["skipped_evidence"]) == (4, 3, 1)
    keyword = report["keyword"]
    assert keyword.keys() >= METHOD_KEYS
    # Found: the hiking turn and the kitten turn; "instrument" is in no turn.
    assert (keyword["recall@10"], keyword["hit@10"]) == (round(2 / 3, 4), round(2 / 3, 4))
    assert keyword["by_category"]["single-hop"]["recall@10"] == 1.0
    # Session level: the first hit's session holds evidence for two questions of three.
    assert (keyword["session_hit@1"], keyword["session_recall@10"]) == (
        round(2 / 3, 4),
        round(2 / 3, 4),
    )
    assert keyword["by_category"]["temporal"]["recall@10"] == 0.0
    assert report["memories_at_latency"] == 50
    assert "semantic" not in report
    assert not list((tmp_path / "work").iterdir())  # removed without --keep

    human = runner.invoke(app, [*args, "--latency-memories", "50", "--no-semantic"])
    assert human.exit_code == 0, human.output
    assert "keyword: recall@5 0.667" in human.stdout


def test_recall_bench_folds_hold_each_conversation_out(tmp_path: Path) -> None:
    data = tmp_path / "conversations"
    data.mkdir()
    for name in ("one", "two"):
        (data / f"{name}.json").write_text(json.dumps(conversation()))
    args = ["bench", "recall", "--data", str(data), "--data-dir", str(tmp_path / "work")]
    result = runner.invoke(app, [*args, "--json", "--folds", "--latency-memories", "1"])
    assert result.exit_code == 0, result.output
    folds = json.loads(result.stdout)["folds"]["keyword"]
    assert [f["held_out"] for f in folds["per_fold"]] == ["one", "two"]
    chosen = {"summary_weight", "neighbour_weight", "date_weight"}
    assert all(f["chosen"].keys() == chosen for f in folds["per_fold"])
    assert folds["mean"]["recall@10"] == round(2 / 3, 4)
    assert folds["pooled"]["questions"] == 6
    (data / "two.json").unlink()
    alone = runner.invoke(app, [*args, "--folds", "--latency-memories", "1"])
    assert alone.exit_code == 1
    assert "at least two conversations" in alone.stderr


def test_a_fold_chooses_its_tuning_on_the_other_conversations_only() -> None:
    """Tuning A wins on conversations x and y, B on z: the fold holding z out chooses
    A (and is measured with it), the folds holding x or y out are measured with what
    the remaining two prefer."""
    loose, tight = Tuning(summary_weight=0.0), Tuning(summary_weight=1.0)
    question = Question("q", 4, ("D1:1",))
    found, missed = Answer(question, ["D1:1"], 0.0), Answer(question, ["D1:2"], 0.0)
    conversations = [Conversation(name, f"p-{name}", [], [question], 0) for name in ("x", "y", "z")]
    runs = {
        loose: {"x": [found, found], "y": [found], "z": [missed, missed]},
        tight: {"x": [missed, missed], "y": [missed], "z": [found, found, found, found]},
    }
    result = _cross_validate(conversations, runs, ("summary_weight",))
    chosen = {f["held_out"]: f["chosen"]["summary_weight"] for f in result["per_fold"]}
    # Holding x out: y and z give loose 1/3, tight 4/5. Holding y out: x and z give
    # loose 2/4, tight 4/6. Holding z out: x and y give loose 3/3, tight 0/3.
    assert chosen == {"x": 1.0, "y": 1.0, "z": 0.0}
    assert [f["recall@10"] for f in result["per_fold"]] == [0.0, 0.0, 0.0]
    assert result["mean"]["recall@10"] == 0.0


def test_recall_bench_names_what_is_wrong(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["bench", "recall", "--data", str(empty), "--data-dir", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "holds no LoCoMo-format .json files" in result.stderr
    bad = conversation()
    bad["session_1_date_time"] = "yesterday"
    (empty / "bad.json").write_text(json.dumps(bad))
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "session date 'yesterday'" in result.stderr


@pytest.mark.skipif(not SHARED_LOCOMO.is_dir(), reason=f"{SHARED_LOCOMO} is not on this machine")
def test_keyword_recall_on_locomo_meets_the_target(tmp_path: Path) -> None:
    args = ["bench", "recall", "--data", str(SHARED_LOCOMO), "--data-dir", str(tmp_path)]
    result = runner.invoke(app, [*args, "--json", "--no-semantic", "--latency-memories", "1"])
    assert result.exit_code == 0, result.output
    keyword = json.loads(result.stdout)["keyword"]
    assert keyword["recall@10"] >= 0.75
    assert keyword["questions"] == 495


def test_graph_bench_quick_run(tmp_path: Path) -> None:
    args = ["bench", "graph", "--memories", "300", "--queries", "20", "--data-dir", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["memories"], report["depth"], report["queries"]) == (300, 3, 20)
    assert 850 <= report["links"] <= 900  # 3 per memory, minus drawn duplicates
    assert report["components"] == 1
    assert 0 < report["neighbours_p50_ms"] <= report["neighbours_p95_ms"]
    assert report["reached_mean"] > 20


def test_autolink_bench_compares_the_bound_with_every_candidate(tmp_path: Path) -> None:
    data = tmp_path / "conversations"
    data.mkdir()
    (data / "one.json").write_text(json.dumps(conversation()))
    args = ["bench", "autolink", "--memories", "600", "--data", str(data)]
    result = runner.invoke(app, [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    real, synthetic = report["personas"]
    assert (real["persona"], real["memories"]) == ("locomo-one", 4)
    assert (synthetic["persona"], synthetic["memories"]) == ("autolink-bench", 600)
    # Six words of thirty from one topic of twelve memories: topics make links.
    assert synthetic["exhaustive_links"] > 0
    assert 0 < synthetic["bounded_links"] <= synthetic["exhaustive_links"] * 1.1
    assert 0 < synthetic["recall"] <= 1
    bounded_only = runner.invoke(
        app,
        ["bench", "autolink", "--memories", "50", "--no-exhaustive", "--data-dir", str(tmp_path)],
    )
    assert (
        "exhaustive_s"
        not in json.loads(bounded_only.stdout.strip().splitlines()[-1])["personas"][0]
    )


def paraphrased() -> dict[str, object]:
    """Twenty turns on twenty topics, and questions that share no word with their
    answers: only a model of meaning finds them."""
    said = [
        "I went hiking at Mount Rainier last weekend.",
        "I finally fixed the leaking kitchen tap with a new washer.",
        "My sister adopted a grey kitten called Pepper.",
        "The quarterly tax return took me all evening.",
        "I have started learning to play the violin.",
        "Our flight to Lisbon was delayed by six hours.",
        "I baked sourdough bread with rye flour this morning.",
        "My knee still hurts after the marathon.",
        "We painted the nursery a soft yellow.",
        "I switched my phone plan to a cheaper carrier.",
        "The book club is reading a novel about whales.",
        "I planted tomatoes and basil on the balcony.",
        "My grandfather turns ninety next month.",
        "The printer at work jammed again.",
        "I got a promotion to team lead.",
        "We watched the meteor shower from the roof.",
        "I am saving up for an electric car.",
        "The dentist said I need a filling.",
        "I volunteer at the animal shelter on Sundays.",
        "Our band played its first gig at a pub.",
    ]
    turns = [
        {"speaker": "Ana" if i % 2 else "Ben", "dia_id": f"D1:{i + 1}", "text": text}
        for i, text in enumerate(said)
    ]
    asked = [
        ("Which pet does her sibling own?", "D1:3"),
        ("What musical instrument is she studying?", "D1:5"),
        ("Who is celebrating an old-age birthday soon?", "D1:13"),
        ("What plumbing repair did he do?", "D1:2"),
    ]
    return {
        "speaker_a": "Ana",
        "speaker_b": "Ben",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": turns,
        "qa": [{"question": q, "category": 4, "evidence": [e]} for q, e in asked],
    }


def test_quick_recall_bench_runs_the_shipped_model(tmp_path: Path) -> None:
    data = tmp_path / "conversations"
    data.mkdir()
    (data / "paraphrased.json").write_text(json.dumps(paraphrased()))
    args = ["bench", "recall", "--data", str(data), "--data-dir", str(tmp_path / "work")]
    result = runner.invoke(app, [*args, "--quick", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["quick"] is True
    assert report["embedding_model"] == "all-MiniLM-L6-v2-int8"
    assert all(report[m].keys() >= METHOD_KEYS for m in ("keyword", "semantic", "hybrid"))
    assert report["keyword"]["recall@10"] == 0.0  # no question shares a word with its answer
    # One in four at random; the model puts every answer in the top five.
    assert report["semantic"]["recall@5"] == 1.0
    assert report["hybrid"]["recall@5"] == 1.0
    assert report["memories_at_latency"] == 2_000  # --quick caps the store
    assert report["hybrid_p95_ms_at_scale"] > 0


@pytest.mark.skipif(not SHARED_LOCOMO.is_dir(), reason=f"{SHARED_LOCOMO} is not on this machine")
def test_quick_recall_bench_on_locomo(tmp_path: Path) -> None:
    args = ["bench", "recall", "--data", str(SHARED_LOCOMO), "--data-dir", str(tmp_path)]
    result = runner.invoke(app, [*args, "--quick", "--json", "--latency-memories", "500"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # The first three sessions of each conversation and the questions about them.
    assert (report["memories"], report["questions"]) == (177, 73)
    keyword, semantic, hybrid = report["keyword"], report["semantic"], report["hybrid"]
    assert semantic["recall@10"] >= 0.6  # 0.79 measured
    assert hybrid["recall@10"] >= keyword["recall@10"]


def test_ingest_bench_reports_the_ingest_and_the_other_writer(tmp_path: Path) -> None:
    args = ["bench", "ingest", "--messages", "50", "--batch", "20", "--data-dir", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["benchmark"], report["messages"], report["added"]) == ("ingest", 50, 50)
    assert report["batch_messages"] == 20
    assert report["seconds"] > 0
    assert report["messages_per_s"] > 0
    assert report["peak_rss_mb"] > 0
    assert report["writer_commits"] >= 1
    assert report["writer_longest_wait_ms"] > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("bench-")] == []

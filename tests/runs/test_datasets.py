from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from batchmark._errors import DatasetError
from batchmark.config._schema import EvalSpec, load_config
from batchmark.runs._datasets import Row, iter_rows, row_content_id


def spec_for(
    tmp_path: Path, data_name: str, data: str | bytes | None, dataset: str = ""
) -> EvalSpec:
    if data is not None:
        path = tmp_path / data_name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
    config = tmp_path / "eval.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            name: t
            dataset: {{path: {data_name}{", " + dataset if dataset else ""}}}
            prompts: [{{name: a, user: x}}]
            models: [m]
            """
        )
    )
    return load_config(config)


def jsonl(*rows: dict) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def rows_of(spec: EvalSpec) -> list[Row]:
    return list(iter_rows(spec))


def test_jsonl_rows_stream_in_file_order(tmp_path: Path) -> None:
    spec = spec_for(
        tmp_path, "d.jsonl", jsonl({"id": "a", "q": 1}, {"id": "b", "q": 2}), "id_field: id"
    )
    assert rows_of(spec) == [
        Row("a", 0, {"id": "a", "q": 1}),
        Row("b", 1, {"id": "b", "q": 2}),
    ]


def test_json_file_with_a_top_level_list_gives_one_row_per_object(tmp_path: Path) -> None:
    data = json.dumps([{"id": 1, "q": "x"}, {"id": 2, "q": "y"}])
    spec = spec_for(tmp_path, "d.json", data, "id_field: id")
    assert [(r.id, r.data["q"]) for r in rows_of(spec)] == [("1", "x"), ("2", "y")]


def test_csv_cells_are_read_as_strings(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.csv", 'id,q,n\n007,"a, b",1.5\n8,,2\n', "id_field: id")
    assert [r.data for r in rows_of(spec)] == [
        {"id": "007", "q": "a, b", "n": "1.5"},
        {"id": "8", "q": "", "n": "2"},
    ]


def test_parquet_rows_keep_their_types(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"id": [1, 2], "q": ["x", "y"]}).to_parquet(path)
    spec = spec_for(tmp_path, "d.parquet", None, "id_field: id")
    assert [(r.id, r.data) for r in rows_of(spec)] == [
        ("1", {"id": 1, "q": "x"}),
        ("2", {"id": 2, "q": "y"}),
    ]


def test_explicit_format_overrides_the_extension(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.txt", jsonl({"q": 1}), "format: jsonl")
    assert [r.data for r in rows_of(spec)] == [{"q": 1}]


def test_csv_with_a_bad_row_names_the_file_and_line(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.csv", "id,q\n1,a\n2,b,c\n")
    with pytest.raises(DatasetError) as info:
        rows_of(spec)
    assert str(tmp_path / "d.csv") in str(info.value)
    assert "line 3" in str(info.value)


def test_malformed_jsonl_names_the_file(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.jsonl", '{"q": 1}\n{"q": \n')
    with pytest.raises(DatasetError, match=r"d\.jsonl: cannot read it as jsonl"):
        rows_of(spec)


@pytest.mark.parametrize("name", ["d.jsonl", "d.csv", "d.json"])
def test_empty_file_is_a_dataset_error_naming_the_file(tmp_path: Path, name: str) -> None:
    spec = spec_for(tmp_path, name, "")
    with pytest.raises(DatasetError, match="has no rows") as info:
        rows_of(spec)
    assert str(tmp_path / name) in str(info.value)


def test_limit_keeps_the_first_rows(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.jsonl", jsonl(*({"n": i} for i in range(10))), "limit: 3")
    assert [r.data["n"] for r in rows_of(spec)] == [0, 1, 2]


def test_sample_is_seeded_and_keeps_file_order(tmp_path: Path) -> None:
    data = jsonl(*({"n": i} for i in range(50)))
    picked = [r.index for r in rows_of(spec_for(tmp_path, "d.jsonl", data, "sample: 5, seed: 1"))]
    again = [r.index for r in rows_of(spec_for(tmp_path, "d.jsonl", data, "sample: 5, seed: 1"))]
    other = [r.index for r in rows_of(spec_for(tmp_path, "d.jsonl", data, "sample: 5, seed: 2"))]
    assert picked == again == sorted(picked) and len(picked) == 5
    assert other != picked


def test_limit_applies_before_sample(tmp_path: Path) -> None:
    data = jsonl(*({"n": i} for i in range(50)))
    rows = rows_of(spec_for(tmp_path, "d.jsonl", data, "limit: 10, sample: 4"))
    assert len(rows) == 4 and all(r.index < 10 for r in rows)
    assert all(r.data["n"] == r.index for r in rows)


def test_sample_larger_than_the_dataset_keeps_every_row(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.jsonl", jsonl({"n": 0}, {"n": 1}), "sample: 10")
    assert len(rows_of(spec)) == 2


def test_integer_ids_become_strings(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.jsonl", jsonl({"k": 7}, {"k": 8}), "id_field: k")
    assert [r.id for r in rows_of(spec)] == ["7", "8"]


def test_rows_without_id_field_get_a_content_hash_id(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.jsonl", jsonl({"q": "x", "a": 1}, {"q": "y"}))
    rows = rows_of(spec)
    assert rows[0].id == row_content_id({"a": 1, "q": "x"})
    assert len(rows[0].id) == 12 and rows[0].id != rows[1].id
    # Null fields (here the "a" column HF adds to row 2) are left out of the hash.
    assert rows[1].id == row_content_id({"q": "y"})


def test_missing_id_value_names_the_row_and_field(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.jsonl", jsonl({"k": 1}, {"k": 2}, {"q": 3}), "id_field: k")
    with pytest.raises(DatasetError, match=r"d\.jsonl: row 3: id field 'k' is missing or empty"):
        rows_of(spec)


def test_id_field_that_is_not_a_column_lists_the_columns(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.jsonl", jsonl({"a": 1, "b": 2}), "id_field: id")
    with pytest.raises(DatasetError, match=r"id_field 'id' is not a column \(available: a, b\)"):
        rows_of(spec)


def test_duplicate_ids_name_the_id_and_both_rows(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.jsonl", jsonl({"k": 1}, {"k": 2}, {"k": 1}), "id_field: k")
    with pytest.raises(DatasetError, match=r"duplicate row id '1' .* in rows 1 and 3"):
        rows_of(spec)


def test_identical_rows_without_id_field_are_duplicates(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.jsonl", jsonl({"q": 1}, {"q": 1}))
    with pytest.raises(DatasetError, match=r"identical rows\) in rows 1 and 2"):
        rows_of(spec)


def test_field_mapping_adds_variables_and_keeps_columns(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.jsonl", jsonl({"q": "hi"}), "fields: {question: q}")
    assert rows_of(spec)[0].data == {"q": "hi", "question": "hi"}


def test_field_mapping_to_a_missing_column_lists_the_columns(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, "d.jsonl", jsonl({"q": "hi", "a": 1}), "fields: {question: text}")
    with pytest.raises(DatasetError) as info:
        rows_of(spec)
    message = str(info.value)
    assert "dataset.fields.question names column 'text'" in message
    assert "available: q, a" in message


def test_unreachable_hub_dataset_says_to_use_a_local_file(tmp_path: Path, monkeypatch) -> None:
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # fail fast, no retries
    config = tmp_path / "eval.yaml"
    config.write_text(
        "name: t\ndataset: {hub: someone/some-data}\nprompts: [{name: a, user: x}]\nmodels: [m]\n"
    )
    with pytest.raises(DatasetError) as info:
        rows_of(load_config(config))
    message = str(info.value)
    assert message.startswith("could not load hub dataset someone/some-data: ")
    assert "point dataset.path at a local file" in message

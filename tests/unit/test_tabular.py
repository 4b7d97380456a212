import csv
import io
import zipfile

from gateway.tabular import csv_text, tables_zip


def test_formula_cells_stay_text() -> None:
    text = csv_text(["name"], [{"name": "=HYPERLINK(\"http://x\")"}, {"name": "Ann"}])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["name"], ["'=HYPERLINK(\"http://x\")"], ["Ann"]]


def test_zip_has_one_file_per_table_with_headers_even_when_empty() -> None:
    data = tables_zip({"a": [{"x": 1}], "b": []}, {"a": ("x",), "b": ("y", "z")})
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["a.csv", "b.csv"]
        assert archive.read("b.csv").decode() == "y,z\r\n"
        assert archive.read("a.csv").decode() == "x\r\n1\r\n"

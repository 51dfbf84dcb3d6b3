"""The README's model table is the registry's, regenerated: a new model, a changed default
or a new documented run without `python -m zoo.bench.model_table --write` fails here."""

from zoo import registry
from zoo.bench import model_table


def test_readme_model_table_is_up_to_date():
    assert model_table.readme_table(model_table.README.read_text()) == model_table.table()


def test_the_table_names_every_model_once_with_its_documented_runs():
    # The README's copy: the test above holds it equal to a fresh table (built once, slowly).
    text = model_table.readme_table(model_table.README.read_text())
    for name in registry.list_models():
        assert text.count(f"| `{name}` |") == 1
    assert set(model_table.DOCUMENTED) <= set(registry.list_models())
    assert "| 11,689,512 |" in text  # ResNet-18, DESIGN.md's reference count


def test_the_docs_models_page_holds_the_readmes_table():
    readme = model_table.readme_table(model_table.README.read_text())
    assert model_table.DOCS_PAGE.read_text() == model_table.DOCS_HEADER + readme + "\n", (
        "run python -m zoo.bench.model_table --write"
    )
